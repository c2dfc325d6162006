"""The retry notebooks: every task blank, then wrong, then right, in one kernel (cloudlab.authoring.retry),
and the rules nbcheck enforces on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudlab import course
from cloudlab.authoring import nbcheck, retry


def _code(src, tags=None):
    return {"cell_type": "code", "metadata": {"tags": tags} if tags else {}, "source": src, "outputs": []}


def _nb(tmp_path, cells):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "01_demo.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}}))
    return tmp_path


TASK = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION"
CHECK = "lesson01.check_config()"  # a real check: its id is 01.1


def test_each_task_runs_blank_then_wrong_then_right(tmp_path):
    root = _nb(tmp_path, [_code("import cloudlab"), _code(TASK), _code("y = f(1)"), _code(CHECK, ["check"])])
    nb = retry.build("01", root, {"01.1": "return x - 1"})
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    sources = [c["source"] for c in code]
    assert sources[0] == "import cloudlab"
    # blank round: the TODO, the cell after it, the check (must fail)
    assert "raise NotImplementedError()" in sources[1] and retry.BLANK_TAG in code[1]["metadata"]["tags"]
    assert retry.BLANK_TAG in code[2]["metadata"]["tags"] and sources[2] == "y = f(1)"
    assert retry.FAIL_TAG in code[3]["metadata"]["tags"]
    # wrong round: the attempt, indented like the block, then the same check (must fail)
    assert "    return x - 1" in sources[4] and "BEGIN SOLUTION" not in sources[4]
    assert retry.WRONG_TAG in code[5]["metadata"]["tags"] and retry.FAIL_TAG in code[6]["metadata"]["tags"]
    # right round: the solution's own cells, untagged by the retry
    assert sources[7:] == [TASK, "y = f(1)", CHECK]
    assert all(retry.ROUND_TAG not in c["metadata"].get("tags", []) for c in code[7:])
    assert len({c["id"] for c in nb["cells"]}) == len(nb["cells"])


def test_every_task_needs_a_wrong_attempt_of_the_right_shape(tmp_path):
    root = _nb(tmp_path, [_code(TASK), _code(CHECK, ["check"])])
    with pytest.raises(retry.RetryError, match="no wrong attempt for 01.1"):
        retry.build("01", root, {})
    with pytest.raises(retry.RetryError, match="1 solution block"):
        retry.build("01", root, {"01.1": ("a = 1", "b = 2")})
    with pytest.raises(retry.RetryError, match="no task here: 01.9"):
        retry.build("01", root, {"01.1": "return 0", "01.9": "x"})


def _error(ename, tb):
    return [{"output_type": "error", "ename": ename, "evalue": "e", "traceback": tb}]


RAW = ["----", "Traceback (most recent call last)", "Cell In[3], line 1", "KeyError: 'x'"]


@pytest.mark.parametrize(
    "tag,outputs,ok",
    [
        (retry.FAIL_TAG, _error("CheckFailed", ["CheckFailed 01.1: not yet\n  [missing] x\n  Hint 1/2: y"]), True),
        (retry.FAIL_TAG, [], False),  # the check passed a wrong answer
        (retry.FAIL_TAG, _error("CheckFailed", ["CheckFailed 01.1: no missing line"]), False),
        (retry.FAIL_TAG, _error("KeyError", RAW), False),  # the check crashed
        (retry.WRONG_TAG, [], True),
        (retry.WRONG_TAG, _error("TaskError", ["TaskError: your policy refused the call; see the check"]), True),
        (retry.WRONG_TAG, _error("ClientError", RAW), False),  # a raw traceback after a wrong answer
        (retry.WRONG_TAG, _error("NotImplementedError", RAW), False),
        (retry.BLANK_TAG, _error("NotImplementedError", RAW), True),
        (retry.BLANK_TAG, _error("NameError", RAW), False),
    ],
)
def test_retry_rules(tag, outputs, ok):
    cell = {"metadata": {"tags": [retry.ROUND_TAG, tag, "raises-exception"]}, "source": "x"}
    if ok:
        nbcheck.retry_rules(cell, outputs)
    else:
        with pytest.raises(AssertionError):
            nbcheck.retry_rules(cell, outputs)


@pytest.mark.parametrize("lesson", [le.id for le in course.lessons() if le.ready and le.id != "00"])
def test_wrong_attempts_fit_their_lesson(lesson, tmp_path):
    """Every ready lesson with tasks has tests/attempts/lessonNN.py: each task covered, a retry notebook built."""
    assert (retry.ATTEMPTS_DIR / f"lesson{lesson}.py").exists(), (
        f"lesson {lesson} is ready but has no tests/attempts/lesson{lesson}.py: a wrong attempt for each task "
        "(make test runs every task blank, then wrong, then right, in one kernel)"
    )
    path = retry.write(lesson, tmp_path)
    assert json.loads(path.read_text())["cells"]


def test_make_test_reports_the_machine_and_the_costliest_tests(tmp_path, monkeypatch, capsys):
    from cloudlab.authoring import testrun

    busy, idle = testrun.machine_cpu()
    assert (busy > 0 and idle >= 0) if Path("/proc/stat").exists() else (busy, idle) == (0.0, 0.0)  # macOS: no /proc
    monkeypatch.setattr(testrun, "state_dir", lambda shard: tmp_path / shard)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "test-cpu.json").write_text('{"tests/test_x.py::slow": 9.5, "tests/test_x.py::fast": 0.1}')
    (tmp_path / "a" / "notebook-times.json").write_text('{"notebooks/01_x.ipynb": 12.0}')
    testrun._costliest({"a": [], "b": []}, n=1)
    out = capsys.readouterr().out
    assert "9.5  tests/test_x.py::slow" in out and "fast" not in out and "12.0  notebooks/01_x.ipynb" in out
