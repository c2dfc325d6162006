"""The order service of lesson 01, instrumented: metrics, traces and correlated logs.

Nothing about what the service does changes; this module only adds the three signals:

  logs     the same JSON lines on stdout, plus trace_id/span_id when a span is active
  metrics  Prometheus: orders_requests_total{method,route,status},
           orders_request_duration_seconds{method,route} (a histogram with explicit buckets),
           orders_requests_in_flight, and the process' CPU/memory; served by
           prometheus_client's own HTTP server on METRICS_PORT (127.0.0.1)
  traces   OpenTelemetry spans: one SERVER span per request, one CLIENT span per S3/SQS call;
           finished spans are written as JSON lines to SPANS_FILE

Extra settings (all optional, all from the environment):

  METRICS_PORT        port of the /metrics endpoint (default: PORT + 1)
  SPANS_FILE          where finished spans go (default: spans.jsonl in the working directory)
  LATENCY_BUCKETS     comma-separated upper bounds in seconds (default: DEFAULT_BUCKETS)
  FAULT_SEED          seed the fault injection, so N requests always give the same number of 500s
  SLOW_QUEUE_MS       a slow dependency: extra milliseconds inside the SQS SendMessage call ...
  SLOW_QUEUE_RATE     ... for this share of the calls (0..1, default 1)
  FAULT_RATE_FILE     a feature flag: a file holding the share of POSTs that fail (0..1), read while the
                      service runs (each change is logged as "flag_changed"); FAULT_RATE applies until it exists
  INVENTORY_MS        every new order first reserves stock from an inventory service (a stand-in: it
                      takes this many milliseconds); 0 (the default) skips the call
  INVENTORY_HOOK      a Python file defining ``reserve(call, item, qty)``: the service calls it instead
                      of ``call(item, qty)`` (lesson 04's tracing exercise wraps the call in a span)

A request is counted in the metrics *before* its answer is written, so a client that has its answer
always finds it in the next scrape.

Run:  ORDERS_BUCKET=... ORDERS_QUEUE_URL=... PORT=8080 python -m app.observed
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import ThreadingHTTPServer

from app.service import Config, ConfigError, JsonLog, OrderStore, make_handler

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
KNOWN_ROUTES = ("/orders", "/orders/{id}", "/health")


def parse_buckets(text: str | None) -> tuple[float, ...]:
    """'0.1,0.25,1' -> (0.1, 0.25, 1.0); strictly increasing, positive, finite."""
    if not text:
        return DEFAULT_BUCKETS
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"LATENCY_BUCKETS must be numbers separated by commas, not {text!r}") from None
    if not values or any(not 0 < v < float("inf") for v in values):
        raise ConfigError(f"LATENCY_BUCKETS must be positive, finite seconds, not {text!r}")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ConfigError(f"LATENCY_BUCKETS must be strictly increasing, not {text!r}")
    return values


def route_label(path: str) -> str:
    """Bounded label values: a raw path (with ids, typos, scanners) would explode the series count."""
    path = path.split("?", 1)[0]
    if path.startswith("/orders/"):
        return "/orders/{id}"
    return path if path in KNOWN_ROUTES else "other"


# ------------------------------------------------------------------- tracing
class JsonLinesSpanExporter:
    """An OpenTelemetry span exporter that appends one JSON object per finished span to a file."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()
        self.fh = open(path, "a", buffering=1)

    @staticmethod
    def to_dict(span) -> dict:
        ctx, parent = span.get_span_context(), span.parent
        return {
            "name": span.name,
            "trace_id": f"{ctx.trace_id:032x}",
            "span_id": f"{ctx.span_id:016x}",
            "parent_id": f"{parent.span_id:016x}" if parent else None,
            "kind": span.kind.name,
            "start_ns": span.start_time,
            "end_ns": span.end_time,
            "status": span.status.status_code.name,
            "attributes": dict(span.attributes or {}),
        }

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = "".join(json.dumps(self.to_dict(s), default=str) + "\n" for s in spans)
        with self.lock:
            self.fh.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        with self.lock:
            self.fh.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self.lock:
            if not self.fh.closed:
                self.fh.flush()
        return True


