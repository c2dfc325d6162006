"""The instructor's and team lead's commands: room check, catch-up, progress export and report, the "any lesson
first" plugin of `make test`. No lab needed (nothing here starts or installs anything)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from cloudlab import catchup, course, roomcheck, team
from cloudlab.authoring import fresh

READY = [le for le in course.lessons() if le.ready]


def test_the_room_check_answers_per_lesson_in_words_and_in_seconds():
    t0 = time.monotonic()
    verdicts = roomcheck.check()
    took = time.monotonic() - t0
    assert took < 60, f"the room check took {took:.0f} s"
    text = roomcheck.render(verdicts)
    for le in READY:
        assert f"lesson {le.id} · {le.title}" in text
    assert all(v.state in roomcheck.STATES for v in verdicts)
    assert all(line.startswith(("[READY]", "[SETUP]", "[NOT READY]", "    ")) for line in text.splitlines()[:-1])
    assert "the machine" in text and "every lesson (the lab itself)" in text


def test_a_missing_tool_makes_its_lessons_not_ready_with_the_fix(monkeypatch):
    lab = roomcheck.Lab.from_env()
    le = next(le for le in READY if "terraform" in le.tools)
    states = {t: ("OK", "") for t in le.tools}
    states["terraform"] = ("FAIL", "terraform (infrastructure as code): see https://developer.hashicorp.com/...")
    base = roomcheck.Verdict("base", "READY")
    v = roomcheck.lesson_verdict(le, lab, states, base)
    assert v.state == "NOT READY" and any("terraform" in line for line in v.lines)
    states["terraform"] = ("AUTO", "")
    assert roomcheck.lesson_verdict(le, lab, states, base).state == "SETUP"


def test_catchup_knows_what_each_lesson_takes_from_earlier_ones(capsys):
    ready = {le.id for le in READY}
    assert set(catchup.CATCHUP) <= ready
    for lid in catchup.CATCHUP:
        assert catchup.needs(lid) and all(isinstance(w, str) for w in catchup.needs(lid))
    lid = next(le.id for le in READY if le.id not in catchup.CATCHUP)
    assert catchup.main([lid]) == 0 and "needs nothing from earlier lessons" in capsys.readouterr().out
    assert catchup.main(["x"]) == 2


def test_progress_export_and_report_round_trip(tmp_path, monkeypatch):
    progress = {
        "01.1": {"title": "t", "attempts": 2, "passed_at": "2026-12-01 10:00:00"},
        "01.2": {"title": "t", "attempts": 3, "last_status": "fail"},
    }
    (tmp_path / "progress.json").write_text(json.dumps(progress))
    monkeypatch.setenv("CLOUDLAB_PROGRESS_FILE", str(tmp_path / "progress.json"))
    a = team.export("Ada L", tmp_path / "a.json")
    b = team.export("grace", tmp_path / "b.json", source=tmp_path / "none.json")
    data = json.loads(a.read_text())
    assert data["format"] == team.FORMAT and data["summary"]["01"]["passed"] == 1
    assert data["summary"]["01"]["stuck"] == ["01.2"] and data["summary"]["01"]["total"] >= 4
    (tmp_path / "junk.json").write_text("{}")
    text = team.report([a, b, tmp_path / "junk.json"])
    assert "Ada L" in text and "grace" in text and "01.2" in text and "junk.json: not a progress export" in text
    csv_text = team.report([a, b], as_csv=True)
    assert csv_text.splitlines()[0].startswith("engineer,exported,lesson 01")
    with pytest.raises(ValueError):
        team.export("../../etc", tmp_path / "c.json")


def test_fresh_resets_before_each_lessons_first_notebook_only(monkeypatch):
    calls = []
    monkeypatch.setenv("CLOUDLAB_FRESH_LESSONS", "1")
    monkeypatch.setattr(fresh, "reset_lab", lambda lesson, config=None: calls.append(lesson) or 0.1)
    monkeypatch.setattr(fresh, "_seen", set())
    monkeypatch.setattr(fresh, "_resets", [])
    root = Path("/x")
    order = ["tests/test_lesson01.py", "notebooks/00_environment-check.ipynb", "notebooks/00_environment-check.ipynb",
             "notebooks/01_cloud-mindset.ipynb", "solutions/01_cloud-mindset.ipynb",
             "exercises/01_cloud-mindset.ipynb", "notebooks/00_environment-check.ipynb"]  # fmt: skip
    for p in order:
        fresh.pytest_runtest_setup(SimpleNamespace(path=root / p, config=None))
    assert calls == ["00", "01"]  # once per lesson, before its lesson notebook; never for the second pass
    assert fresh.lesson_notebook("notebooks/08_ci-cd-and-deployment.ipynb") == "08"
    assert fresh.lesson_notebook("solutions/08_ci-cd-and-deployment.ipynb") is None
    monkeypatch.setenv("CLOUDLAB_FRESH_LESSONS", "")
    fresh.pytest_runtest_setup(SimpleNamespace(path=root / "notebooks/02_infrastructure-as-code.ipynb", config=None))
    assert calls == ["00", "01"]


def test_make_test_loads_the_fresh_plugin_and_records_wrong_answers():
    from cloudlab.authoring import testrun

    assert "cloudlab.authoring.fresh" in testrun.PYTEST
    env = testrun._env(0, "main")
    assert env["CLOUDLAB_FRESH_LESSONS"] == "1"
    assert env["CLOUDLAB_REJECTED_LOG"] == str(testrun.rejected_log("main"))
