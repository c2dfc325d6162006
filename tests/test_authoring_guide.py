"""CONTRIBUTING.md's "Adding an exercise of your own", built as written in a temporary folder: its check passes the
right answer, rejects its three wrong answers with a hint, fails a blank exercise, and the instructor notes' reader
finds the three wrong answers. No lab needed."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from cloudlab import course
from cloudlab.authoring import generate, outline, wronganswers
from cloudlab.checks import CheckFailed

GUIDE = (course.ROOT / "CONTRIBUTING.md").read_text()


def blocks() -> dict[str, str]:
    """{title: code} of the guide section's fenced blocks (```python title=...)."""
    section = GUIDE.split("## Adding an exercise of your own", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"```python title=(\S+)\n(.*?)```", section, re.S)}


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """The guide's files in a temporary folder: the check module as ``cloudlab.lesson90`` (a conftest registers it,
    as the file would be in the repository), the test module, the solution notebook."""
    code = blocks()
    assert set(code) == {"cloudlab/lesson90.py", "task-cell", "check-cell", "tests/test_lesson90.py"}
    d = tmp_path_factory.mktemp("team-exercise")
    (d / "lesson90.py").write_text(code["cloudlab/lesson90.py"])
    (d / "test_lesson90.py").write_text(code["tests/test_lesson90.py"])
    (d / "checktest.py").write_text((course.ROOT / "tests" / "checktest.py").read_text())
    (d / "conftest.py").write_text(
        "import importlib.util, sys\nimport cloudlab\n"
        f"spec = importlib.util.spec_from_file_location('cloudlab.lesson90', {str(d / 'lesson90.py')!r})\n"
        "mod = importlib.util.module_from_spec(spec)\nsys.modules['cloudlab.lesson90'] = mod\n"
        "spec.loader.exec_module(mod)\ncloudlab.lesson90 = mod\n"
    )
    return d, code


def _load_check(d):
    import importlib.util

    spec = importlib.util.spec_from_file_location("team_lesson90", d / "lesson90.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_guides_check_passes_the_right_answer_and_rejects_three_wrong_ones(team):
    d, _ = team
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{d}:{course.ROOT}", "CLOUDLAB_PROGRESS_FILE": str(d / "p.json"),
           "CLOUDLAB_REJECTED_LOG": str(d / "rejected.jsonl")}  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_lesson90.py"],
                         cwd=d, env=env, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout
    records = wronganswers.read_records([d / "rejected.jsonl"])
    assert len(records) == 3 and {r["check"] for r in records} == {"90.1"}


def test_the_instructor_notes_would_list_its_wrong_answers(team, monkeypatch):
    d, _ = team
    ids = outline.check_ids.__wrapped__(course.ROOT)  # the course's checks ...
    monkeypatch.setattr(outline, "check_ids", lambda root=None: {**ids, "lesson90.check_dockerignore": "90.1"})
    found = wronganswers.Reader(d / "test_lesson90.py").calls()
    assert [a.check_id for a in found] == ["90.1"] * 3
    assert [a.words for a in found] == [
        ("config/.env is sent",),
        (".git/config is sent",),
        ("app/main.py is left out",),
    ]
    assert found[0].description.startswith("top level only: only the top-level .env")


def test_the_solution_notebook_makes_an_exercise_whose_check_fails_until_it_is_done(team, tmp_path, monkeypatch):
    d, code = team
    monkeypatch.setenv("CLOUDLAB_PROGRESS_FILE", str(tmp_path / "progress.json"))
    lesson90 = _load_check(d)
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "## Task 1 · Keep secrets out of the image"},
        {"cell_type": "code", "metadata": {}, "source": code["task-cell"], "outputs": [], "execution_count": None},
        {"cell_type": "code", "metadata": {"tags": ["check"]}, "source": code["check-cell"], "outputs": [],
         "execution_count": None},
    ]  # fmt: skip
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    exercise = generate.exercise_from_solution(nb, "90_our-service")
    task = next(c for c in exercise["cells"] if "todo" in c["metadata"].get("tags", []))
    assert "raise NotImplementedError()" in task["source"] and "!app/" not in task["source"]
    solved: dict = {}
    exec(code["task-cell"].replace("### BEGIN SOLUTION\n", "").replace("### END SOLUTION\n", ""), solved)
    lesson90.check_dockerignore(solved)  # the right answer passes
    with pytest.raises(CheckFailed, match="`DOCKERIGNORE` is not defined yet"):
        lesson90.check_dockerignore({})  # a blank exercise fails with a plain message
    json.dumps(exercise)  # a notebook that can be written
