"""A bounded load generator: real HTTP requests with request IDs, and their summary."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from .. import net
from ..stats import percentile
from .errors import NoDataPoints


# ===================================================================== load
def _request(url: str, method: str, body: dict | None, request_id: str, timeout: float) -> tuple[int, bytes]:
    try:
        r = net.request(method, url, body, headers={"X-Request-Id": request_id}, timeout=timeout)
        return r.status, r.body
    except (OSError, ValueError):
        return 599, b""  # no answer at all: counted as a server-side failure


def run_load(
    base_url: str,
    n: int = 400,
    concurrency: int = 8,
    post_share: float = 0.9,
    max_seconds: float = 10.0,
    rate: float | None = None,
    seed: int = 0,
    timeout: float = 5.0,
) -> list[dict]:
    """Send at most ``n`` requests, for at most ``max_seconds``; return one record per request.

    A share ``post_share`` of them create an order (POST /orders); the rest read one back
    (GET /orders/<id>). ``rate`` (requests/s) spaces them out evenly; without it they go as
    fast as ``concurrency`` workers allow. Each request gets its own X-Request-Id.
    """
    if n < 1 or not 0 <= post_share <= 1 or concurrency < 1:
        raise ValueError("need n >= 1, concurrency >= 1 and 0 <= post_share <= 1")
    rng = random.Random(seed)
    plan = ["POST" if rng.random() < post_share else "GET" for _ in range(n)]
    created: list[str] = []
    lock = threading.Lock()
    t0 = time.monotonic()
    deadline = t0 + max_seconds

    def one(i: int):
        if rate:
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        if time.monotonic() > deadline:
            return None
        rid = f"l04-{uuid.uuid4().hex[:16]}"
        with lock:
            known = created[rng.randrange(len(created))] if created else None
        if plan[i] == "POST" or known is None:
            method, route, url, body = "POST", "/orders", f"{base_url}/orders", {"item": "book", "qty": 1 + i % 3}
        else:
            method, route, url, body = "GET", "/orders/{id}", f"{base_url}/orders/{known}", None
        start = time.time()
        p0 = time.perf_counter()
        status, payload = _request(url, method, body, rid, timeout)
        seconds = time.perf_counter() - p0
        if status == 201:
            try:
                with lock:
                    created.append(json.loads(payload)["id"])
            except (ValueError, KeyError):
                pass
        return {"t": start, "seconds": seconds, "status": status, "method": method, "route": route, "request_id": rid}

    with ThreadPoolExecutor(concurrency) as ex:
        results = [r for r in ex.map(one, range(n)) if r is not None]
    return sorted(results, key=lambda r: r["t"])


def summarize(results: list[dict]) -> dict:
    """Requests, 5xx errors, error ratio, p50/p95/p99 latency (exact, from the client's clock)."""
    if not results:
        raise NoDataPoints("no requests in these results: did the load generator reach the service?")
    lat = sorted(r["seconds"] for r in results)
    errors = sum(1 for r in results if r["status"] >= 500)
    span = max(r["t"] + r["seconds"] for r in results) - min(r["t"] for r in results)
    return {
        "requests": len(results),
        "errors": errors,
        "error_ratio": errors / len(results),
        "rps": len(results) / span if span > 0 else float("nan"),
        "p50": percentile(lat, 50),
        "p95": percentile(lat, 95),
        "p99": percentile(lat, 99),
    }


def main(argv=None) -> int:
    """Steady background traffic until stopped (SIGTERM): ``python -m cloudlab.observability.load URL ...``.

    Each result is appended to ``--results`` as a JSON line, so a notebook can compare what the
    clients saw with what the service's metrics say. Run it through :mod:`cloudlab.procs`.
    """
    import argparse

    ap = argparse.ArgumentParser(description="Steady HTTP load on the order service, until stopped.")
    ap.add_argument("url")
    ap.add_argument("--rate", type=float, default=10.0, help="requests per second")
    ap.add_argument("--post-share", type=float, default=0.8)
    ap.add_argument("--results", required=True, help="a JSON-lines file, one line per request")
    args = ap.parse_args(argv)
    print(json.dumps({"event": "started", "url": args.url, "rate": args.rate}), flush=True)
    seed = 0
    while True:
        seed += 1
        chunk = run_load(
            args.url,
            n=max(1, int(args.rate * 2)),
            rate=args.rate,
            max_seconds=2.0,
            concurrency=4,
            post_share=args.post_share,
            seed=seed,
            timeout=2.0,
        )
        with open(args.results, "a") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in chunk))


if __name__ == "__main__":
    raise SystemExit(main())
