"""One release of the order service: lesson 04's instrumented service (``app.observed``: JSON logs, Prometheus
metrics, OpenTelemetry spans), plus the change this release ships.

``python -m cloudlab.lesson10.release`` with the service's usual settings (``ORDERS_BUCKET``, ``PORT``,
``APP_VERSION`` ...) and ``RELEASE_CHANGE``: empty for a good release, or the JSON the drill's scenario hands it
(``{"route": "GET /orders/{id}", "latency_ms": 300, "error_rate": 0.5, "span": "cache.Get", "error": ...}``).
A bad change wraps one store call of one route: it takes ``latency_ms`` longer inside a CLIENT span of its own
and fails ``error_rate`` of the requests with the named error, so the logs, the metrics (by route) and the traces
(the slow, failing child span) all show it, and nothing else changes. Serves lesson 10.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

ERRORS = {"TimeoutError": TimeoutError, "ConnectionError": ConnectionError}


def parse_change(text: str | None) -> dict | None:
    """The change of a release, or None for a good one; ValueError when it is not a change."""
    if not text:
        return None
    change = json.loads(text)
    if change.get("route") not in ("POST /orders", "GET /orders/{id}"):
        raise ValueError(f"a change names the route POST /orders or GET /orders/{{id}}, not {change.get('route')!r}")
    return change


def make_error(spec: str) -> Exception:
    """``"TimeoutError('inventory reservation timed out')"`` -> that exception."""
    name, _, rest = spec.partition("(")
    return ERRORS.get(name, RuntimeError)(rest.rstrip(")").strip("'\""))


def install(change: dict, seed: int = 0) -> None:
    """Wrap the store call of ``change['route']`` in the running process (``app.service.OrderStore``)."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from app.service import OrderStore

    rng = random.Random(seed)
    method = "save" if change["route"] == "POST /orders" else "load"
    original = getattr(OrderStore, method)
    ms, rate, span_name = float(change["latency_ms"]), float(change["error_rate"]), change["span"]

    def changed(self, *args, **kwargs):
        tracer = trace.get_tracer("orders.release")
        with tracer.start_as_current_span(span_name, kind=SpanKind.CLIENT) as span:
            time.sleep(ms / 1000)
            if rng.random() < rate:
                err = make_error(change["error"])
                span.set_status(Status(StatusCode.ERROR, type(err).__name__))
                raise err
        return original(self, *args, **kwargs)

    setattr(OrderStore, method, changed)


def close_idle_on_shutdown(observed) -> None:
    """On SIGTERM, ``app.observed`` stops its server but, unlike ``app.service``, leaves the keep-alive connections
    haproxy holds open, so the process waits for them until the grace period ends (5 s, then SIGKILL). Close the
    idle ones first, as ``app.service`` does (requests in flight still finish)."""
    base = observed.ThreadingHTTPServer

    class Server(base):
        def shutdown(self):
            conns = getattr(self.RequestHandlerClass, "connections", None)
            if conns is not None:
                conns.stop()
            super().shutdown()

    observed.ThreadingHTTPServer = Server


def main() -> int:
    from app import observed

    close_idle_on_shutdown(observed)
    change = parse_change(os.environ.get("RELEASE_CHANGE"))
    if change:
        install(change, int(os.environ.get("FAULT_SEED") or 0))
    return observed.main()


if __name__ == "__main__":
    sys.exit(main())