def _id_generator():
    """Span and trace ids from a private generator: the SDK's default draws from the global `random`,
    which would interleave with the seeded fault injection and make the number of faults vary."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class PrivateIds(IdGenerator):
        def __init__(self):
            self.rng = random.SystemRandom()

        def generate_span_id(self) -> int:
            return self.rng.getrandbits(64) or self.generate_span_id()

        def generate_trace_id(self) -> int:
            value = self.rng.getrandbits(128)
            return value if value != trace.INVALID_TRACE_ID else self.generate_trace_id()

    return PrivateIds()


def make_tracer(path: str):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}), id_generator=_id_generator())
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    return provider, provider.get_tracer("app.observed")


class TracedClient:
    """Wraps a boto3 client: every API call becomes a CLIENT span (S3.PutObject, SQS.SendMessage ...).

    ``delays`` injects a slow dependency: {"send_message": (milliseconds, share of calls)}.
    """

    def __init__(
        self,
        client,
        service: str,
        tracer,
        delays: Mapping[str, tuple[float, float]] | None = None,
        rng: random.Random | None = None,
    ):
        self._client, self._service, self._tracer = client, service, tracer
        self._delays = dict(delays or {})
        self._rng = rng or random.Random()

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_") or name in ("get_paginator", "get_waiter", "can_paginate"):
            return attr
        op = "".join(part.capitalize() for part in name.split("_"))

        def call(*args, **kwargs):
            from opentelemetry.trace import SpanKind, Status, StatusCode

            attrs = {"rpc.system": "aws-api", "rpc.service": self._service, "rpc.method": op}
            if "Bucket" in kwargs:
                attrs["aws.s3.bucket"] = kwargs["Bucket"]
            with self._tracer.start_as_current_span(
                f"{self._service}.{op}", kind=SpanKind.CLIENT, attributes=attrs
            ) as span:
                ms, share = self._delays.get(name, (0, 0))
                if ms and self._rng.random() < share:
                    span.set_attribute("fault.extra_latency_ms", ms)
                    time.sleep(ms / 1000)
                try:
                    return attr(*args, **kwargs)
                except Exception as e:
                    span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                    raise

        return call


class TracingJsonLog(JsonLog):
    """The same JSON log lines, plus the current trace and span id: logs and traces join on them."""

    def __call__(self, event: str, level: str = "INFO", **fields) -> None:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            fields.setdefault("trace_id", f"{ctx.trace_id:032x}")
            fields.setdefault("span_id", f"{ctx.span_id:016x}")
        super().__call__(event, level, **fields)


# ------------------------------------------------------------------- metrics
def make_metrics(buckets: tuple[float, ...]):
    from prometheus_client import (
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        ProcessCollector,
        disable_created_metrics,
    )

    disable_created_metrics()  # no *_created series: they only add noise to the exposition
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    m = {
        "requests": Counter(
            "orders_requests",
            "Requests answered, by method, route and status code.",
            ["method", "route", "status"],
            registry=registry,
        ),
        "latency": Histogram(
            "orders_request_duration_seconds",
            "Time to answer a request, in seconds.",
            ["method", "route"],
            buckets=buckets,
            registry=registry,
        ),
        "in_flight": Gauge("orders_requests_in_flight", "Requests being answered right now.", registry=registry),
    }
    return registry, m


def metrics_hook(m):
    def record(method, route, status, seconds, request_id):
        route = route_label(route)
        m["requests"].labels(method, route, str(status)).inc()
        m["latency"].labels(method, route).observe(seconds)

    return record


def observed_handler(base, tracer, in_flight, record=None):
    """Subclass the service's handler: a SERVER span and the in-flight gauge around every request.

    ``record(method, route, status, seconds, request_id)`` (see :func:`metrics_hook`) is called once per
    request, just before its answer is written: a client that got its answer finds it in the metrics.
    """
    from opentelemetry.trace import SpanKind, Status, StatusCode

    class Observed(base):
        def _send(self, code: int, body: dict) -> None:
            if record is not None and not self._recorded:
                self._recorded = True
                seconds = time.perf_counter() - self._started
                record(method=self.command, route=self.path, status=code, seconds=seconds, request_id=self.request_id)
            super()._send(code, body)

        def _handle(self, method: str) -> None:
            self._started, self._recorded = time.perf_counter(), False
            route = route_label(self.path)
            in_flight.inc()
            try:
                with tracer.start_as_current_span(
                    f"{method} {route}",
                    kind=SpanKind.SERVER,
                    attributes={"http.request.method": method, "http.route": route},
                ) as span:
                    super()._handle(method)
                    span.set_attribute("http.response.status_code", self.status)
                    span.set_attribute("request_id", self.request_id)
                    if self.status >= 500:
                        span.set_status(Status(StatusCode.ERROR, f"HTTP {self.status}"))
            finally:
                in_flight.dec()

    return Observed


# ----------------------------------------------------------------- a feature flag
class LiveConfig:
    """The service's :class:`Config`, except that ``fault_rate`` follows a flag file while the service runs.

    A flag flip is a config change without a restart (the way feature flags and AWS AppConfig work).
    The file is read again only when it changes (one ``stat`` per request)."""

    def __init__(self, cfg: Config, flag_file: str | None, log=None):
        self._cfg, self._file, self._log = cfg, flag_file, log
        self._seen, self._rate = None, cfg.fault_rate

    def __getattr__(self, name):
        return getattr(self._cfg, name)

    @property
    def fault_rate(self) -> float:
        if not self._file:
            return self._cfg.fault_rate
        try:
            st = os.stat(self._file)
        except OSError:
            return self._rate
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # a new file (atomic replace) is a new inode
        if stamp != self._seen:
            self._seen = stamp
            try:
                rate = float(open(self._file).read().strip() or self._cfg.fault_rate)
            except (OSError, ValueError):
                rate = self._rate  # a half-written or broken flag keeps the last good value
            if 0 <= rate <= 1 and rate != self._rate:
                self._rate = rate
                if self._log:
                    self._log("flag_changed", level="WARNING", flag="FAULT_RATE", value=rate)
        return self._rate


# ----------------------------------------------------------------- inventory
def inventory_call(ms: float) -> Callable[[str, int], dict]:
    """The inventory service's stand-in: reserving stock takes ``ms`` milliseconds and returns a reservation."""

    def reserve(item: str, qty: int) -> dict:
        time.sleep(ms / 1000)
        return {"id": uuid.uuid4().hex[:10], "item": item, "qty": qty}

    return reserve


