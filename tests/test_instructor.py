"""The instructor's notes stay true: generated from the course's own data, every wrong answer of every check in them,
the hand-written data in sync with the notebooks, and instructor cells never in a learner's copy. No lab needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cloudlab import course
from cloudlab.authoring import instructor, instructor_nb, outline, timing, wronganswers
from cloudlab.lab import workspace

READY = [le for le in course.lessons() if le.ready]


@pytest.fixture(scope="module")
def answers():
    return wronganswers.read()


def test_the_committed_pages_are_what_the_sources_say_now():
    stale = [str(p.relative_to(course.ROOT)) for p, text in instructor.pages().items()
             if not p.exists() or p.read_text() != text]  # fmt: skip
    assert not stale, f"stale instructor pages: {stale}; run `make instructor-notes` and commit them"


def test_every_wrong_answer_test_of_every_check_is_in_the_notes(answers):
    missing = []
    for a in answers:
        le = course.by_id(a.lesson)
        text = (instructor.DOCS / f"{le.stem}.md").read_text()
        row = f"| `{a.test}` |"
        if row not in text or not all(w.replace("|", "\\|") in text for w in a.words):
            missing.append(f"{a.file}:{a.line} {a.test} {a.words}")
    assert not missing, "wrong answers missing from the notes (run `make instructor-notes`):\n" + "\n".join(missing)


def test_every_check_has_its_wrong_answers_and_each_names_its_check(answers):
    assert all(a.check_id for a in answers), [a for a in answers if not a.check_id]
    by = wronganswers.by_check(answers)
    for le in READY:
        sol = outline.solution_outline(le)
        for t in sol.tasks if sol else []:
            assert t.check_id, f"{le.stem}: the check cell {t.check_call!r} names no registered check"
            assert len(by.get(t.check_id, [])) >= 3, f"{t.check_id} has fewer than three wrong-answer tests"


def test_the_hand_written_data_matches_the_notebooks():
    """Every [[moment]] matches one moment, every predict-then-run has its expected answer, every skipped section
    exists; a lesson still being built says TODO (and the generator reports it)."""
    problems = [p for p in instructor.report() if "is a TODO" not in p]
    assert not problems, "\n".join(problems)
    todo = [p for p in instructor.report() if "is a TODO" in p]
    for le in READY:
        notes = instructor.load_notes(le.id)
        assert notes is not None, instructor.problems(le, None, outline.Outline(Path()))[0]
        if notes.status == "todo":  # a lesson that became ready before its notes were written: reported, and shown
            assert notes.todo and any(f"{le.id}.toml is a TODO" in p for p in todo), le.id
            assert "TODO" in (instructor.DOCS / f"{le.stem}.md").read_text()
        else:
            assert len(notes.key_points) >= 2, le.id


def test_lessons_being_built_have_a_todo_the_generator_reports():
    todo = [p for p in instructor.report() if "is a TODO" in p]
    for lid in ("10", "12"):
        notes = instructor.load_notes(lid)
        if notes.status == "todo":
            assert notes.todo and any(f"{lid}.toml is a TODO" in p for p in todo), todo


def test_a_ready_lesson_without_its_notes_file_gets_a_page_and_a_clear_failure(tmp_path, monkeypatch, capsys):
    """A lesson merged as ready before its lessons/instructor file (the capstone on its own branch): the generator
    still writes its page, with a TODO, and says in one line which file is missing; CHECK=1 fails."""
    data = tmp_path / "instructor"
    shutil.copytree(instructor.DATA, data)
    (data / "09.toml").unlink()
    monkeypatch.setattr(instructor, "DATA", data)
    le = next(le for le in READY if le.id == "09")
    assert any(p.startswith("lessons/instructor/09.toml is missing: lesson 09 is ready") for p in instructor.report())
    text = instructor.page(le, [], timing.all_times()["09"])
    assert "TODO (for the lesson's author):** no lessons/instructor file" in text and "## Sections and timing" in text
    assert instructor.main(["--check"]) == 1
    assert "09.toml is missing" in capsys.readouterr().out


def test_the_pages_are_linked_from_the_readme_and_the_index():
    readme = (course.ROOT / "README.md").read_text()
    section = readme.split("## For instructors and team leads", 1)[1].split("\n## ", 1)[0]
    for page in ("README.md", "agendas.md", "checklist.md", "team.md", "accessibility.md", "room.md"):
        assert f"docs/instructors/{page}" in section, page
        assert (instructor.DOCS / page).exists(), page
    index = (instructor.DOCS / "README.md").read_text()
    for le in READY:
        assert f"]({le.stem}.md)" in index


# ------------------------------------------------------------------ the instructor's notebooks
def test_instructor_notebooks_hold_every_cell_of_the_lesson_and_tagged_notes(tmp_path):
    written = instructor_nb.write_notebooks(tmp_path)
    assert len(written) == sum(1 + le.has_exercises for le in READY)
    for p in written:
        nb = json.loads(p.read_text())
        notes = [c for c in nb["cells"] if instructor.INSTRUCTOR_TAG in c["metadata"].get("tags", [])]
        stem = p.name.split(".")[0]
        folder = "solutions" if ".solutions." in p.name else "notebooks"
        original = json.loads((course.ROOT / folder / f"{stem}.ipynb").read_text())["cells"]
        rest = [c for c in nb["cells"] if c not in notes]
        assert [c["source"] for c in rest] == [c["source"] for c in original], p.name
        assert notes and all(c["cell_type"] == "markdown" for c in notes), p.name
        assert not instructor_nb.learner_safe(nb)


def test_no_course_notebook_and_no_learner_workspace_holds_an_instructor_cell(tmp_path):
    for folder in ("notebooks", "exercises", "solutions"):
        for p in sorted((course.ROOT / folder).glob("*.ipynb")):
            assert instructor_nb.learner_safe(json.loads(p.read_text())), p
    ws = tmp_path / "workspace"
    workspace.sync(ws)
    copies = sorted(ws.rglob("*.ipynb"))
    assert copies and not (ws / "instructor").exists()
    for p in copies:
        assert instructor_nb.learner_safe(json.loads(p.read_text())), p


# ------------------------------------------------------------------ timings an instructor records
def test_recorded_timings_replace_the_estimate_and_are_checked(tmp_path):
    path = tmp_path / "timings.toml"
    le = READY[1]
    heading = outline.lesson_outline(le).sections[1].heading
    timing.record(le.id, 50, 41, {heading: 12}, "room A", path=path, when="2026-12-01")
    timing.record(le.id, 60, 35, {}, path=path, when="2026-12-08")
    recs = timing.records(path)
    lt = timing.lesson_time(le, recs=recs)
    assert lt.used("teaching") == (55, "recorded (2 workshop(s))")
    assert lt.used("exercises")[0] == 38
    assert dict((h, m) for h, m, _ in lt.section_minutes())[heading] == 12
    assert abs(sum(m for _, m, _ in lt.section_minutes()) - 55) < 1e-6
    with pytest.raises(ValueError, match="has no section"):
        timing.record(le.id, 1, 1, {"No such section": 3}, path=path)
    with pytest.raises(ValueError, match="what did you time"):
        timing.record(le.id, None, None, {}, path=path)


# ------------------------------------------------------------------ the reader of wrong-answer tests, on its own
SAMPLE = '''
import pytest
from checktest import rejected
from cloudlab.checks import check

@check("99.1", "a sample check", hints=["one", "two"])
def check_sample(r, ns):
    v = r.need(ns, "v")
    r.expect(v == 42, "v is 42", f"v is {v!r}, expected 42")

WORDS = {"text": ("'42'",), "float": ("42.5",)}
VALUES = {"text": "42", "float": 42.5}


def _off_by_one():
    """the answer off by one"""
    return 41


@pytest.mark.parametrize(
    "value, words",
    [
        (41, ("v is 41",)),  # one too few
        # a string that looks right
        ("42", ("'42'",)),
    ],
    ids=["low", "string"],
)
def test_rejects_listed(value, words):
    rejected(check_sample, {"v": value}, *words)


@pytest.mark.parametrize("case", sorted(WORDS))
def test_rejects_by_key(case):
    rejected(check_sample, {"v": VALUES[case]}, *WORDS[case])


def test_rejects_in_steps():
    rejected(check_sample, {}, "not defined")  # nothing done yet
    value = 43  # one too many
    rejected(check_sample, {"v": value}, f"v is {value}")
    rejected(check_sample, {"v": _off_by_one()}, "expected 42")
'''


def test_the_reader_sees_what_the_tests_assert_at_run_time(tmp_path, monkeypatch):
    """A module of wrong-answer tests in every style the lessons use: the reader's wrong answers (check, words,
    description) match, one for one, what checktest.rejected records while pytest runs them."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_lesson99.py").write_text(textwrap.dedent(SAMPLE))
    (tests / "checktest.py").write_text((course.ROOT / "tests" / "checktest.py").read_text())
    monkeypatch.setattr(outline, "check_ids", lambda root=None: {"lesson99.check_sample": "99.1"})
    found = wronganswers.Reader(tests / "test_lesson99.py").calls()
    assert [(a.check_id, a.words) for a in found] == [
        ("99.1", ("v is 41",)), ("99.1", ("'42'",)), ("99.1", ("42.5",)), ("99.1", ("'42'",)),
        ("99.1", ("not defined",)), ("99.1", ("v is 43",)), ("99.1", ("expected 42",)),
    ]  # fmt: skip
    described = {(a.test, a.description) for a in found}
    assert ("test_rejects_listed[low]", "low: one too few") in described
    assert ("test_rejects_listed[string]", "a string that looks right") in described  # the id is in it already
    assert ("test_rejects_by_key[float]", "float") in described
    assert ("test_rejects_in_steps", "the task left blank (nothing defined yet)") in described
    assert ("test_rejects_in_steps", "one too many") in described
    assert ("test_rejects_in_steps", "the answer off by one") in described
    log = tmp_path / "rejected.jsonl"
    env = {"CLOUDLAB_REJECTED_LOG": str(log), "PYTHONPATH": f"{tests}:{course.ROOT}", "PATH": "/usr/bin:/bin",
           "CLOUDLAB_PROGRESS_FILE": str(tmp_path / "progress.json")}  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
                         cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    records = wronganswers.read_records([log])
    for r in records:  # the reader names files relative to the course; this module lives in a temporary folder
        r["file"] = str(tests / "test_lesson99.py")
    found = [a.__class__(**{**a.__dict__, "file": str(tests / "test_lesson99.py")}) for a in found]
    assert len(records) == 7  # the parametrized cases run once each, the steps three times
    assert wronganswers.unseen(records, found) == []
    assert wronganswers.unseen([{**records[0], "words": ["something else"]}], found)
