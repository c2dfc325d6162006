"""Availability maths: serial and parallel composition, downtime budgets, AZs, and a plot.

A chain of parts that ALL must work (serial) is less available than its weakest part; copies of which
ANY ONE is enough (parallel) fail only when all fail at once (assuming they fail independently:
that is what separate availability zones buy). Serves lesson 09.
"""

from __future__ import annotations

import math

PERIODS_MIN = {"day": 24 * 60, "week": 7 * 24 * 60, "month": 30 * 24 * 60, "year": 365 * 24 * 60}


def _check(a: float) -> float:
    if isinstance(a, bool) or not isinstance(a, (int, float)) or math.isnan(a) or not 0 <= a <= 1:
        hint = f" (did you mean {a / 100:g}?)" if isinstance(a, (int, float)) and 1 < a <= 100 else ""
        raise ValueError(f"an availability is a fraction from 0 to 1, not {a!r}{hint}")
    return float(a)


def serial(*parts: float) -> float:
    """All parts must work: the product of their availabilities."""
    out = 1.0
    for a in parts:
        out *= _check(a)
    return out


def parallel(*copies: float) -> float:
    """Any one copy is enough: 1 - P(all copies down at once), copies failing independently."""
    down = 1.0
    for a in copies:
        down *= 1 - _check(a)
    return 1 - down


def zones(per_zone: float, n: int, needed: int = 1) -> float:
    """At least ``needed`` of ``n`` independent zones up (each up with probability ``per_zone``)."""
    p = _check(per_zone)
    if not 1 <= needed <= n:
        raise ValueError("need 1 <= needed <= n")
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(needed, n + 1))


def downtime_minutes(availability: float, period: str = "month") -> float:
    """The downtime an availability allows per ``period`` (day, week, month = 30 days, year)."""
    if period not in PERIODS_MIN:
        raise ValueError(f"period is one of {', '.join(PERIODS_MIN)}")
    return (1 - _check(availability)) * PERIODS_MIN[period]


def nines(availability: float) -> float:
    """How many nines: 0.999 -> 3.0, 0.9995 -> 3.3."""
    a = _check(availability)
    return math.inf if a == 1 else -math.log10(1 - a)


def describe(availability: float) -> str:
    m = downtime_minutes(availability)
    when = f"{m:.1f} min" if m < 120 else f"{m / 60:.1f} h"
    return f"{availability:.5%} ({nines(availability):.1f} nines): {when} of downtime allowed per 30 days"


def plot_zones(per_zone: float = 0.995, max_zones: int = 4, chain: tuple[float, ...] = (), title: str = ""):
    """Availability (as nines) against the number of zones: N+1 (all but one zone needed: each sized for
    1/(n-1) of the peak), "any one is enough" (each zone sized for ALL of it), and N+1 behind a serial ``chain``."""
    import matplotlib.pyplot as plt

    ns = list(range(1, max_zones + 1))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    any_one = [nines(zones(per_zone, n)) for n in ns]
    n_plus_1 = [nines(zones(per_zone, n, needed=max(1, n - 1))) for n in ns]
    ax.plot(ns, any_one, "o:", color="tab:grey", label="any 1 is enough (each zone carries ALL the load)")
    ax.plot(ns, n_plus_1, "o-", label=f"N+1: all but one zone needed ({per_zone:.1%} each)")
    if chain:
        whole = [nines(min(serial(zones(per_zone, n, needed=max(1, n - 1)), *chain), 1 - 1e-12)) for n in ns]
        ax.plot(ns, whole, "s--", label=f"N+1 behind a chain of {len(chain)} serial parts")
    ax.set_xticks(ns)
    ax.set_xlabel("zones (one instance in each)")
    ax.set_ylabel("nines of availability")
    ax.set_title(title or "parallel copies add nines; a serial chain caps them")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
