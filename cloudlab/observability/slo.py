"""SLOs, error budgets and burn-rate rules (the SRE Workbook's multi-window, multi-burn-rate alerts)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import NoDataPoints


# ===================================================================== SLOs
@dataclass(frozen=True)
class SLO:
    """A service level objective: ``target`` share of good events over ``window_days``."""

    name: str
    target: float
    window_days: float = 30.0
    threshold_s: float | None = None  # for a latency SLO: "good" means answered within this

    def __post_init__(self):
        t = self.target
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1 or math.isnan(t):
            hint = f" (did you mean {t / 100:g}?)" if isinstance(t, (int, float)) and 1 < t < 100 else ""
            raise ValueError(
                f"SLO {self.name!r}: the target must be a fraction strictly between 0 and 1, "
                f"e.g. 0.995 for 99.5 %; got {t!r}{hint}"
            )
        if self.window_days <= 0:
            raise ValueError(f"SLO {self.name!r}: window_days must be positive, not {self.window_days}")
        if self.threshold_s is not None and self.threshold_s <= 0:
            raise ValueError(f"SLO {self.name!r}: threshold_s must be positive seconds, not {self.threshold_s}")

    @property
    def error_budget(self) -> float:
        """The share of events allowed to be bad."""
        return 1 - self.target

    def budget_minutes(self) -> float:
        """The budget as minutes of total outage in the window."""
        return self.window_days * 24 * 60 * self.error_budget

    def is_good(self, result: dict) -> bool:
        """Availability SLO: not a 5xx. Latency SLO: answered within the threshold (failures count
        against availability, so each SLO measures one thing)."""
        if self.threshold_s is None:
            return result["status"] < 500
        return result["seconds"] <= self.threshold_s


def burn_rate(bad: float, total_: float, target: float) -> float:
    """How fast the budget burns: 1 = exactly used up at the end of the window, 10 = in a tenth of it."""
    if not 0 < target < 1:
        raise ValueError(f"target must be strictly between 0 and 1, not {target}")
    if total_ <= 0:
        return 0.0
    return (bad / total_) / (1 - target)


def budget_left(bad: float, total_: float, target: float) -> float:
    """Share of the error budget still unspent (negative: overspent)."""
    if total_ <= 0:
        return 1.0
    return 1 - (bad / total_) / (1 - target)


@dataclass(frozen=True)
class Rule:
    """Multi-window, multi-burn-rate: alert when BOTH windows burn faster than ``burn``."""

    severity: str
    long_s: float
    short_s: float
    burn: float

    def describe(self, speedup: float = 1) -> str:
        def human(s):
            s *= speedup
            return f"{s / 86400:g} d" if s >= 86400 else f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min"

        return f"{self.severity}: burn > {self.burn:g} over {human(self.long_s)} and {human(self.short_s)}"


def workbook_rules(speedup: float = 1.0) -> list[Rule]:
    """The usual three rules for a 30-day window, time compressed by ``speedup`` (lab seconds).

    page   2 % of the budget in 1 h  (burn 14.4; short window 5 min)
    page   5 % of the budget in 6 h  (burn 6;    short window 30 min)
    ticket 10 % of the budget in 3 d (burn 1;    short window 6 h)
    """
    if speedup <= 0:
        raise ValueError("speedup must be positive")
    h = 3600 / speedup
    return [Rule("page", 1 * h, h / 12, 14.4), Rule("page", 6 * h, h / 2, 6.0), Rule("ticket", 72 * h, 6 * h, 1.0)]


def window_counts(events: list[tuple[float, bool]], end: float, seconds: float) -> tuple[int, int]:
    """(bad, total) among events with end - seconds < t <= end. ``events`` are (time, good)."""
    bad = tot = 0
    for t, good in events:
        if end - seconds < t <= end:
            tot += 1
            bad += not good
    return bad, tot


def rule_fires(events: list[tuple[float, bool]], target: float, rule: Rule, at: float) -> tuple[bool, float, float]:
    """(firing, long-window burn, short-window burn) of ``rule`` at time ``at``."""
    long_b = burn_rate(*window_counts(events, at, rule.long_s), target)
    short_b = burn_rate(*window_counts(events, at, rule.short_s), target)
    return long_b > rule.burn and short_b > rule.burn, long_b, short_b


def good_events(results: list[dict], slo: SLO) -> list[tuple[float, bool]]:
    """Request results -> (completion time, good?) as the SLO defines good."""
    return sorted((r["t"] + r["seconds"], slo.is_good(r)) for r in results)


def burn_timeline(events: list[tuple[float, bool]], target: float, rule: Rule, step: float = 0.25) -> dict:
    """Evaluate ``rule`` every ``step`` seconds over the events: times, both burns, firing."""
    if not events:
        raise NoDataPoints("no events to evaluate: an SLO with no traffic has nothing to say")
    t0, t1 = events[0][0], events[-1][0]
    out = {"t": [], "long": [], "short": [], "firing": []}
    n = max(1, int(math.ceil((t1 - t0) / step)))
    for i in range(n + 1):
        at = t0 + i * step
        f, lb, sb = rule_fires(events, target, rule, at)
        for k, v in zip(("t", "long", "short", "firing"), (at - t0, lb, sb, f), strict=False):
            out[k].append(v)
    return out
