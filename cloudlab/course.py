"""The course's lessons, read from the one place that holds their facts: ``lessons/course.toml``.

Standard library only. The README's lesson table is rendered from here (and checked by
``tests/test_course.py``); ``make test`` takes its shards from here. Serves every lesson.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE_FILE = ROOT / "lessons" / "course.toml"


@dataclass(frozen=True)
class Lesson:
    """One lesson's facts (see the comments in ``lessons/course.toml``)."""

    id: str
    slug: str
    title: str
    status: str = "ready"
    teaching: int = 0
    exercises: int = 0
    ci_seconds: int | None = None
    shard: str = ""
    unit_tests: tuple[str, ...] = ()
    tools: tuple[str, ...] = field(default=())

    @property
    def stem(self) -> str:
        return f"{self.id}_{self.slug}"

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def path(self, folder: str) -> Path:
        return ROOT / folder / f"{self.stem}.ipynb"

    @property
    def has_exercises(self) -> bool:
        return self.path("solutions").exists()


def load(path: Path = COURSE_FILE) -> tuple[dict, list[Lesson]]:
    data = tomllib.loads(path.read_text())
    lessons = []
    for raw in data.get("lesson", []):
        raw = dict(raw)
        for key in ("unit_tests", "tools"):
            raw[key] = tuple(raw.get(key, ()))
        lessons.append(Lesson(**raw))
    meta = {k: v for k, v in data.items() if k != "lesson"}
    return meta, lessons


def lessons() -> list[Lesson]:
    return load()[1]


def by_id(lesson_id: str) -> Lesson:
    for lesson in lessons():
        if lesson.id == f"{int(lesson_id):02d}":
            return lesson
    raise KeyError(f"no lesson {lesson_id!r} in {COURSE_FILE}")


def readme_table() -> str:
    """The README's lesson table, rendered from course.toml."""
    rows = ["| # | lesson | exercises | solutions | time | CI |", "|---|---|---|---|---|---|"]
    for le in lessons():
        if not le.ready:
            rows.append(f"| {le.id} | {le.title} | planned | | | |")
            continue
        ex = f"[exercises](exercises/{le.stem}.ipynb)" if le.has_exercises else "-"
        sol = f"[solutions](solutions/{le.stem}.ipynb)" if le.has_exercises else "-"
        ci = f"{le.ci_seconds} s" if le.ci_seconds is not None else ""
        rows.append(
            f"| {le.id} | [{le.title}](notebooks/{le.stem}.ipynb) | {ex} | {sol} | "
            f"{le.teaching} / {le.exercises} | {ci} |"
        )
    return "\n".join(rows)
