"""What really happened in the drill, read from the real records: the change log, the pager, Prometheus, haproxy's
traffic. The checks compare the learner's answers with these; the lesson shows the same numbers.

Times are epoch seconds; durations are lab minutes (one real second each, at the lab's 60x).
"""

from __future__ import annotations

import math
import time

from ..observability import prom
from . import signals, system

SLO_TARGET = 0.995  # lesson 04's availability SLO: 99.5 % of requests over 30 days
SLO_DAYS = 30
BUDGET_MINUTES = SLO_DAYS * 24 * 60 * (1 - SLO_TARGET)  # 216 minutes of full outage
BALANCER_FAILURES = (502, 503, 504, 599)  # answers the service never sends: haproxy's own, or no answer at all


def impact_start(changes: list[dict] | None = None, bad: set[str] | None = None) -> float | None:
    """When the first bad release went live: the switch that sent traffic to it."""
    sc = system.the_scenario()
    bad = bad if bad is not None else {r.id for r in sc.releases if r.bad}
    for e in changes if changes is not None else system.events("switch"):
        if e.get("kind") == "switch" and e.get("release") in bad:
            return e["t"]
    return None


def first_page(pager: list[dict] | None = None) -> signals.Page | None:
    got = [p for p in signals.alerts_delivered(pager) if p.path == "/pager" and p.status == "firing"]
    return got[0] if got else None


def incident_times(pager: list[dict], changes: list[dict], bad: set[str]) -> dict[str, float | None]:
    """The reference answer of task 6: start, detected, acknowledged, mitigated, resolved (epoch seconds).

    start: the switch to the first bad release. detected: the first firing page delivered to /pager after it.
    acknowledged: the first acknowledgement of a delivered page. mitigated: the first switch, after the start,
    to a release that is not bad. resolved: once every page that fired since the start has resolved, the last of
    those "resolved" notifications (None while one is still open)."""
    start = next((e["t"] for e in changes if e.get("kind") == "switch" and e.get("release") in bad), None)
    out: dict[str, float | None] = {k: None for k in ("start", "detected", "acknowledged", "mitigated", "resolved")}
    out["start"] = start
    if start is None:
        return out
    alerts = signals.alerts_delivered(pager)
    paged = [p for p in alerts if p.path == "/pager" and p.status == "firing" and p.received_at >= start]
    if paged:
        out["detected"] = paged[0].received_at
        fps: dict[str, float] = {}
        for p in paged:
            fps.setdefault(p.fingerprint, p.received_at)  # its first delivery (Alertmanager repeats a firing page)
        acked = [
            n["received_at"]
            for n in pager
            if n.get("path") == "/ack"
            and isinstance(n.get("payload"), dict)
            and n["payload"].get("fingerprint") in fps
            and n["received_at"] >= fps[n["payload"]["fingerprint"]]
        ]
        out["acknowledged"] = min(acked) if acked else None
        last: dict[str, signals.Page] = {}
        for p in alerts:
            if p.path == "/pager" and p.fingerprint in fps and p.received_at >= start:
                last[p.fingerprint] = p
        if last and all(p.status == "resolved" for p in last.values()):
            out["resolved"] = max(p.received_at for p in last.values())
    out["mitigated"] = next(
        (e["t"] for e in changes if e.get("kind") == "switch" and e["t"] > start and e.get("release") not in bad), None
    )
    return out


def durations(times: dict) -> dict[str, float | None]:
    """Time to detect, acknowledge, mitigate, resolve, in lab minutes (TTA from the page, the rest from the start)."""

    def d(a, b):
        return None if times.get(a) is None or times.get(b) is None else round(times[b] - times[a], 1)

    return {
        "TTD": d("start", "detected"),
        "TTA": d("detected", "acknowledged"),
        "TTM": d("start", "mitigated"),
        "TTR": d("start", "resolved"),
    }


def now_times() -> dict[str, float | None]:
    sc = system.the_scenario()
    return incident_times(signals.pager_log(), system.events(), {r.id for r in sc.releases if r.bad})


# ------------------------------------------------------------------ the SLO, by Prometheus
def burnt(prometheus: prom.Prometheus, start: float, end: float) -> dict[str, float]:
    """The availability error budget burnt between ``start`` and ``end``: bad requests / all requests in the
    window (Prometheus' ``increase``), times the window's length in lab minutes; and that as a share of the 30-day
    budget (216 minutes at 99.5 %)."""
    seconds = max(1, round(end - start))
    sel = 'orders_requests_total{job="orders"'
    bad = prometheus.value(f'sum(increase({sel}, status=~"5.."}}[{seconds}s]))', at=end) or 0.0
    total = prometheus.value(f"sum(increase({sel}}}[{seconds}s]))", at=end) or 0.0
    minutes = bad / total * seconds if total else 0.0
    return {"minutes": round(minutes, 3), "percent": round(100 * minutes / BUDGET_MINUTES, 4)}


def close(got, want: float, rel: float = 0.25, floor: float = 0.15) -> bool:
    """Is ``got`` a number within ``rel`` (relative) or ``floor`` (absolute) of ``want``?"""
    if isinstance(got, bool) or not isinstance(got, (int, float)) or math.isnan(got):
        return False
    return abs(got - want) <= max(floor, rel * abs(want))


# ------------------------------------------------------------------ traffic through haproxy
def requests_between(a: float, b: float) -> list[dict]:
    return [r for r in system.read_lines(system.drill_dir() / "load.jsonl") if a <= r.get("t", 0) <= b]


def balancer_failures(a: float, b: float, timeout: float = 8.0) -> tuple[int, int]:
    """(requests that failed at the balancer, all requests) sent between ``a`` and ``b``. The traffic writes its
    results every two seconds: wait (at most ``timeout``) until they reach ``b``."""
    path = system.drill_dir() / "load.jsonl"
    wait(lambda: max((r.get("t", 0) for r in system.read_lines(path)[-50:]), default=0) >= b, timeout)
    got = requests_between(a, b)
    return sum(1 for r in got if r.get("status") in BALANCER_FAILURES), len(got)


def wait(fn, timeout: float, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(every)
