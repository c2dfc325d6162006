"""Releases behind a real load balancer: versions of the order service side by side, blue-green
switches and canary rollouts driven through haproxy's runtime API (:mod:`cloudlab.haproxy`).

* :func:`start_instance` runs one version of ``app.service`` as a lesson process (its version and
  faults set by configuration: ``APP_VERSION``, ``FAULT_RATE``, ``FAULT_AFTER``, ``EXTRA_LATENCY_MS``).
* :func:`blue_green` builds a balancer with two backends and one map entry that says which is live;
  :func:`switch` moves all new requests at once, once the target is healthy now (haproxy's checks
  say UP and it answers ``/health`` itself: haproxy's status lags behind a server that just died).
* :func:`canary_balancer` puts stable and canary in one backend; :func:`counters` reads haproxy's
  per-server counters; :func:`canary` is a reference controller (5 -> 25 -> 100 %, each step judged
  on a sample of requests, roll back on errors or latency relative to stable).
* :class:`Traffic` is bounded background load (:func:`cloudlab.observability.run_load`).

Serves lesson 08 (and 09, which runs the same service behind the same balancer).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from . import aws, haproxy, net, procs
from . import observability as obs
from .lab import ROOT

SWITCH_RULE = "use_backend %[str(live),map(<map:active>,blue)]"


class ReleaseError(RuntimeError):
    """A release step could not be done safely; the message says what and why."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mReleaseError\x1b[0m: {self}"]


@dataclass
class Instance:
    """One running copy of the service: its process name, version and port on 127.0.0.1."""

    name: str
    version: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        proc = procs.running(self.name)
        return proc is not None and proc.alive()


def backing(bucket: str, queue: str) -> dict:
    """The order service's S3 bucket and SQS queue in the emulator, created if needed (idempotent)."""
    s3, sqs = aws.client("s3"), aws.client("sqs")
    try:
        s3.create_bucket(Bucket=bucket)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    return {"bucket": bucket, "queue_url": sqs.create_queue(QueueName=queue)["QueueUrl"]}


def start_instance(
    name: str,
    version: str,
    backing: dict,
    port: int | None = None,
    fault_rate: float = 0.0,
    fault_after: int = 0,
    latency_ms: int = 0,
    wait: bool = True,
    quiet: bool = False,
    timeout: float = 20.0,
) -> Instance:
    """Start ``app.service`` as process ``name`` (``lNN-...``), version ``version``; wait for /health."""
    port = port or net.free_port()
    env = {
        "ORDERS_BUCKET": backing["bucket"],
        "ORDERS_QUEUE_URL": backing["queue_url"],
        "PORT": str(port),
        "APP_VERSION": version,
        "FAULT_RATE": str(fault_rate),
        "FAULT_AFTER": str(fault_after),
        "EXTRA_LATENCY_MS": str(latency_ms),
        "LOG_LEVEL": "WARNING",
    }
    if not quiet:
        shown = " ".join(f"{k}={v}" for k, v in env.items() if k in ("APP_VERSION", "PORT") or v not in ("0", "0.0"))
        print(f"$ {shown} python -m app.service   # {name}")
    proc = procs.start(
        name,
        ["-m", "app.service"],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/health" if wait else None,
        cwd=str(ROOT),
        timeout=timeout,
    )
    return Instance(name, version, port, proc.pid)


# ------------------------------------------------------------------ blue-green
def blue_green(name: str, blue_port: int, green_port: int, live: str = "blue", quiet: bool = False, **checks):
    """haproxy with backends ``blue`` and ``green`` (one server each, health-checked on /health) and a
    map ``active`` whose entry ``live`` names the backend that gets the traffic. ``checks``: the
    balancer's health-check settings (``check_inter_ms``, ``fall``, ``rise``)."""
    return haproxy.Balancer(
        name,
        [
            haproxy.Backend("blue", [haproxy.Server("blue", blue_port)]),
            haproxy.Backend("green", [haproxy.Server("green", green_port)]),
        ],
        rules=[SWITCH_RULE],
        maps={"active": {"live": live}},
        quiet=quiet,
        **checks,
    ).start()


def live(lb) -> str:
    """The backend that gets new requests now, as haproxy holds it in memory."""
    return lb.show_map("active").get("live", "blue")


def healthy(url: str, timeout: float = 1.0) -> bool:
    """Does the server at ``url`` answer ``GET /health`` with 200 right now (asked directly, not through haproxy)?"""
    try:
        return net.request("GET", f"{url}/health", timeout=timeout).status == 200
    except OSError:
        return False


def switch(lb, to: str, health_timeout: float = 10.0) -> float:
    """Blue-green: move all new requests to ``to`` with one runtime command, only once it is healthy NOW:
    haproxy's health checks say UP *and* the server answers ``/health`` when asked directly. haproxy's
    status lags: a server that died a moment ago stays UP there until ``fall`` checks have failed
    (``fall`` x ``inter``), so UP alone can send every request to a dead server. The other colour keeps
    running, for an instant rollback. Returns the seconds waited; :class:`ReleaseError` (traffic stays
    where it is) when ``to`` is not healthy within ``health_timeout`` seconds."""
    t0 = time.monotonic()
    url = lb.server_url(to, to)
    status = "?"
    while True:
        status = lb.status(to, to)
        answers = status == "UP" and healthy(url)
        if answers:
            break
        if time.monotonic() - t0 > health_timeout:
            said = f"haproxy says {status}" + (", but it does not answer /health itself" if status == "UP" else "")
            raise ReleaseError(
                f"not switching to {to}: it is not healthy after {health_timeout:g} s ({said}). "
                "The traffic stays where it is."
            )
        time.sleep(0.05)
    lb.set_map("active", "live", to)
    return time.monotonic() - t0


