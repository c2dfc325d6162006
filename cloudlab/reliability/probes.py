"""Steady-state probes of the fleet, as commands a Chaos Toolkit experiment runs (exit 0 = as expected).

    python -m cloudlab.reliability.probes zones-up --min 3
    python -m cloudlab.reliability.probes error-ratio --requests 40 --rate 40 --max 0.02

Each prints what it saw (one JSON line), so the experiment's journal holds the evidence. They read the
fleet's state file and haproxy's stats; the load goes through the load balancer, like a user's.
Serves lesson 09.
"""

from __future__ import annotations

import argparse
import json
import sys

from .. import haproxy, net
from . import fleet


def _lb() -> tuple[dict, str]:
    st = fleet.load_state()
    if "lb" not in st:
        raise SystemExit(json.dumps({"error": "no fleet.json with a load balancer: start the fleet first"}))
    return st, st["lb"]["url"]


def zones_up(min_up: int) -> int:
    st, _ = _lb()
    lb = haproxy.Balancer(st["lb"]["name"], [haproxy.Backend(fleet.BACKEND)], quiet=True)
    try:
        rows = {r["svname"]: r["status"].split()[0] for r in lb.stats() if r["pxname"] == fleet.BACKEND}
    except haproxy.HaproxyError as e:
        print(json.dumps({"error": str(e)}))
        return 2
    base = {n: s for n, s in st["instances"].items() if not s.get("spare")}
    up = sorted(s["server"] for s in base.values() if rows.get(s["server"]) == "UP")
    zones = sorted({s["az"] for s in base.values() if s["server"] in up})
    print(json.dumps({"up": up, "of": len(base), "zones_up": zones}))
    return 0 if len(up) >= min_up else 1


def error_ratio(requests: int, rate: float, max_ratio: float) -> int:
    from ..observability import run_load

    _, url = _lb()
    if not net.answers(url + "/health", timeout=2):
        print(json.dumps({"error": f"the load balancer at {url} does not answer"}))
        return 2
    res = run_load(
        url, n=requests, rate=rate, max_seconds=requests / rate + 3, concurrency=8, post_share=0.5, timeout=3
    )
    failed = sum(1 for r in res if r["status"] >= 500)
    ratio = failed / len(res) if res else 1.0
    print(json.dumps({"requests": len(res), "failed": failed, "ratio": round(ratio, 4), "max": max_ratio}))
    return 0 if res and ratio <= max_ratio else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cloudlab.reliability.probes")
    sub = p.add_subparsers(dest="cmd", required=True)
    z = sub.add_parser("zones-up", help="at least MIN of the fleet's instances are UP in haproxy")
    z.add_argument("--min", type=int, default=3)
    e = sub.add_parser("error-ratio", help="send requests through the load balancer; the failed share <= MAX")
    e.add_argument("--requests", type=int, default=40)
    e.add_argument("--rate", type=float, default=40)
    e.add_argument("--max", type=float, default=0.02)
    a = p.parse_args(argv)
    if a.cmd == "zones-up":
        return zones_up(a.min)
    return error_ratio(a.requests, a.rate, a.max)


if __name__ == "__main__":
    sys.exit(main())
