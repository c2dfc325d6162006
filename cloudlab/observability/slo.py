"""SLOs, error budgets and burn rates. The alerting rules themselves are Prometheus' (see :mod:`.prom`:
lesson 04 writes them as recording and alerting rules and tests them with promtool)."""

from __future__ import annotations

import math
from dataclasses import dataclass


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


def good_events(results: list[dict], slo: SLO) -> list[tuple[float, bool]]:
    """Request results -> (completion time, good?) as the SLO defines good."""
    return sorted((r["t"] + r["seconds"], slo.is_good(r)) for r in results)
