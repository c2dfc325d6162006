"""The order service, the 12-factor way.

  III  Config      every setting comes from the environment (see Config.from_env)
  IV   Backing     orders live in S3, events go to SQS: attached resources, swapped by config
  VI   Processes   stateless: any copy can answer any request
  IX   Disposable  starts in well under a second; SIGTERM -> finish in-flight requests, exit 0
  X    Parity      the same code against the emulator or real AWS (only AWS_* variables differ)
  XI   Logs        one JSON event per line on stdout; the platform collects them

Endpoints:  POST /orders  {"item": str, "qty": int}  -> 201 {"id": ...}
            GET  /orders/<id>  -> 200 the order     GET /health -> 200 (the process answers: liveness)
            GET  /ready -> 200 when the backing bucket answers, 503 when it does not or while shutting
                 down (readiness: Kubernetes sends traffic only to ready pods; lesson 06)
Every response carries X-Request-Id (taken from the request or generated) and every log line too.
Fault injection for the observability lesson: FAULT_RATE (0..1) answers that share of
POSTs with 500; EXTRA_LATENCY_MS adds latency. For the deployment lesson (08): APP_VERSION names
the release (in /health and the X-App-Version header of every response), and FAULT_AFTER=N lets
the first N POSTs succeed before FAULT_RATE applies (a fault that shows up only under traffic).

Run:  ORDERS_BUCKET=... ORDERS_QUEUE_URL=... python -m app.service
      (LISTEN_HOST: the address to listen on, 127.0.0.1 unless a container sets 0.0.0.0)
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    bucket: str
    queue_url: str
    port: int = 8080
    log_level: str = "INFO"
    fault_rate: float = 0.0
    extra_latency_ms: int = 0
    host: str = "127.0.0.1"
    version: str = "dev"
    fault_after: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        missing = [k for k in ("ORDERS_BUCKET", "ORDERS_QUEUE_URL") if not env.get(k)]
        if missing:
            raise ConfigError(f"missing required environment variable(s): {', '.join(missing)}")
        try:
            port = int(env.get("PORT", "8080"))
            fault = float(env.get("FAULT_RATE", "0"))
            latency = int(env.get("EXTRA_LATENCY_MS", "0"))
            fault_after = int(env.get("FAULT_AFTER", "0"))
        except ValueError as e:
            raise ConfigError(f"bad number in the environment: {e}") from None
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
        if not 0 <= fault <= 1:
            raise ConfigError(f"FAULT_RATE must be between 0 and 1, not {fault}")
        host = env.get("LISTEN_HOST", "127.0.0.1")
        version = env.get("APP_VERSION", "dev")
        return cls(
            env["ORDERS_BUCKET"], env["ORDERS_QUEUE_URL"], port, level, fault, latency, host, version, fault_after
        )


class JsonLog:
    """Logs as an event stream: one JSON object per line on stdout, nothing else."""

    def __init__(self, level: str = "INFO", stream=None, **static):
        self.min = LEVELS[level]
        self.stream = stream or sys.stdout
        self.static = static
        self.lock = threading.Lock()

    def __call__(self, event: str, level: str = "INFO", **fields) -> None:
        if LEVELS[level] < self.min:
            return
        rec = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "event": event,
            **self.static,
            **fields,
        }
        with self.lock:
            self.stream.write(json.dumps(rec, default=str) + "\n")
            self.stream.flush()


class OrderStore:
    """The backing services: S3 for orders, SQS for 'order created' events."""

    def __init__(self, cfg: Config, s3=None, sqs=None):
        import boto3

        self.cfg = cfg
        self.s3 = s3 or boto3.client("s3")
        self.sqs = sqs or boto3.client("sqs")

    def save(self, order: dict) -> str:
        key = f"orders/{order['id']}.json"
        self.s3.put_object(
            Bucket=self.cfg.bucket, Key=key, Body=json.dumps(order).encode(), ContentType="application/json"
        )
        self.sqs.send_message(
            QueueUrl=self.cfg.queue_url, MessageBody=json.dumps({"type": "order_created", "order_id": order["id"]})
        )
        return key

    def load(self, order_id: str) -> dict | None:
        try:
            obj = self.s3.get_object(Bucket=self.cfg.bucket, Key=f"orders/{order_id}.json")
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(obj["Body"].read())

    def ready(self) -> tuple[bool, str]:
        """Can this instance serve orders right now? One cheap call to the backing bucket."""
        try:
            self.s3.head_bucket(Bucket=self.cfg.bucket)
            return True, "ok"
        except Exception as e:  # unreachable, missing bucket, no permission: not ready, and say why
            return False, f"{type(e).__name__}: {str(e)[:120]}"


class Connections:
    """The server's keep-alive connections that wait for their next request.

    A graceful stop must not wait for a client that keeps an idle connection open (browsers and
    ``requests`` do): :meth:`stop` closes the idle ones for reading, and every response after it says
    ``Connection: close``. Requests in flight still finish.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.waiting: dict = {}  # handler -> its socket, while it waits for a request
        self.stopping = False

    def idle(self, handler) -> None:
        with self.lock:
            if not self.stopping:
                self.waiting[handler] = handler.connection
                return
        handler.close_connection = True
        self._shut(handler.connection)

    def busy(self, handler) -> None:
        with self.lock:
            self.waiting.pop(handler, None)

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            idle, self.waiting = list(self.waiting.values()), {}
        for sock in idle:
            self._shut(sock)

    @staticmethod
    def _shut(sock) -> None:
        try:
            sock.shutdown(socket.SHUT_RD)  # a thread blocked reading the next request sees the end at once
        except OSError:
            pass