def load_hook(path: str) -> Callable:
    """``reserve(call, item, qty)`` from the Python file at ``path``; ConfigError if there is none."""
    try:
        spec = importlib.util.spec_from_file_location("inventory_hook", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"not a Python file: {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as e:  # a learner's file: any error becomes a clear config error
        raise ConfigError(f"INVENTORY_HOOK={path} could not be loaded: {type(e).__name__}: {e}") from None
    fn = getattr(module, "reserve", None)
    if not callable(fn):
        raise ConfigError(f"INVENTORY_HOOK={path} defines no function reserve(call, item, qty)")
    return fn


class InventoryStore(OrderStore):
    """Orders first reserve stock (a slow backing call), then are stored as before."""

    def __init__(self, cfg: Config, call: Callable, hook: Callable | None = None, **kw):
        super().__init__(cfg, **kw)
        self.call, self.hook = call, hook

    def save(self, order: dict) -> str:
        item, qty = str(order.get("item")), order.get("qty", 1)
        reservation = self.hook(self.call, item, qty) if self.hook else self.call(item, qty)
        if not isinstance(reservation, dict) or "id" not in reservation:
            raise TypeError(f"reserve() should return what call() returns, not {reservation!r:.60}")
        order["reservation"] = reservation["id"]
        return super().save(order)


def serve_observed(cfg: Config, env: Mapping[str, str]) -> int:
    import boto3
    from opentelemetry import trace
    from prometheus_client import start_http_server

    buckets = parse_buckets(env.get("LATENCY_BUCKETS"))
    metrics_port = int(env.get("METRICS_PORT") or cfg.port + 1)
    spans_file = env.get("SPANS_FILE") or "spans.jsonl"
    slow_ms = float(env.get("SLOW_QUEUE_MS") or 0)
    slow_rate = float(env.get("SLOW_QUEUE_RATE") or 1)
    if env.get("FAULT_SEED"):
        random.seed(int(env["FAULT_SEED"]))  # the service draws its faults from the global generator

    try:
        inventory_ms = float(env.get("INVENTORY_MS") or 0)
    except ValueError:
        raise ConfigError(f"INVENTORY_MS must be milliseconds, not {env.get('INVENTORY_MS')!r}") from None
    hook = load_hook(env["INVENTORY_HOOK"]) if env.get("INVENTORY_HOOK") else None

    log = TracingJsonLog(cfg.log_level, service="orders")
    provider, tracer = make_tracer(spans_file)
    trace.set_tracer_provider(provider)  # code the service loads (INVENTORY_HOOK) traces into the same export
    registry, m = make_metrics(buckets)
    s3 = TracedClient(boto3.client("s3"), "S3", tracer)
    sqs = TracedClient(
        boto3.client("sqs"),
        "SQS",
        tracer,
        {"send_message": (slow_ms, slow_rate)},
        random.Random(int(env.get("FAULT_SEED") or 0) + 1),
    )
    if inventory_ms or hook:
        store = InventoryStore(cfg, inventory_call(inventory_ms), hook, s3=s3, sqs=sqs)
    else:
        store = OrderStore(cfg, s3=s3, sqs=sqs)
    live = LiveConfig(cfg, env.get("FAULT_RATE_FILE") or None, log)
    handler = observed_handler(make_handler(live, store, log), tracer, m["in_flight"], record=metrics_hook(m))
    server = ThreadingHTTPServer(("127.0.0.1", cfg.port), handler)
    server.daemon_threads = False
    server.block_on_close = True
    metrics_server, _ = start_http_server(metrics_port, addr="127.0.0.1", registry=registry)

    def on_sigterm(signum, frame):
        log("shutdown_requested", signal=signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    log(
        "started",
        port=cfg.port,
        metrics_port=metrics_port,
        spans_file=os.path.abspath(spans_file),
        buckets=list(buckets),
        fault_rate=cfg.fault_rate,
        fault_flag=env.get("FAULT_RATE_FILE") or None,
        inventory_ms=inventory_ms,
        inventory_hook=env.get("INVENTORY_HOOK") or None,
        slow_queue_ms=slow_ms,
        slow_queue_rate=slow_rate,
        bucket=cfg.bucket,
        pid=os.getpid(),
    )
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    metrics_server.shutdown()
    provider.shutdown()
    log("shutdown")
    return 0


def main() -> int:
    try:
        cfg = Config.from_env(os.environ)
        parse_buckets(os.environ.get("LATENCY_BUCKETS"))
        return serve_observed(cfg, os.environ)
    except ConfigError as e:
        JsonLog()("config_error", level="ERROR", error=str(e))
        return 78  # EX_CONFIG


if __name__ == "__main__":
    sys.exit(main())
