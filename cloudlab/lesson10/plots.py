"""The drill's two figures: the bill before, during and after the leak; the incident's timeline. Each returns a
closed matplotlib figure (a notebook shows it once). Serves lesson 10."""

from __future__ import annotations

from datetime import UTC, datetime

PHASES = ("before", "during", "after")
MARKS = (
    ("start", "tab:red"),
    ("detected", "tab:orange"),
    ("acknowledged", "tab:olive"),
    ("mitigated", "tab:blue"),
    ("resolved", "tab:green"),
)


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def plot_bill(
    series: list[tuple[float, float]], phases: dict, leak: tuple[float, float] | None = None, budget: float = 1000.0
):
    """The run rate over time (USD per month), the leak's window shaded, the three phases' figures marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    if series:
        t0 = series[0][0]
        ax.plot([t - t0 for t, _ in series], [v for _, v in series], color="black", linewidth=1.5, label="run rate")
        if leak:
            ax.axvspan(leak[0] - t0, leak[1] - t0, color="tab:red", alpha=0.12, label="the leak")
        ax.set_xlabel(f"lab minutes (seconds) since {_clock(t0)} UTC")
    ax.axhline(budget, color="grey", linestyle="--", linewidth=1, label=f"budget {budget:,.0f}")
    labels = ", ".join(f"{p} {phases[p]:,.0f}" for p in PHASES if isinstance(phases.get(p), (int, float)))
    ax.set_title(f"the pretend bill, USD per month: {labels}")
    ax.set_ylabel("USD per month")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_timeline(times: dict, durations: dict | None = None, title: str = "the incident"):
    """One marker per event (start, detected, acknowledged, mitigated, resolved) on a time axis in lab minutes,
    with the four durations as bars under it."""
    import matplotlib.pyplot as plt

    t0 = times.get("start")
    fig, ax = plt.subplots(figsize=(8, 2.6))
    if t0 is None:
        ax.text(0.5, 0.5, "no start time: nothing to draw", ha="center", transform=ax.transAxes)
        plt.close(fig)
        return fig
    for i, (name, colour) in enumerate(MARKS):
        t = times.get(name)
        if t is None:
            continue
        ax.axvline(t - t0, color=colour, linewidth=2)
        ax.text(
            t - t0,
            1.02 + 0.12 * (i % 2),
            f"{name}\n{_clock(t)}",
            color=colour,
            fontsize=8,
            ha="center",
            transform=ax.get_xaxis_transform(),
        )
    bars = [
        ("TTD", "start", "detected"),
        ("TTA", "detected", "acknowledged"),
        ("TTM", "start", "mitigated"),
        ("TTR", "start", "resolved"),
    ]
    for row, (label, a, b) in enumerate(bars):
        if times.get(a) is None or times.get(b) is None:
            continue
        left, width = times[a] - t0, times[b] - times[a]
        ax.barh(row, width, left=left, height=0.5, color="lightgrey")
        ax.text(left + width, row, f" {label} {width:.0f} min", va="center", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.6, len(bars) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("lab minutes since the start of impact (one real second each)")
    ax.set_title(title, pad=34)
    fig.tight_layout()
    plt.close(fig)
    return fig
