"""The drill's incident, drawn from a seed: which release goes bad, on which route, which setting drifts, what
leaks money. Pure functions (no lab): the same seed always gives the same incident, so the checks know the truth
and the tests can pin it; every run of the drill draws a fresh seed, so nobody can learn the answers by heart.

Difficulty (an instructor's setting, ``CLOUDLAB_DRILL_DIFFICULTY`` or ``lesson10.start(difficulty=...)``):
1 = the bad release only; 2 = plus the drift; 3 = plus the cost leak (the default).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

ROUTES = ("POST /orders", "GET /orders/{id}")
# The Terraform attribute that drifts: (what the code says, what a person set by hand, what it does).
DRIFTS = {
    "filter_prefix": ("orders/", "orders/archive/", "new orders no longer match the filter: nothing reaches the queue"),
    "events": ("s3:ObjectCreated:*", "s3:ObjectRemoved:*", "S3 announces deletions instead of new orders"),
    "queue_arn": ("l10-fulfilment", "l10-fulfilment-staging", "new orders go to staging's queue"),
}
DRIFT_RESOURCE = "aws_s3_bucket_notification.orders"
LEAK_TYPES = ("c5.2xlarge", "m5.2xlarge", "r5.2xlarge")
# What the bad change does, per route: the component the trace shows, and the error the log shows.
BAD_CHANGES = {
    "POST /orders": {
        "span": "inventory.Reserve",
        "error": "TimeoutError('inventory reservation timed out')",
        "note": "inventory: reserve stock through the new inventory client",
    },
    "GET /orders/{id}": {
        "span": "cache.Get",
        "error": "ConnectionError('cache l10-cache: connection pool exhausted')",
        "note": "orders: read orders through the new cache client",
    },
}
GOOD_NOTES = (
    "logging: shorter request ids",
    "deps: boto3 1.35.99",
    "health: report the build date",
    "metrics: finer latency buckets",
    "docs: runbook links in the README",
    "config: validate PORT at start",
)
PEOPLE = ("sam", "kim", "lee", "ari", "noor", "eli", "dana", "rui")  # who approves changes (never the cause of one)
# The release train, in seconds (the lab runs at 60x: one second stands for a minute): the first deploy starts
# this long after the drill starts, the second this long after the first went live.
RELEASE_TIMES = (1.0, 2.5)


@dataclass(frozen=True)
class Release:
    id: str
    notes: tuple[str, ...]
    bad: bool
    at: float | None  # seconds after the previous release went live (None: it runs when the drill starts)


@dataclass(frozen=True)
class Scenario:
    seed: int
    difficulty: int
    releases: tuple[Release, ...]  # baseline, then the release train
    route: str
    latency_ms: int
    error_rate: float
    drift: dict | None = None  # {"setting", "code", "hand", "effect", "at"}
    leak: dict | None = None  # {"instance_type", "max", "at"}
    approvers: tuple[str, ...] = ()  # who approved each release of the train, then the scaling policy

    @property
    def baseline(self) -> Release:
        return self.releases[0]

    @property
    def first_bad(self) -> Release:
        return next(r for r in self.releases if r.bad)

    @property
    def last_good(self) -> Release:
        """The release to roll back to: the last one before the first bad one."""
        good = [r for r in self.releases if not r.bad]
        return [r for r in good if self.releases.index(r) < self.releases.index(self.first_bad)][-1]

    @property
    def change(self) -> dict:
        """What the bad release does (handed to the release runner)."""
        return {
            "route": self.route,
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            **BAD_CHANGES[self.route],
        }

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Scenario:
        d = dict(d)
        d["releases"] = tuple(Release(**{**r, "notes": tuple(r["notes"])}) for r in d["releases"])
        d["approvers"] = tuple(d.get("approvers", ()))
        return cls(**d)


def draw(seed: int, difficulty: int = 3) -> Scenario:
    """The incident of ``seed`` at ``difficulty`` (1-3)."""
    if difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty is 1 (the release), 2 (+ drift) or 3 (+ cost leak), not {difficulty!r}")
    rng = random.Random(seed)
    major, minor = rng.randrange(2, 5), rng.randrange(3, 19)
    route = rng.choice(ROUTES)
    first_bad = rng.choice((1, 2))  # the first or the second release of the train
    notes = rng.sample(GOOD_NOTES, 4)
    releases = [Release(f"v{major}.{minor}.0", ("baseline: running for a week",), False, None)]
    for i, at in enumerate(RELEASE_TIMES, start=1):
        bad = i >= first_bad
        own = (BAD_CHANGES[route]["note"],) if i == first_bad else ()
        releases.append(Release(f"v{major}.{minor}.{i}", own + (notes[2 * i - 2],), bad, at))
    drift = leak = None
    if difficulty >= 2:
        setting = rng.choice(sorted(DRIFTS))
        code, hand, effect = DRIFTS[setting]
        # seconds after the first page: someone "tries something" in the console while the release is blamed
        drift = {"setting": setting, "code": code, "hand": hand, "effect": effect, "at": round(rng.uniform(1, 2.5), 1)}
    if difficulty >= 3:
        leak = {
            "instance_type": rng.choice(LEAK_TYPES),
            "max": rng.choice((36, 40, 48)),
            "at": round(rng.uniform(1.5, 3.5), 1),
        }  # after the drill starts
    return Scenario(
        seed,
        difficulty,
        tuple(releases),
        route,
        latency_ms=rng.choice((250, 300, 350, 400)),
        error_rate=round(rng.uniform(0.6, 0.85), 2),
        drift=drift,
        leak=leak,
        approvers=tuple(rng.sample(PEOPLE, 3)),
    )
