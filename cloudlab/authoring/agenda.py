"""Agendas that fit the clock: lessons and sections with start times, breaks included, from the lessons' minutes.

The plans are data (``lessons/instructor/agendas.toml``): per agenda, its length, start, breaks and, per day, the
lessons in order, each as ``"NN"`` (teaching and exercises), ``"NN:short"`` (without the sections its instructor
file says to skip when short of time, and only its core tasks), ``"NN:teaching"`` or ``"NN:teaching-short"``.
The minutes come from :mod:`.timing` (recorded in a workshop, else the authors' estimate; sections share a
lesson's minutes in proportion to their derived minutes). When a day does not fit, the last lessons are made
shorter (full, then short, then teaching-short) and then dropped, and the page says so: the agenda stays true
when lessons grow. ``tests/test_agenda.py`` checks that every day adds up and fits its length.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field

from .. import course
from . import instructor, outline, timing

PLANS = timing.DATA / "agendas.toml"
MODES = ("full", "short", "teaching", "teaching-short")
DEGRADE = {"full": "short", "short": "teaching-short", "teaching": "teaching-short", "teaching-short": None}


@dataclass
class Slot:
    start: int  # minutes since midnight
    minutes: int
    what: str
    source: str = ""
    kind: str = "section"  # section | exercises | break | lunch | wrap

    @property
    def end(self) -> int:
        return self.start + self.minutes


@dataclass
class Day:
    start: int
    length: int
    slots: list[Slot] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.slots[-1].end if self.slots else self.start

    @property
    def content(self) -> int:
        return sum(s.minutes for s in self.slots)


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_hhmm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def plans() -> list[dict]:
    return tomllib.loads(PLANS.read_text()).get("agenda", [])


def blocks(lt: timing.LessonTime, mode: str) -> list[tuple[str, float, str, str]]:
    """[(what, minutes, source, kind)] of one lesson in ``mode``."""
    le = lt.lesson
    notes = instructor.load_notes(le.id)
    short = mode in ("short", "teaching-short")
    skip = {s["section"] for s in (notes.skip if notes and short else [])}
    teaching, t_src = lt.used("teaching")
    all_d = sum(s.derived for s in lt.sections) or 1.0
    kept_d = sum(s.derived for s in lt.sections if s.heading not in skip)
    total = teaching * kept_d / all_d if skip else teaching
    src = t_src.split(" (")[0]
    out = _merge_short([(head, m, f"{src}, {how}") for head, m, how in lt.section_minutes(total, skip)], le.id)
    exercises, e_src = lt.used("exercises")
    if mode in ("full", "short") and exercises:
        sol = outline.solution_outline(le)
        ids = [t.check_id for t in sol.tasks] if sol else []
        if short and ids:
            core = [c for c in (notes.core_tasks if notes else []) if c in ids] or ids[: math.ceil(len(ids) / 2)]
            what = f"{le.id} · exercises {', '.join(core)} (of {len(ids)} tasks)"
            out.append((what, exercises * len(core) / len(ids), f"{e_src.split(' (')[0]}, share of tasks", "exercises"))
        else:
            out.append((f"{le.id} · exercises ({len(ids)} tasks)", exercises, e_src.split(" (")[0], "exercises"))
    return out


def _merge_short(rows: list[tuple[str, float, str]], lid: str, least: float = 3.0) -> list[tuple[str, float, str, str]]:
    """Sections shorter than ``least`` minutes join the next one (the last joins the one before): an agenda line
    per few minutes, not per paragraph."""
    merged: list[list] = []
    carry: list = []
    for head, m, src in rows:
        if carry:
            head, m = "; ".join([*carry[0], head]), m + carry[1]
            carry = []
        if m < least:
            carry = [[head], m]
            continue
        merged.append([head, m, src])
    if carry:
        if merged:
            merged[-1][0] += "; " + "; ".join(carry[0])
            merged[-1][1] += carry[1]
        else:
            merged.append(["; ".join(carry[0]), carry[1], rows[-1][2]])
    return [(f"{lid} · {h}", m, src, "section") for h, m, src in merged]


def lay_out(plan: dict, items: list[tuple[str, str]], times: dict, start: int, length: int) -> Day:
    """One day: the items' blocks from ``start``; a break before a block that would run past ``every`` minutes
    since the last break (or before a lesson that starts after two thirds of that); lunch at the first block
    boundary after ``lunch.after``; a wrap-up at the end. Times are rounded on the running clock, so the slots add
    up exactly."""
    every = plan.get("breaks", {}).get("every", 90)
    pause = plan.get("breaks", {}).get("minutes", 15)
    lunch = plan.get("lunch")
    wrap = plan.get("wrap", 0)
    day = Day(start, length)
    clock = float(start)
    since = 0.0
    had_lunch = not lunch

    def add(minutes: float, what: str, source: str, kind: str):
        nonlocal clock
        begin = round(clock)
        clock += minutes
        if round(clock) > begin:
            day.slots.append(Slot(begin, round(clock) - begin, what, source, kind))

    for lid, mode in items:
        for n, (what, mins, source, kind) in enumerate(blocks(times[lid], mode)):
            due = since and (since + mins > every or (n == 0 and since >= every * 2 / 3))  # at a lesson's start
            if not had_lunch and clock >= parse_hhmm(lunch["after"]):
                add(lunch["minutes"], "Lunch", "", "lunch")
                had_lunch, since = True, 0.0
            elif due:
                add(pause, "Break", "", "break")
                since = 0.0
            add(mins, what, source, kind)
            since += mins
    if wrap:
        add(wrap, "Questions and wrap-up", "", "wrap")
    return day


def fit(plan: dict, day_items: list[str], times: dict) -> Day:
    """Lay out the day; while it runs past its length, shorten the last lesson that can be shortened, else drop it."""
    items = []
    for spec in day_items:
        lid, _, mode = spec.partition(":")
        items.append((lid, mode or "full"))
    items = [(lid, mode) for lid, mode in items if lid in times]
    start = parse_hhmm(plan.get("start", "09:00"))
    length = plan["minutes"]
    changes = []
    while True:
        day = lay_out(plan, items, times, start, length)
        if day.end <= start + length or not items:
            day.changes = changes
            return day
        for i in range(len(items) - 1, -1, -1):
            lid, mode = items[i]
            nxt = DEGRADE[mode]
            if nxt:
                items[i] = (lid, nxt)
                changes.append(f"lesson {lid} made {nxt} to fit")
                break
        else:
            lid, _ = items.pop()
            changes.append(f"lesson {lid} left out: it does not fit")


def build(times: dict | None = None) -> list[tuple[dict, list[Day]]]:
    times = timing.all_times() if times is None else times
    return [(plan, [fit(plan, d, times) for d in plan["days"]]) for plan in plans()]


def page(times: dict | None = None) -> str:
    times = timing.all_times() if times is None else times
    out = [
        "# Agendas that fit the clock",
        "",
        instructor.GENERATED,
        "Sources: `lessons/instructor/agendas.toml` (the plans), `lessons/course.toml` (the authors' minutes), "
        "`lessons/instructor/timings.toml` (recorded in workshops), `lessons/instructor/measured.json` and the "
        "notebooks (derived minutes).",
        "",
        "Each lesson's slot uses the minutes **recorded** in real workshops when there are any, else the authors' "
        "**estimate**; inside it, sections start at times shared out in proportion to their **derived** minutes "
        f"({timing.RULES}). The last column says which figure each line comes from. A day that does not fit is "
        "shortened from its end (a lesson without the sections its notes say to skip, then without its exercises, "
        "then left out), and the agenda says so.",
        "",
    ]
    for plan, days in build(times):
        out += [f"## {plan['title']}", "", f"For: {plan.get('for', '')}", ""]
        for n, day in enumerate(days, 1):
            if len(days) > 1:
                out += [f"### Day {n}", ""]
            out += [
                f"{hhmm(day.start)} to {hhmm(day.end)} ({day.end - day.start} of {day.length} min; "
                f"{sum(s.minutes for s in day.slots if s.kind in ('section', 'exercises'))} min of lessons).",
                "",
                "| time | what | min | from |",
                "|---|---|---|---|",
            ]
            for s in day.slots:
                what = f"**{s.what}**" if s.kind in ("break", "lunch", "wrap") else s.what
                out.append(f"| {hhmm(s.start)} | {what} | {s.minutes} | {s.source} |")
            if day.changes:
                out += ["", "To fit: " + "; ".join(day.changes) + "."]
            out.append("")
    out += ["## Where the minutes come from", "", "| # | lesson | estimate (course.toml) | derived | recorded | used |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for lid, lt in times.items():
        le = lt.lesson
        rec = lt.recorded
        recorded = f"{rec['teaching']:.0f} / {rec['exercises']:.0f} ({rec['records']})" if rec else "none yet"
        out.append(
            f"| {lid} | {le.title} | {le.teaching} / {le.exercises} | "
            f"{lt.teaching_derived:.0f} / {lt.exercise_derived:.0f} "
            f"| {recorded} | {lt.used('teaching')[0]} / {lt.used('exercises')[0]} |"
        )
    out += [
        "",
        "Teaching / exercises, in minutes. After a workshop, record what it really took: "
        '`make record-timing L=04 TEACHING=62 EXERCISES=55` (optionally `SECTION="Alert fatigue=12"`), then '
        "`make instructor-notes`; the agendas use the median of the records from then on.",
    ]
    return "\n".join(out).rstrip() + "\n"


def check_day(day: Day) -> list[str]:
    """What is wrong with a laid-out day: gaps, overlaps, a total that does not add up, running past its length."""
    errors = []
    clock = day.start
    for s in day.slots:
        if s.start != clock:
            errors.append(f"{s.what} starts at {hhmm(s.start)}, the one before ends at {hhmm(clock)}")
        if s.minutes <= 0:
            errors.append(f"{s.what} lasts {s.minutes} min")
        clock = s.end
    if day.content != day.end - day.start:
        errors.append(f"the slots add up to {day.content} min, the day runs {day.end - day.start}")
    if day.end > day.start + day.length:
        errors.append(f"ends at {hhmm(day.end)}, after {hhmm(day.start + day.length)}")
    return errors


def lessons_used(days: list[Day]) -> list[str]:
    return sorted({s.what[:2] for d in days for s in d.slots if s.kind in ("section", "exercises")})


__all__ = ["MODES", "build", "check_day", "fit", "lessons_used", "page", "course"]
