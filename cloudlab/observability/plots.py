"""Observability plots (matplotlib): latency, a trace waterfall, error ratios per window, a dashboard."""

from __future__ import annotations

from .metrics import quantile_from_buckets
from .traces import duration_ms, slow_span, span_tree


# ==================================================================== plots
def plot_latency(results: list[dict], buckets: list[tuple[float, float]] | None = None, slo_s: float | None = None):
    """Latency distribution (log x) with p50/p95/p99 marked; optional histogram estimates and SLO line."""
    import matplotlib.pyplot as plt
    import numpy as np

    lat = np.array([r["seconds"] for r in results])
    fig, ax = plt.subplots(figsize=(8, 3.4))
    bins = np.logspace(np.log10(max(lat.min(), 1e-4)), np.log10(lat.max() * 1.01), 40)
    ax.hist(lat, bins=bins, color="#8aa9c9")
    ax.set_xscale("log")
    for q, c in ((50, "green"), (95, "orange"), (99, "red")):
        v = np.percentile(lat, q)
        ax.axvline(v, color=c, lw=1.5, label=f"p{q} (exact) {v * 1000:.0f} ms")
        if buckets:
            est = quantile_from_buckets(buckets, q / 100)
            ax.axvline(est, color=c, lw=1.5, ls=":", label=f"p{q} (from buckets) {est * 1000:.0f} ms")
    if slo_s:
        ax.axvline(slo_s, color="black", ls="--", lw=1, label=f"SLO threshold {slo_s * 1000:.0f} ms")
    ax.set_xlabel("latency (s, log scale)")
    ax.set_ylabel("requests")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{len(lat)} requests")
    fig.tight_layout()
    return fig


def plot_waterfall(trace_spans: list[dict], title: str = ""):
    """A trace as a waterfall: one bar per span, indented by depth, the slow span highlighted."""
    import matplotlib.pyplot as plt

    tree = span_tree(trace_spans)
    root = tree[0][1]
    slow = slow_span(trace_spans)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(tree) + 1))
    for i, (depth, s) in enumerate(tree):
        start = (s["start_ns"] - root["start_ns"]) / 1e6
        color = "#d62728" if s is slow and depth else ("#ff9896" if s.get("status") == "ERROR" else "#1f77b4")
        ax.barh(i, duration_ms(s), left=start, color=color)
        ax.text(start + duration_ms(s), i, f" {duration_ms(s):.1f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(tree)), ["  " * d + s["name"] for d, s in tree])
    ax.invert_yaxis()
    ax.set_xlabel("ms since the request arrived")
    ax.set_title(title or f"trace {root['trace_id'][:12]}...")
    fig.tight_layout()
    return fig


def plot_dashboard(
    series: dict,
    slo_latency_s: float | None = None,
    error_budget_pct: float | None = None,
    title: str = "orders: golden signals",
):
    """One figure, four panels: latency, traffic, errors, saturation."""
    import matplotlib.pyplot as plt

    t0 = series["t"][0] if series["t"] else 0
    t = [x - t0 for x in series["t"]]
    fig, axes = plt.subplots(2, 2, figsize=(10, 5.5), sharex=True)
    (a, b), (c, d) = axes
    for k, col in (("p50", "green"), ("p95", "orange"), ("p99", "red")):
        a.plot(t, [v * 1000 for v in series[k]], color=col, label=k)
    if slo_latency_s:
        a.axhline(slo_latency_s * 1000, color="black", ls="--", lw=1, label="SLO")
    a.set_title("Latency (ms)")
    a.legend(fontsize=7)
    b.plot(t, series["rps"])
    b.set_title("Traffic (requests/s)")
    c.plot(t, series["error_pct"], color="red")
    if error_budget_pct is not None:
        c.axhline(error_budget_pct, color="black", ls="--", lw=1, label="error budget")
        c.legend(fontsize=7)
    c.set_title("Errors (% 5xx)")
    d.plot(t, series["cpu_pct"], label="CPU % of one core")
    d.plot(t, [v * 10 for v in series["in_flight"]], label="in-flight x10")
    d.set_title("Saturation")
    d.legend(fontsize=7)
    for ax in (c, d):
        ax.set_xlabel("seconds")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


_LINE_STYLES = (("-", 3.4), ("-", 2.0), ("--", 1.6), (":", 1.4))


def share_equal(ts, vs, other_ts, other_vs, tol: float = 1e-9) -> float:
    """The share of the common times at which two series have the same value (0 when they share no time)."""
    theirs = dict(zip(other_ts, other_vs, strict=False))
    common = [(v, theirs[t]) for t, v in zip(ts, vs, strict=False) if t in theirs]
    if not common:
        return 0.0
    return sum(abs(a - b) <= tol * max(1.0, abs(a), abs(b)) for a, b in common) / len(common)


def plot_windows(series: dict, thresholds: dict | None = None, title: str = "", events: dict | None = None):
    """Error ratios over several windows against time: ``series`` is {label: (times, values)} (values as
    ratios), ``thresholds`` {label: ratio} as dashed lines, ``events`` {label: time} as vertical markers."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 3.4))
    t0 = min((ts[0] for ts, _ in series.values() if len(ts)), default=0)
    drawn: list[tuple[str, list, list]] = []
    for i, (label, (ts, vs)) in enumerate(series.items()):
        # each line its own style, later ones thinner and on top: a line that equals an earlier one (a window
        # longer than the history there is: it holds the same samples) stays visible, and the legend says so
        style, width = _LINE_STYLES[i % len(_LINE_STYLES)]
        same = [other for other, ots, ovs in drawn if share_equal(ts, vs, ots, ovs) >= 0.5]
        text = label + (f" (= {' and '.join(same)} where they overlap)" if same else "")
        ax.plot([t - t0 for t in ts], [100 * v for v in vs], ls=style, lw=width, label=text, zorder=2 + i)
        drawn.append((label, list(ts), list(vs)))
    for (label, value), color in zip((thresholds or {}).items(), ("red", "orange", "grey"), strict=False):
        ax.axhline(100 * value, color=color, ls="--", lw=1, label=label)
    for label, t in (events or {}).items():
        ax.axvline(t - t0, color="black", ls=":", lw=1)
        ax.text(t - t0, ax.get_ylim()[1] * 0.95, f" {label}", fontsize=8, va="top")
    ax.set_xlabel("lab seconds (1 s = 1 real minute)")
    ax.set_ylabel("errors (% of requests)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # outside: it hides no line or marker
    fig.tight_layout()
    return fig
