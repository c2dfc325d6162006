"""lessons/course.toml is the one place of each lesson's facts: the README and the notebooks agree with it."""

import json
import re

import pytest

from cloudlab import course
from cloudlab.lab import tools

ROOT = course.ROOT
LESSONS = course.lessons()
READY = [le for le in LESSONS if le.ready]


def first_markdown(path):
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def test_ids_are_unique_and_in_order():
    ids = [le.id for le in LESSONS]
    assert ids == sorted(set(ids)) and all(re.fullmatch(r"\d\d", i) for i in ids)


def test_readme_table_is_rendered_from_course_toml():
    readme = (ROOT / "README.md").read_text()
    table = course.readme_table()
    assert table in readme, "README's lesson table differs from lessons/course.toml; it should read:\n" + table


@pytest.mark.parametrize("lesson", READY, ids=lambda le: le.stem)
def test_notebook_title_and_time_match(lesson):
    md = first_markdown(lesson.path("notebooks"))
    assert md.splitlines()[0] == f"# {lesson.id} · {lesson.title}"
    want = f"**Time:** teaching {lesson.teaching} min · exercises {lesson.exercises} min"
    assert want in md, f"the notebook's time line should read {want!r} (lessons/course.toml)"


@pytest.mark.parametrize("lesson", READY, ids=lambda le: le.stem)
def test_ready_lessons_are_whole(lesson):
    assert lesson.ci_seconds is not None, "measure it: `make test` writes notebook-times.json"
    for rel in lesson.unit_tests:
        assert (ROOT / rel).exists(), rel
    for tool in lesson.tools:
        assert tool in tools.TOOLS, f"{tool} is not in cloudlab.lab.tools.TOOLS"


def test_every_notebook_belongs_to_a_lesson():
    stems = {le.stem for le in READY}
    for folder in ("notebooks", "solutions", "exercises"):
        for p in (ROOT / folder).glob("*.ipynb"):
            assert p.stem in stems, f"{folder}/{p.name} is not a ready lesson in lessons/course.toml"


def test_planned_lessons_have_no_notebook_yet():
    for le in LESSONS:
        if not le.ready:
            assert not le.path("notebooks").exists(), f"{le.stem} exists: mark it ready in lessons/course.toml"
