"""Cost plots (matplotlib; each returns a closed figure, so a notebook shows it exactly once)."""

from __future__ import annotations

from .model import OPTIONS, OptionsResult, Recommendation, StorageProjection, option_cost
from .prices import UNTAGGED, PriceTable


# ------------------------------------------------------------------ plots
def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_allocation(alloc: dict[tuple, float], title: str = "Monthly run rate by team and env"):
    """Stacked bars: one bar per team, one colour per env."""
    plt = _plt()
    teams = sorted({k[0] for k in alloc}, key=lambda t: (t == UNTAGGED, t))
    envs = sorted({k[1] for k in alloc}, key=lambda e: (e == UNTAGGED, e))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bottom = [0.0] * len(teams)
    for env in envs:
        vals = [alloc.get((t, env), 0.0) for t in teams]
        ax.bar(teams, vals, bottom=bottom, label=env)
        bottom = [b + v for b, v in zip(bottom, vals, strict=False)]
    for i, b in enumerate(bottom):
        ax.text(i, b, f"${b:,.0f}", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("USD per month")
    ax.set_title(title)
    ax.legend(title="env", fontsize=8)
    ax.set_ylim(0, max(bottom + [1.0]) * 1.15)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_utilization(series: dict[str, list[float]], title: str, limit: float | None = 70.0):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for name, vals in series.items():
        ax.plot(range(len(vals)), vals, label=name, linewidth=1)
    if limit is not None:
        ax.axhline(limit, color="grey", linestyle="--", linewidth=1)
    ax.set_ylim(0, 100)
    ax.set_xlabel("hour (0 = the oldest point, on the right: now)")
    ax.set_ylabel("%")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_rightsizing(recs: list[Recommendation]):
    plt = _plt()
    names = [r.name or r.id for r in recs]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = range(len(recs))
    ax.bar([i - 0.2 for i in x], [r.monthly_now for r in recs], width=0.4, label="today")
    ax.bar([i + 0.2 for i in x], [r.monthly_new for r in recs], width=0.4, label="right-sized")
    ax.set_xticks(list(x), names, rotation=20, fontsize=8)
    ax.set_ylabel("USD per month")
    ax.set_title(f"Right-sizing saves ${sum(r.saving for r in recs):,.0f} per month")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_options(res: OptionsResult, table: PriceTable):
    """Cost per month against hours used, one line per option, with the chosen hours marked."""
    plt = _plt()
    hpm = table.hours_per_month
    xs = list(range(0, hpm + 1, 10)) + [hpm]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for o in OPTIONS:
        ys = [res.count * option_cost(o, res.hourly[o], h, hpm, res.rework) for h in xs]
        ax.plot(xs, ys, label=f"{o}: ${res.monthly[o]:,.0f}")
    ax.axvline(res.hours, color="black", linestyle=":", linewidth=1)
    for h in res.break_even_hours.values():
        ax.plot([h], [res.count * res.hourly["on-demand"] * h], "o", color="grey")
    ax.set_xlabel("hours used per month")
    ax.set_ylabel("USD per month")
    ax.set_title(f"{res.count} x {res.instance_type}: cheapest at {res.hours:g} h is {res.cheapest}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_storage(proj: StorageProjection, title: str = "S3 cost over 12 months"):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(proj.months, proj.without, marker="o", label=f"all STANDARD: ${sum(proj.without):,.0f}/year")
    ax.plot(proj.months, proj.with_rules, marker="o", label=f"with lifecycle rules: ${sum(proj.with_rules):,.0f}/year")
    ax.set_xlabel("month")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("USD per month")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig
