"""The instances check 03.1 asks about: utilization profiles on which the usual mistakes give the wrong size.

Each case is two days of CPU (and memory) samples, one every 10 minutes, as EC2 and the CloudWatch agent
would measure them; :func:`hourly_samples` groups them into hours, which is how the check publishes them
(one statistic set per hour, as the CloudWatch agent sends them: one write per hour instead of six).

The policy the exercise states is: the 95th percentile of the *hourly averages* must
stay under 70 % on the new size (:func:`expected`). The profiles are built so that each common mistake
gives another answer on at least one case (:func:`alternatives`, and ``tests/test_lesson03.py`` proves it):

* ``Statistic="Maximum"`` (each hour's worst 10 minutes): the web server's short spikes look like busy hours;
* ``max()`` instead of the 95th percentile: the web server's one busy hour (a deploy) decides;
* daily periods, or the mean, or the median: the batch box's four busy hours a day disappear;
* memory ignored: the cache box (memory-bound) shrinks; missing memory read as 0: the box without the
  agent shrinks; the ``region`` argument ignored: the batch box in eu-west-1 has no data;
* more than the last two days (a week, or a ``timedelta(48)``, which is 48 *days*): every box ran a busy
  migration before the two days (:func:`older_hours`), which the policy leaves out.

The answers do not depend on how the learner's hours line up with the data's hours (CloudWatch starts
its periods at the StartTime asked for), nor on the percentile's interpolation (the policy's values sit
well inside a size band): the tests check every alignment.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .. import cost, stats

STEP_MINUTES = 10
PER_HOUR = 60 // STEP_MINUTES
HOURS = 48


@dataclass(frozen=True)
class Case:
    key: str
    what: str  # how the check names it to the learner
    instance_type: str
    region: str
    cpu: tuple[float, ...]  # one point every STEP_MINUTES, oldest first
    mem: tuple[float, ...] | None  # None: no CloudWatch agent
    mistake: str  # what a wrong answer on this case usually means


def _clip(v: float) -> float:
    return round(min(100.0, max(0.5, v)), 2)


def _day_wave(h: int) -> float:
    return max(0.0, math.sin(2 * math.pi * ((h % 24) - 7) / 24))  # busy in the (UTC) working day


def _web(rnd: random.Random) -> tuple[list[float], list[float]]:
    """Mostly quiet, one 10-minute spike to 40 % in every hour, one busy hour (a deploy) 10 h ago."""
    cpu, mem = [], []
    for h in range(HOURS):
        for k in range(PER_HOUR):
            if h == HOURS - 10:
                v = 85 + rnd.uniform(-2, 2)
            elif k == 3:
                v = 40 + rnd.uniform(-2, 2)
            else:
                v = 5 + 3 * _day_wave(h) + rnd.uniform(-1, 1)
            cpu.append(_clip(v))
            mem.append(_clip(11 + rnd.uniform(-1, 1)))
    return cpu, mem


def _batch(rnd: random.Random) -> tuple[list[float], list[float]]:
    """Idle, except a four-hour job every night at about 31 % CPU."""
    cpu, mem = [], []
    for h in range(HOURS):
        busy = (h % 24) in (1, 2, 3, 4)
        for _ in range(PER_HOUR):
            cpu.append(_clip((31 if busy else 2.5) + rnd.uniform(-1.5, 1.5)))
            mem.append(_clip(10 + rnd.uniform(-1, 1)))
    return cpu, mem


def _cache(rnd: random.Random) -> tuple[list[float], list[float]]:
    """Little CPU, memory three quarters full."""
    cpu = [_clip(5 + 2 * _day_wave(i // PER_HOUR) + rnd.uniform(-1, 1)) for i in range(HOURS * PER_HOUR)]
    mem = [_clip(76 + rnd.uniform(-2, 2)) for _ in range(HOURS * PER_HOUR)]
    return cpu, mem


def _no_agent(rnd: random.Random) -> tuple[list[float], None]:
    """Little CPU, and no memory data at all (nobody installed the CloudWatch agent)."""
    return [_clip(4 + 2 * _day_wave(i // PER_HOUR) + rnd.uniform(-1, 1)) for i in range(HOURS * PER_HOUR)], None


def make_cases(seed: str) -> list[Case]:
    rnd = random.Random(seed)
    web, batch, cache, blind = _web(rnd), _batch(rnd), _cache(rnd), _no_agent(rnd)
    return [
        Case("web", "a web server with a short spike every hour (m5.2xlarge)", "m5.2xlarge", "us-east-1",
             tuple(web[0]), tuple(web[1]),
             "a 10-minute spike is not a busy hour, and one busy hour in two days is not the 95th percentile: "
             "size on the 95th percentile of hourly AVERAGES (Statistic='Average', Period=3600)"),
        Case("batch", "a batch box busy four hours a night, in eu-west-1 (c5.2xlarge)", "c5.2xlarge", "eu-west-1",
             tuple(batch[0]), tuple(batch[1]),
             "its busy hours vanish in a daily average, a mean or a median; and it lives in eu-west-1: "
             "ask CloudWatch in the instance's region (the `region` argument)"),
        Case("cache", "a memory-bound cache (r5.xlarge)", "r5.xlarge", "us-east-1",
             tuple(cache[0]), tuple(cache[1]),
             "its memory is three quarters full: read mem_used_percent (namespace CWAgent) too"),
        Case("blind", "an instance without the CloudWatch agent (m5.xlarge)", "m5.xlarge", "us-east-1",
             tuple(blind[0]), None,
             "it has no memory data at all: pass None for memory (never 0), so nothing shrinks memory blind"),
    ]  # fmt: skip


OLDER_HOURS = 46  # the migration before the window: hours of data older than the last two days
OLDER_GAP_HOURS = 2  # between its last hour and the window's first, so no hour alignment can reach it


def older_hours(case: Case) -> tuple[list[list[float]], list[list[float]] | None]:
    """The hours before the window (samples per hour, oldest first): a data migration kept every box busy."""
    rnd = random.Random(f"older-{case.key}-{case.cpu[:3]}")
    cpu = [[_clip(92 + rnd.uniform(-3, 3)) for _ in range(PER_HOUR)] for _ in range(OLDER_HOURS)]
    mem = None if case.mem is None else [[_clip(88 + rnd.uniform(-2, 2)) for _ in range(PER_HOUR)] for _ in cpu]
    return cpu, mem


def hourly_samples(values) -> list[list[float]]:
    """The samples grouped by hour, oldest first: what :func:`publish_utilization` writes, one point per hour."""
    vals = list(values)
    return [vals[i : i + PER_HOUR] for i in range(0, len(vals), PER_HOUR)]


def hourly(values, statistic: str = "Average", offset: int = 0, per_hour: int = PER_HOUR) -> list[float]:
    """Values grouped into hours (CloudWatch's Period=3600), the first hour starting ``offset`` points late."""
    vals = list(values)[offset:]
    groups = [vals[i : i + per_hour] for i in range(0, len(vals), per_hour)]
    agg = {"Average": lambda g: sum(g) / len(g), "Maximum": max, "Minimum": min}[statistic]
    return [agg(g) for g in groups if g]


def _size(case: Case, cpu: float | None, mem: float | None, table: cost.PriceTable) -> str:
    return cost.recommend_size(case.instance_type, cpu, mem, table, case.region).recommended


def expected(case: Case, table: cost.PriceTable, offset: int = 0) -> str:
    """The policy's answer: p95 of hourly averages, CPU and memory, under 70 % on the new size."""
    mem = None if case.mem is None else stats.percentile(hourly(case.mem, offset=offset))
    return _size(case, stats.percentile(hourly(case.cpu, offset=offset)), mem, table)


def alternatives(case: Case, table: cost.PriceTable) -> dict[str, str]:
    """What the usual mistakes answer for this case (mistake -> size)."""
    mem_p95 = None if case.mem is None else stats.percentile(hourly(case.mem))
    cpu_hours = hourly(case.cpu)
    days = [sum(case.cpu[i : i + 24 * PER_HOUR]) / len(case.cpu[i : i + 24 * PER_HOUR]) for i in (0, 24 * PER_HOUR)]
    return {
        "hourly Maximum instead of Average": _size(
            case,
            stats.percentile(hourly(case.cpu, "Maximum")),
            mem_p95 and stats.percentile(hourly(case.mem, "Maximum")),
            table,
        ),
        "the maximum instead of the 95th percentile": _size(case, max(cpu_hours), mem_p95, table),
        "a daily period": _size(case, stats.percentile(days), mem_p95, table),
        "the mean instead of the 95th percentile": _size(case, sum(cpu_hours) / len(cpu_hours), mem_p95, table),
        "memory ignored": _size(case, stats.percentile(cpu_hours), 0.0, table),
        "missing memory read as 0": _size(case, stats.percentile(cpu_hours), mem_p95 or 0.0, table),
        "no data found (wrong region, namespace or dimension)": _size(case, None, None, table),
        "more than the last two days": _size(
            case,
            stats.percentile(cpu_hours + [sum(h) / len(h) for h in older_hours(case)[0]]),
            None
            if case.mem is None
            else stats.percentile(hourly(case.mem) + [sum(h) / len(h) for h in older_hours(case)[1]]),
            table,
        ),
    }
