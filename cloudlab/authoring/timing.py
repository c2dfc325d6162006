"""How long each lesson and section takes, and where each figure comes from.

Three kinds of evidence, each labelled wherever a minute is shown:

``estimate``  the authors' teaching / exercise minutes in ``lessons/course.toml``;
``derived``   a stated rule over the notebook's own text and tasks, plus the machine time measured by running
              it (``make measure``, :mod:`.measure`; ``lessons/instructor/measured.json``):

              * reading: the section's prose at ``SPEAK_WPM`` words a minute (an instructor explaining the text
                aloud; a learner alone reads faster), plus ``CODE_LINE_S`` seconds per line of code shown;
              * the learner's moments: ``PREDICT_MIN`` per predict-then-run, a "Your turn (N minutes)" for its
                N (``TURN_MIN`` when it says none) plus ``DEBRIEF_MIN``, ``READ_OUTPUT_MIN`` per "Read the output";
              * machine time: the seconds the section's cells took on a fresh lab (measured; under load, so an
                upper bound on an idle laptop);
              * exercises: ``TASK_MIN`` of work per task, its text at ``READ_WPM``, and its cells' machine time;
``recorded``  what an instructor timed in a real workshop (``make record-timing``; ``lessons/instructor/timings.toml``):
              the median of every record.

A lesson's slot in an agenda uses ``recorded`` when there is a record, else the ``estimate``; inside the slot,
sections start at times shared out in proportion to their ``derived`` minutes. Both are shown, with their source.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .. import course
from . import outline

ROOT = course.ROOT
DATA = ROOT / "lessons" / "instructor"
MEASURED = DATA / "measured.json"
TIMINGS = DATA / "timings.toml"

SPEAK_WPM = 130  # words a minute when the instructor explains the text aloud
READ_WPM = 180  # words a minute when a learner reads a task alone
CODE_LINE_S = 4  # seconds to read a line of code shown in a cell
PREDICT_MIN = 2  # decide, run, discuss
TURN_MIN = 2  # a "Your turn" that names no minutes
DEBRIEF_MIN = 1  # after a "Your turn": what did you find?
READ_OUTPUT_MIN = 3  # read a real tool's output and decide
TASK_MIN = 6  # work per exercise task, beyond reading it and waiting for the machine

RULES = (
    f"reading: prose at {SPEAK_WPM} words/min (explained aloud) + {CODE_LINE_S} s per line of code shown; "
    f"moments: {PREDICT_MIN} min per predict-then-run, a 'Your turn' its own minutes (else {TURN_MIN}) + "
    f"{DEBRIEF_MIN} min debrief, {READ_OUTPUT_MIN} min per 'Read the output'; machine time as measured on a "
    f"fresh lab; exercises: {TASK_MIN} min of work per task + its text at {READ_WPM} words/min + its machine time"
)


@dataclass
class SectionTime:
    heading: str
    reading: float
    moments: float
    machine: float | None  # minutes, None when not measured
    recorded: float | None = None

    @property
    def derived(self) -> float:
        return self.reading + self.moments + (self.machine or 0.0)


@dataclass
class LessonTime:
    lesson: course.Lesson
    sections: list[SectionTime] = field(default_factory=list)
    tasks: int = 0
    exercise_derived: float = 0.0
    measured: dict = field(default_factory=dict)
    recorded: dict = field(default_factory=dict)  # {"teaching": m, "exercises": m, "records": n, "sections": {...}}

    @property
    def teaching_derived(self) -> float:
        return sum(s.derived for s in self.sections)

    def used(self, part: str) -> tuple[int, str]:
        """(minutes, source) for ``part`` ("teaching" | "exercises"): recorded if any, else the estimate."""
        if self.recorded.get(part) is not None:
            return round(self.recorded[part]), f"recorded ({self.recorded['records']} workshop(s))"
        return getattr(self.lesson, part), "estimate (course.toml)"

    def section_minutes(self, total: float | None = None, skip: set[str] = frozenset()) -> list[tuple[str, float, str]]:
        """[(heading, minutes, source)] sharing ``total`` (default: the teaching minutes used) out in proportion to
        the derived minutes; a section with a recorded time keeps it."""
        total = self.used("teaching")[0] if total is None else total
        kept = [s for s in self.sections if s.heading not in skip]
        fixed = sum(s.recorded for s in kept if s.recorded is not None)
        weights = sum(s.derived for s in kept if s.recorded is None) or 1.0
        rest = max(total - fixed, 0)
        out = []
        for s in kept:
            if s.recorded is not None:
                out.append((s.heading, s.recorded, "recorded"))
            else:
                out.append((s.heading, rest * s.derived / weights, "derived share"))
        return out


def measured() -> dict:
    try:
        return json.loads(MEASURED.read_text())
    except (OSError, ValueError):
        return {}


def records(path: Path = TIMINGS) -> list[dict]:
    try:
        return tomllib.loads(path.read_text()).get("record", [])
    except (OSError, tomllib.TOMLDecodeError):
        return []


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def recorded_for(lesson_id: str, recs: list[dict]) -> dict:
    mine = [r for r in recs if str(r.get("lesson")) == lesson_id]
    if not mine:
        return {}
    sections: dict[str, list[float]] = {}
    for r in mine:
        for k, v in (r.get("sections") or {}).items():
            sections.setdefault(k, []).append(float(v))
    return {
        "teaching": _median([float(r["teaching"]) for r in mine if "teaching" in r]),
        "exercises": _median([float(r["exercises"]) for r in mine if "exercises" in r]),
        "records": len(mine),
        "sections": {k: _median(v) for k, v in sections.items()},
    }


def lesson_time(lesson: course.Lesson, meas: dict | None = None, recs: list[dict] | None = None) -> LessonTime:
    meas = measured() if meas is None else meas
    recs = records() if recs is None else recs
    ol = outline.lesson_outline(lesson)
    m = meas.get(lesson.id, {})
    sec_s = m.get("section_s", {})
    rec = recorded_for(lesson.id, recs)
    lt = LessonTime(lesson, measured=m, recorded=rec)
    for s in ol.sections:
        reading = s.words / SPEAK_WPM + s.code_lines * CODE_LINE_S / 60
        moments = 0.0
        for mo in s.moments:
            if mo.kind == "Predict":
                moments += PREDICT_MIN
            elif mo.kind == "Your turn":
                moments += (mo.minutes or TURN_MIN) + DEBRIEF_MIN
            else:
                moments += READ_OUTPUT_MIN
        machine = sec_s[s.heading] / 60 if s.heading in sec_s else (0.0 if m and not s.code_cells else None)
        lt.sections.append(SectionTime(s.heading, reading, moments, machine, rec.get("sections", {}).get(s.heading)))
    sol = outline.solution_outline(lesson)
    if sol:
        lt.tasks = len(sol.tasks)
        words = sum(t.words for t in sol.tasks)
        machine = (m.get("notebook_s", {}).get("solutions") or 0) / 60
        lt.exercise_derived = lt.tasks * TASK_MIN + words / READ_WPM + machine
    return lt


def all_times() -> dict[str, LessonTime]:
    meas, recs = measured(), records()
    return {le.id: lesson_time(le, meas, recs) for le in course.lessons() if le.ready}


# ------------------------------------------------------------------ recording a workshop's real timings
def record(lesson_id: str, teaching: float | None, exercises: float | None, sections: dict[str, float],
           note: str = "", path: Path = TIMINGS, when: str | None = None) -> str:  # fmt: skip
    """Append one record to ``timings.toml`` (a plain file an instructor can also edit by hand)."""
    le = course.by_id(lesson_id)
    known = {s.heading for s in outline.lesson_outline(le).sections}
    unknown = [k for k in sections if k not in known]
    if unknown:
        raise ValueError(
            f"lesson {le.id} has no section {', '.join(map(repr, unknown))}; its sections: " + "; ".join(sorted(known))
        )
    if teaching is None and exercises is None and not sections:
        raise ValueError("give --teaching, --exercises or --section: what did you time?")
    lines = ["", "[[record]]", f'lesson = "{le.id}"', f'date = "{when or time.strftime("%Y-%m-%d")}"']
    if teaching is not None:
        lines.append(f"teaching = {teaching:g}")
    if exercises is not None:
        lines.append(f"exercises = {exercises:g}")
    if note:
        lines.append(f"note = {json.dumps(note)}")
    if sections:
        lines.append("sections = { " + ", ".join(f"{json.dumps(k)} = {v:g}" for k, v in sections.items()) + " }")
    text = "\n".join(lines) + "\n"
    if not path.exists():
        path.write_text(HEADER)
    with open(path, "a") as fh:
        fh.write(text)
    tomllib.loads(path.read_text())  # still valid TOML
    return text


HEADER = """# Real timings from workshops, in minutes: `make record-timing L=NN TEACHING=m EXERCISES=m` appends one.
# The agendas and instructor notes use the median of the records of a lesson instead of the authors' estimate
# (cloudlab/authoring/timing.py). `sections` times single sections (their headings as in the notebook).
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make record-timing", description="Record a workshop's real timings.")
    ap.add_argument("lesson")
    ap.add_argument("--teaching", type=float)
    ap.add_argument("--exercises", type=float)
    ap.add_argument("--section", action="append", default=[], metavar="HEADING=MINUTES")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    sections = {}
    for s in args.section:
        head, _, mins = s.rpartition("=")
        try:
            sections[head.strip()] = float(mins)
        except ValueError:
            print(f"--section {s!r}: write HEADING=MINUTES, e.g. 'Drift: someone clicked in the console=12'")
            return 2
    try:
        text = record(args.lesson, args.teaching, args.exercises, sections, args.note)
    except (ValueError, KeyError) as e:
        print(f"not recorded: {e}")
        return 2
    print(f"recorded in {TIMINGS.relative_to(ROOT)}:{text}then `make instructor-notes` uses it (commit both).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
