import json

import pytest

from cloudlab.authoring import generate as G


def nb(*cells):
    return {
        "cells": list(cells),
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def code(src, tags=None, cid="c"):
    c = {
        "cell_type": "code",
        "id": cid,
        "metadata": {},
        "source": src,
        "outputs": [{"output_type": "stream", "name": "stdout", "text": "x"}],
        "execution_count": 3,
    }
    if tags:
        c["metadata"]["tags"] = tags
    return c


def test_blank_solution_keeps_indent_and_context():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\nprint(1)"
    out, n = G.blank_solution(src)
    assert n == 1
    assert (
        out == "def f(x):\n    # TODO: your code here (then run this cell and the check below it)\n"
        "    raise NotImplementedError()\nprint(1)"
    )


@pytest.mark.parametrize(
    "src,msg",
    [
        ("### BEGIN SOLUTION\nx=1", "never closed"),
        ("x=1\n### END SOLUTION", "without BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
    ],
)
def test_malformed_markers_are_errors(src, msg):
    with pytest.raises(G.GeneratorError, match=msg):
        G.blank_solution(src)


def test_exercise_tags_and_cleared_outputs():
    out = G.exercise_from_solution(
        nb(
            code("x = 1", cid="a"),
            code("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", cid="b"),
            code("check()", ["check"], cid="c"),
            code("%%writefile w.py\n### BEGIN SOLUTION\nprint(1)\n### END SOLUTION", cid="d"),
        ),
        "01_x",
    )
    cells = out["cells"]
    assert cells[0]["id"] == "exercise-banner" and "solutions/01_x.ipynb" in cells[0]["source"]
    assert all(
        c.get("outputs", []) == [] and c.get("execution_count") is None for c in cells if c["cell_type"] == "code"
    )
    assert "tags" not in cells[1]["metadata"]
    assert cells[2]["metadata"]["tags"] == ["todo", "raises-exception"]
    assert cells[3]["metadata"]["tags"] == ["check", "raises-exception"]
    assert cells[4]["metadata"]["tags"] == ["todo"]  # writing a file does not raise
    assert "return 1" not in json.dumps(out)


def test_solution_without_blocks_is_rejected():
    with pytest.raises(G.GeneratorError, match="no ### BEGIN SOLUTION"):
        G.exercise_from_solution(nb(code("x = 1")), "01_x")


def test_deterministic_and_check_mode(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "solutions" / "01_x.ipynb").write_text(
        json.dumps(nb(code("### BEGIN SOLUTION\nx=1\n### END SOLUTION")))
    )
    assert G.generate(tmp_path, check=True) == ["exercises/01_x.ipynb"]
    G.generate(tmp_path)
    first = (tmp_path / "exercises" / "01_x.ipynb").read_text()
    assert G.generate(tmp_path, check=True) == []
    G.generate(tmp_path)
    assert (tmp_path / "exercises" / "01_x.ipynb").read_text() == first
    (tmp_path / "exercises" / "99_orphan.ipynb").write_text("{}")
    assert G.generate(tmp_path, check=True) == ["exercises/99_orphan.ipynb (no solution)"]


def test_strip_clears_outputs_of_sources(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_x.ipynb").write_text(json.dumps(nb(code("x=1"))))
    assert G.generate(tmp_path, check=True, strip=True) == ["notebooks/01_x.ipynb"]
    G.generate(tmp_path, strip=True)
    assert json.loads((tmp_path / "notebooks" / "01_x.ipynb").read_text())["cells"][0]["outputs"] == []


def test_repository_exercises_are_in_sync():
    stale = G.generate(check=True, strip=True)
    assert stale == [], f"run `make exercises` and commit: {stale}"
