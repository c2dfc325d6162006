"""A dependency that fails on purpose: a small HTTP server whose faults are set at run time.

Run as a lesson process (``python -m cloudlab.reliability.dependency --port P``), on 127.0.0.1. Any
path answers ``{"price": 42}`` unless a fault says otherwise. ``POST /_fault`` sets the faults:

* ``script``: the statuses of the next requests, in order (``[503, 503, 200]``; ``"hang"`` = no answer);
* ``error_rate`` (0..1) and ``error_status`` (503): a seeded share of requests fail;
* ``latency_ms``: every answer is that much slower;
* ``outage_s``: every request in the next N seconds gets ``error_status`` (an outage that ends);
* ``hang_s``: how long a "hang" lasts before the server gives up (at most 30 s: faults are bounded);
* ``capacity`` (0: no limit) and ``capacity_window_ms`` (100): at most ``capacity`` requests per sliding window
  are served, the others get ``error_status`` at once (a service with finite capacity, overloaded).

``GET /_stats`` returns every request it saw (arrival time, status), so a lesson can plot the load a
retry policy puts on a dependency; ``POST /_reset`` forgets them. :class:`Dependency` is the client.
Standard library only. Serves lesson 09.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .. import net
from .retry import Rejected, Unavailable, error_for_status

MAX_HANG_S = 30.0
DEFAULTS = {
    "script": [],
    "error_rate": 0.0,
    "error_status": 503,
    "latency_ms": 0,
    "outage_s": 0,
    "hang_s": 10.0,
    "capacity": 0,
    "capacity_window_ms": 100,
}


class State:
    def __init__(self, seed: int = 9):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.fault = dict(DEFAULTS)
        self.outage_until = 0.0
        self.arrivals: list[list] = []
        self.served: deque[float] = deque()  # when the requests inside the capacity window were served

    def set_fault(self, body: dict) -> dict:
        with self.lock:
            unknown = set(body) - set(DEFAULTS) - {"seed"}
            if unknown:
                raise ValueError(f"unknown fault setting(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
            if "seed" in body:
                self.rng = random.Random(body["seed"])
            self.fault.update({k: v for k, v in body.items() if k != "seed"})
            self.fault["hang_s"] = min(float(self.fault["hang_s"]), MAX_HANG_S)
            if not 0 <= float(self.fault["error_rate"]) <= 1:
                raise ValueError("error_rate is a share from 0 to 1")
            self.outage_until = time.monotonic() + float(self.fault["outage_s"]) if body.get("outage_s") else 0.0
            return dict(self.fault)

    def decide(self):
        """What to answer to the next request: a status, or 'hang'."""
        with self.lock:
            if self.fault["script"]:
                return self.fault["script"].pop(0)
            if time.monotonic() < self.outage_until:
                return int(self.fault["error_status"])
            if self.fault["error_rate"] and self.rng.random() < float(self.fault["error_rate"]):
                return int(self.fault["error_status"])
            if self.fault["capacity"]:
                now, window = time.monotonic(), float(self.fault["capacity_window_ms"]) / 1000
                while self.served and self.served[0] <= now - window:
                    self.served.popleft()
                if len(self.served) >= int(self.fault["capacity"]):
                    return int(self.fault["error_status"])  # overloaded: more than it can serve in the window
                self.served.append(now)
            return 200


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}"
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("send a JSON object")
            return data

        def do_POST(self):
            try:
                if self.path == "/_fault":
                    return self._send(200, state.set_fault(self._body()))
                if self.path == "/_reset":
                    with state.lock:
                        state.arrivals.clear()
                        state.fault = dict(DEFAULTS)
                        state.outage_until = 0.0
                        state.served.clear()
                    return self._send(200, {"reset": True})
            except (ValueError, TypeError) as e:
                return self._send(400, {"error": str(e)})
            self.do_GET()

        def do_GET(self):
            if self.path == "/health":
                return self._send(200, {"status": "ok"})
            if self.path == "/_fault":
                with state.lock:
                    return self._send(200, dict(state.fault))
            if self.path == "/_stats":
                with state.lock:
                    return self._send(200, {"arrivals": list(state.arrivals)})
            t = time.time()
            what = state.decide()
            if state.fault["latency_ms"]:
                time.sleep(float(state.fault["latency_ms"]) / 1000)
            if what == "hang":
                with state.lock:
                    state.arrivals.append([t, 0])
                time.sleep(float(state.fault["hang_s"]))
                self.close_connection = True
                return
            code = int(what)
            with state.lock:
                state.arrivals.append([t, code])
            self._send(code, {"price": 42} if code < 400 else {"error": f"injected {code}"})

        def log_message(self, *args):
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a burst of callers must not overflow the listen backlog (the default is 5)
    daemon_threads = True


def serve(port: int, seed: int = 9) -> None:
    server = _Server((net.LOOPBACK, port), make_handler(State(seed)))
    print(json.dumps({"event": "started", "port": port}), flush=True)
    server.serve_forever(poll_interval=0.1)


class Dependency:
    """The client of a fault-injecting dependency at ``url``: calls, faults, and what it saw."""

    def __init__(self, url: str, quiet: bool = False):
        self.url = url.rstrip("/")
        self.quiet = quiet

    def get(self, path: str = "/price", timeout: float | None = 2.0):
        """One call. Returns the JSON body; raises Unavailable (5xx, 429, no answer, timeout) or Rejected (4xx).

        ``timeout=None`` waits forever, which is exactly the bug a timeout prevents.
        """
        try:
            r = net.request("GET", self.url + path, timeout=timeout)
        except OSError as e:
            raise Unavailable(f"no answer from {self.url}{path}: {e or type(e).__name__}") from None
        err = error_for_status(r.status, f"{self.url}{path}")
        if err is not None:
            raise err
        return r.json()

    def set_fault(self, **fault) -> dict:
        """Set faults (see the module's docstring); prints the real request, as curl would send it."""
        if not self.quiet:
            print(f"$ curl -s -X POST {self.url}/_fault -d '{json.dumps(fault)}'")
        r = net.request("POST", self.url + "/_fault", fault, timeout=3)
        if r.status != 200:
            raise Rejected(f"the dependency refused the fault {fault}: {r.json({}).get('error', r.status)}", r.status)
        return r.json()

    def reset(self) -> None:
        net.request("POST", self.url + "/_reset", {}, timeout=3)

    def arrivals(self) -> list[tuple[float, int]]:
        """(epoch seconds, status) of every request the dependency saw since the last reset (0: hung)."""
        return [(float(t), int(s)) for t, s in net.get_json(self.url + "/_stats", timeout=3)["arrivals"]]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seed", type=int, default=9)
    a = p.parse_args(argv)
    serve(a.port, a.seed)


if __name__ == "__main__":
    main()
