"""The nbval plugin must really fail a blank exercise whose check passes or crashes."""

import json
import subprocess
import sys

import pytest


def notebook(path, cells):
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "id": f"c{i}",
                "metadata": {"tags": tags},
                "source": src,
                "outputs": [],
                "execution_count": None,
            }
            for i, (src, tags) in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))


def run(path):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "cloudlab.authoring.nbcheck",
            "--nbval-lax",
            "--nbval-current-env",
            "-q",
            "-p",
            "no:cacheprovider",
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=path.parent,
    )


FRIENDLY = "from cloudlab.checks import CheckFailed\nraise CheckFailed('not yet', '9.9')"


@pytest.mark.parametrize(
    "check_src,ok",
    [
        (FRIENDLY, True),
        ("print('a check that passes on a blank exercise')", False),
        ("undefined_name", False),  # a crash, not a friendly failure
    ],
)
def test_exercise_check_cells_must_fail_friendly(tmp_path, check_src, ok):
    nb = tmp_path / "exercises" / "99_demo.ipynb"
    notebook(
        nb, [("raise NotImplementedError()", ["todo", "raises-exception"]), (check_src, ["check", "raises-exception"])]
    )
    out = run(nb)
    assert (out.returncode == 0) == ok, out.stdout[-2000:]
    if not ok:
        assert "must fail with CheckFailed" in out.stdout


@pytest.mark.parametrize(
    "todo_src,ok",
    [
        ("def f():\n    raise NotImplementedError()", True),  # a function body: nothing raised yet
        ("raise NotImplementedError()", True),
        ("import no_such_module_here", False),  # a crash in a blank task is a bug
    ],
)
def test_blank_task_cells(tmp_path, todo_src, ok):
    nb = tmp_path / "exercises" / "98_demo.ipynb"
    notebook(nb, [(todo_src, ["todo", "raises-exception"]), (FRIENDLY, ["check", "raises-exception"])])
    out = run(nb)
    assert (out.returncode == 0) == ok, out.stdout[-2000:]


def test_same_rules_do_not_apply_outside_exercises(tmp_path):
    nb = tmp_path / "solutions" / "99_demo.ipynb"
    notebook(nb, [("x = 1", []), ("print('passes')", ["check"])])
    assert run(nb).returncode == 0


@pytest.mark.parametrize(
    "kind, text, stray",
    [
        ("execute_result", "(0, 0.2037748370000827, False)", True),
        ("stream", "threshold 0.07200000000000006\n", True),
        ("execute_result", "1764230400123", True),  # epoch ms as a cell's result
        ("stream", "p99 0.21 s, 3 of 400 failed\n", False),
        ("execute_result", "'arn:aws:sqs:us-east-1:000000000000:orders'", False),
        ("stream", "request 1764230400123abc\n", False),
    ],
)
def test_stray_output_is_refused(kind, text, stray):
    from cloudlab.authoring import nbcheck

    out = (
        {"output_type": kind, "text": text} if kind == "stream" else {"output_type": kind, "data": {"text/plain": text}}
    )
    assert bool(nbcheck.stray_output([out])) is stray