def make_handler(
    cfg: Config, store: OrderStore, log: JsonLog, hooks=(), draining=None, connections: Connections | None = None
):
    draining = draining or threading.Event()  # set on SIGTERM: /ready answers 503 from then on
    posts = {"n": 0}  # POSTs seen so far (FAULT_AFTER)
    posts_lock = threading.Lock()
    conns = connections or Connections()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        connections = conns  # serve() stops them on SIGTERM

        def setup(self):
            super().setup()
            conns.idle(self)

        def finish(self):
            conns.busy(self)
            super().finish()

        def parse_request(self):
            conns.busy(self)
            return super().parse_request()

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Request-Id", self.request_id)
            self.send_header("X-App-Version", cfg.version)
            if conns.stopping:  # shutting down: no further requests on this connection
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)
            self.status = code

        def _handle(self, method: str) -> None:
            self.request_id = self.headers.get("X-Request-Id") or uuid.uuid4().hex
            self.status = 500
            t0 = time.perf_counter()
            try:
                if cfg.extra_latency_ms:
                    time.sleep(cfg.extra_latency_ms / 1000)
                getattr(self, f"_{method}")()
            except Exception as e:  # a bug must not kill the process, and must be visible
                log("request_failed", level="ERROR", request_id=self.request_id, error=repr(e))
                self._send(500, {"error": "internal error", "request_id": self.request_id})
            ms = (time.perf_counter() - t0) * 1000
            route = "/orders/{id}" if self.path.startswith("/orders/") else self.path
            log(
                "request",
                request_id=self.request_id,
                method=method,
                path=route,
                status=self.status,
                duration_ms=round(ms, 2),
            )
            for hook in hooks:
                hook(method=method, route=route, status=self.status, seconds=ms / 1000, request_id=self.request_id)
            conns.idle(self)  # waiting for the next request on this keep-alive connection

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

        def _GET(self):
            if self.path == "/health":
                return self._send(200, {"status": "ok", "version": cfg.version})
            if self.path == "/ready":
                if draining.is_set():
                    return self._send(503, {"status": "shutting down"})
                ok, why = store.ready()
                return self._send(200 if ok else 503, {"status": "ready" if ok else "not ready", "detail": why})
            if self.path.startswith("/orders/"):
                order = store.load(self.path.rsplit("/", 1)[-1])
                return self._send(200, order) if order else self._send(404, {"error": "no such order"})
            self._send(404, {"error": "not found"})

        def _POST(self):
            if self.path != "/orders":
                return self._send(404, {"error": "not found"})
            try:
                order = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                assert isinstance(order, dict) and isinstance(order.get("item"), str)
            except (ValueError, AssertionError):
                return self._send(400, {"error": 'send JSON like {"item": "book", "qty": 1}'})
            with posts_lock:
                posts["n"] += 1
                seen = posts["n"]
            if cfg.fault_rate and seen > cfg.fault_after and random.random() < cfg.fault_rate:
                log("fault_injected", level="WARNING", request_id=self.request_id)
                return self._send(500, {"error": "injected fault", "request_id": self.request_id})
            order["id"] = uuid.uuid4().hex[:12]
            store.save(order)
            log("order_stored", request_id=self.request_id, order_id=order["id"])
            self._send(201, order)

        def log_message(self, fmt, *args):  # the JSON request log above replaces this
            pass

    return Handler


def serve(cfg: Config, log: JsonLog | None = None, store: OrderStore | None = None, hooks=()) -> int:
    log = log or JsonLog(cfg.log_level, service="orders")
    store = store or OrderStore(cfg)
    draining = threading.Event()
    handler = make_handler(cfg, store, log, hooks, draining)
    server = ThreadingHTTPServer((cfg.host, cfg.port), handler)
    server.daemon_threads = False  # in-flight requests finish before we exit
    server.block_on_close = True

    def on_sigterm(signum, frame):
        log("shutdown_requested", signal=signal.Signals(signum).name)
        draining.set()
        handler.connections.stop()  # idle keep-alive clients must not hold the process until SIGKILL
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    log("started", port=cfg.port, bucket=cfg.bucket, version=cfg.version, pid=os.getpid())
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    log("shutdown")
    return 0


def main() -> int:
    try:
        cfg = Config.from_env(os.environ)
    except ConfigError as e:
        JsonLog()("config_error", level="ERROR", error=str(e))
        return 78  # EX_CONFIG
    return serve(cfg)


if __name__ == "__main__":
    sys.exit(main())
