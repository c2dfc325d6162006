"""Lesson 09's retry storm: many callers, one outage, a dependency with finite capacity, with and without jitter.

``CLIENTS`` callers call the lesson's dependency at the same moment, during an outage of ``OUTAGE_S``; once it
is back it serves at most ``CAPACITY`` requests per ``WINDOW_S`` and refuses the rest (503, overloaded). Each
caller retries with :func:`cloudlab.reliability.retry_call` (capped exponential backoff, ``jitter`` none or
full). :func:`summary` turns the dependency's own record of arrivals into the numbers the lesson's text talks
about, and :func:`findings` states those claims for one pair of runs, each checked against the data (the
tests run it several times: the text must hold every run).
"""

from __future__ import annotations

import threading
import time

from ..reliability.dependency import Dependency
from ..reliability.retry import Unavailable, retry_call
from ..tables import Table

CLIENTS, OUTAGE_S, CAPACITY, WINDOW_S = 40, 0.5, 8, 0.125
ATTEMPTS, BASE, CAP = 5, 0.125, 1.0


def storm(
    dep: Dependency,
    jitter: str,
    clients: int = CLIENTS,
    outage_s: float = OUTAGE_S,
    capacity: int = CAPACITY,
    window_s: float = WINDOW_S,
    attempts: int = ATTEMPTS,
    base: float = BASE,
    cap: float = CAP,
) -> dict:
    """Run the storm once; returns what the dependency saw and how the callers fared."""
    dep.reset()
    fault = {"outage_s": outage_s, "capacity": capacity, "capacity_window_ms": int(window_s * 1000)}
    # the outage starts when every caller is ready: the last one to arrive at the barrier sets it, then all go
    barrier = threading.Barrier(clients, action=lambda: dep.set_fault(**fault))
    outcome: dict = {"ok": 0, "gave_up": 0, "answered_at": []}
    lock = threading.Lock()

    def caller():
        barrier.wait()
        try:
            retry_call(lambda: dep.get(timeout=3), attempts=attempts, base=base, cap=cap, jitter=jitter)
            key = "ok"
        except Unavailable:
            key = "gave_up"
        with lock:
            outcome[key] += 1
            if key == "ok":
                outcome["answered_at"].append(time.time())

    quiet, dep.quiet = dep.quiet, True
    try:
        threads = [threading.Thread(target=caller, daemon=True) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        seen = sorted(dep.arrivals())
    finally:
        dep.quiet = quiet
    dep.reset()
    t0 = seen[0][0] if seen else time.time()
    return {
        "jitter": jitter,
        "arrivals": [(t - t0, s) for t, s in seen],
        "ok": outcome["ok"],
        "gave_up": outcome["gave_up"],
        "answered_at": sorted(t - t0 for t in outcome["answered_at"]),
        "clients": clients,
        "outage_s": outage_s,
        "capacity": capacity,
        "window_s": window_s,
    }


def _busiest(times: list[float], width: float) -> int:
    """The most arrivals in any ``width``-long slice (a sliding window, like the dependency's)."""
    times, best, lo = sorted(times), 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def summary(run: dict) -> dict:
    """The numbers the lesson compares: the first burst, the busiest slice after the outage, what was refused
    after it (overload: the outage was over), how many callers got their answer, and when the last did."""
    arrivals, n, out, w = run["arrivals"], run["clients"], run["outage_s"], run["window_s"]
    first = sorted(t for t, _ in arrivals)[:n]
    after = [(t, s) for t, s in arrivals if t >= out + 0.02]  # 20 ms: the outage's end, seen from two processes
    return {
        "jitter": run["jitter"],
        "requests": len(arrivals),
        "first_burst_s": (first[-1] - first[0]) if first else 0.0,
        "busiest_after": _busiest([t for t, _ in after], w),
        "refused_after": sum(1 for _, s in after if s >= 500),
        "ok": run["ok"],
        "gave_up": run["gave_up"],
        "last_answer_s": run["answered_at"][-1] if run["answered_at"] else None,
    }


def table(runs: list[dict]) -> Table:
    w = runs[0]["window_s"] * 1000
    rows = []
    for s in map(summary, runs):
        last = f"{s['last_answer_s']:.2f} s" if s["last_answer_s"] is not None else "-"
        rows.append((s["jitter"], s["requests"], s["busiest_after"], s["refused_after"], s["ok"], s["gave_up"], last))
    cols = (
        "jitter",
        "requests in all",
        f"busiest {w:.0f} ms after the outage",
        "refused after the outage (overload)",
        "callers answered",
        "gave up",
        "last answer",
    )
    r0 = runs[0]
    note = (
        f"{r0['clients']} callers, an outage of {r0['outage_s']:g} s, then at most {r0['capacity']} requests per "
        f"{w:.0f} ms served"
    )
    return Table(cols, rows, notes=[note])


def claims(runs: list[dict]) -> list[tuple[bool, str]]:
    """The lesson's claims about one run without jitter and one with full jitter: (holds?, the claim with numbers)."""
    by = {r["jitter"]: summary(r) for r in runs}
    return claims_of(by["none"], by["full"], runs[0])


def average(summaries: list[dict]) -> dict:
    """The mean of several runs' summaries (same jitter): what the claims say of the storm in general."""
    keys = ("requests", "first_burst_s", "busiest_after", "refused_after", "ok", "gave_up")
    out = {k: round(sum(s[k] for s in summaries) / len(summaries), 3) for k in keys}
    return {"jitter": summaries[0]["jitter"], **out}


def claims_of(none: dict, full: dict, r0: dict) -> list[tuple[bool, str]]:
    """The claims for a summary without jitter and one with full jitter (``r0``: a run, for its settings)."""
    n, cap, w = r0["clients"], r0["capacity"], r0["window_s"] * 1000
    return [
        (
            max(none["first_burst_s"], full["first_burst_s"]) <= 0.25,
            f"both runs start with the same burst: all {n} callers within "
            f"{max(none['first_burst_s'], full['first_burst_s']) * 1000:.0f} ms, refused by the outage",
        ),
        (
            none["busiest_after"] >= 3 * cap and none["busiest_after"] >= 2 * full["busiest_after"],
            f"without jitter the retries after the outage come as one wave: {none['busiest_after']} requests in "
            f"{w:.0f} ms where {cap} can be served (with full jitter at most {full['busiest_after']})",
        ),
        (
            full["refused_after"] * 3 <= none["refused_after"],
            f"so the recovered dependency refused {none['refused_after']} requests without jitter, "
            f"{full['refused_after']} with full jitter",
        ),
        (
            full["ok"] >= none["ok"] + n // 5,
            f"with full jitter {full['ok']} of {n} callers got their answer, without jitter {none['ok']}",
        ),
        (
            abs(none["requests"] - full["requests"]) <= 0.2 * max(none["requests"], full["requests"]),
            f"the number of requests in all is about the same ({none['requests']} and {full['requests']}): "
            "jitter does not save work, it spreads it in time",
        ),
    ]


def findings(runs: list[dict]) -> str:
    """The claims of this run, each marked as holding or not (never silently wrong)."""
    lines = []
    for ok, text in claims(runs):
        lines.append(("  - " if ok else "  - NOT THIS RUN (a very busy machine?): ") + text)
    return "What this run shows:\n" + "\n".join(lines)


def plot(runs: list[dict]):
    """Requests per slice of the capacity window, served and refused, one panel per run."""
    import matplotlib.pyplot as plt

    w = runs[0]["window_s"]
    fig, axes = plt.subplots(len(runs), 1, figsize=(7, 2.3 * len(runs)), sharex=True, sharey=True, squeeze=False)
    end = max(t for r in runs for t, _ in r["arrivals"]) + w
    bins = [i * w for i in range(int(end / w) + 2)]
    for ax, run in zip(axes[:, 0], runs, strict=True):
        served = [t for t, s in run["arrivals"] if s < 500]
        refused = [t for t, s in run["arrivals"] if s >= 500]
        ax.hist([served, refused], bins=bins, stacked=True, color=["tab:green", "tab:red"], label=["served", "503"])
        ax.axvspan(0, run["outage_s"], color="grey", alpha=0.15, label="outage")
        ax.axhline(run["capacity"], color="black", ls="--", lw=1, label=f"capacity per {w * 1000:.0f} ms")
        s = summary(run)
        ax.set_title(f"jitter={run['jitter']}: {s['ok']} of {run['clients']} callers answered, {s['gave_up']} gave up")
        ax.set_ylabel("requests")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("seconds since the first request")
    fig.tight_layout()
    return fig