# ------------------------------------------------------------------ canary
def canary_balancer(name: str, stable_port: int, canary_port: int, quiet: bool = False):
    """One backend ``app``: ``stable`` at weight 100 and ``canary`` at weight 0 (no traffic yet). No redispatch:
    a request stable could not take is retried on stable, never handed to the canary (its share stays its weight)."""
    servers = [haproxy.Server("stable", stable_port, 100), haproxy.Server("canary", canary_port, 0)]
    return haproxy.Balancer(name, [haproxy.Backend("app", servers, redispatch=False)], quiet=quiet).start()


def counters(lb, server: str, backend: str = "app") -> dict:
    """haproxy's counters of one server: requests answered, 5xx responses, average response time (ms,
    over its last 1024 requests), weight and status."""
    row = lb.server(backend, server)

    def num(key):
        try:
            return int(row.get(key) or 0)
        except ValueError:
            return 0

    return {
        "requests": num("stot"),
        "errors": num("hrsp_5xx"),
        "avg_ms": num("rtime"),
        "weight": num("weight"),
        "status": row["status"].split()[0],
    }


def delta(before: dict, after: dict) -> dict:
    """What happened between two :func:`counters` readings."""
    n = after["requests"] - before["requests"]
    e = after["errors"] - before["errors"]
    return {"requests": n, "errors": e, "error_ratio": e / n if n else 0.0, "avg_ms": after["avg_ms"]}


def set_canary(lb, percent: int, backend: str = "app") -> None:
    """Send ``percent`` % of new requests to the canary (weights: canary = percent, stable = 100 - percent)."""
    lb.set_weight(backend, "canary", percent)
    lb.set_weight(backend, "stable", 100 - percent)


def canary(
    lb,
    observe,
    steps=(5, 25, 100),
    max_error_ratio: float = 0.01,
    max_extra_ms: float = 250.0,
    min_requests: int = 8,
    max_observes: int = 4,
    quiet: bool = False,
) -> str:
    """A reference canary controller: at each step shift traffic, ``observe()`` (real traffic for a
    while), and compare the canary's own counters in haproxy with the stable version's. A step is
    judged on at least ``min_requests`` requests that reached the canary (``observe()`` again, at most
    ``max_observes`` times: one request is an anecdote, not a measurement; too little traffic to judge
    is a roll back). Roll back at once when the canary's error ratio is over ``max_error_ratio`` or its
    average response time is more than ``max_extra_ms`` above stable's; promote after the last step.
    Returns "promoted" or "rolled back"."""
    for pct in steps:
        set_canary(lb, pct)
        before = counters(lb, "canary")
        for _ in range(max_observes):
            observe()
            d = delta(before, counters(lb, "canary"))
            if d["requests"] >= min_requests:
                break
        base = counters(lb, "stable")["avg_ms"]
        few = d["requests"] < min_requests
        bad = few or d["error_ratio"] > max_error_ratio or d["avg_ms"] > base + max_extra_ms
        if not quiet:
            verdict = "ROLL BACK (too few requests to judge)" if few else ("ROLL BACK" if bad else "ok")
            print(
                f"  canary at {pct:>3} %: {d['requests']:>4} requests, {d['errors']:>3} errors "
                f"({d['error_ratio']:.0%}), avg {d['avg_ms']} ms (stable {base} ms) -> {verdict}"
            )
        if bad:
            set_canary(lb, 0)
            return "rolled back"
    return "promoted"


# ------------------------------------------------------------------ traffic
class Traffic:
    """Bounded load in the background, in half-second batches: ``with Traffic(url, seconds=10) as t:
    ...``. Leaving the block stops it (after the current batch); it also stops by itself after
    ``seconds``. ``t.results`` and ``t.summary`` hold what happened."""

    def __init__(self, url: str, seconds: float = 10.0, rate: float = 60.0, post_share: float = 0.9, seed: int = 8):
        self.url, self.seconds, self.rate, self.post_share, self.seed = url, seconds, rate, post_share, seed
        self.results: list[dict] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self):
        deadline = time.monotonic() + self.seconds
        batch = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            batch += 1
            n = max(1, int(self.rate / 2))
            self.results += obs.run_load(
                self.url, n=n, rate=self.rate, max_seconds=1.0, post_share=self.post_share, seed=self.seed + batch
            )

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.results if r["status"] >= 500]

    def after(self, t: float) -> list[dict]:
        """The requests sent after ``t`` (a ``time.time()``)."""
        return [r for r in self.results if r["t"] >= t]

    @property
    def summary(self) -> dict:
        return obs.summarize(self.results) if self.results else {"requests": 0, "errors": 0}


def version_of(url: str, timeout: float = 3.0) -> str:
    """The X-App-Version of one answer from ``url``/health ("no answer" or "HTTP <status>" otherwise)."""
    try:
        r = net.request("GET", f"{url}/health", timeout=timeout)
    except OSError:
        return "no answer"
    headers = {k.lower(): v for k, v in r.headers.items()}  # haproxy sends header names in lower case
    return headers.get("x-app-version", f"HTTP {r.status}")
