"""The style guide (CONTRIBUTING.md), enforced."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted(ROOT.glob("notebooks/*.ipynb"))
SOLUTIONS = sorted(ROOT.glob("solutions/*.ipynb"))


def load(p):
    return json.loads(p.read_text())


def text(nb, kind="markdown"):
    return "\n".join(
        c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        for c in nb["cells"]
        if c["cell_type"] == kind
    )


def test_there_are_lessons():
    assert LESSONS and SOLUTIONS


@pytest.mark.parametrize(
    "path", LESSONS + SOLUTIONS + sorted(ROOT.glob("exercises/*.ipynb")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_committed_without_outputs(path):
    nb = load(path)
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None, (
                f"{path.name}: run `make exercises` to clear outputs"
            )
    assert not re.search(r"/root/|/home/\w+/|/tmp/[a-zA-Z]", path.read_text()), "machine-specific paths in a notebook"
    assert re.match(r"^\d\d_[a-z0-9-]+\.ipynb$", path.name)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_has_required_sections(path):
    md = text(load(path))
    nn = path.name[:2]
    assert re.search(rf"^# {nn} · ", md, re.M), "title '# NN · Title'"
    assert re.search(r"\*\*Time:\*\* teaching \d+ min · exercises \d+ min", md), "time line"
    assert "**Prerequisites:**" in md
    for section in ("## Learning objectives", "## Summary", "## Key takeaways"):
        assert section in md, section
    if (ROOT / "solutions" / path.name).exists():
        assert f"../exercises/{path.name}" in md, "link to the exercise notebook"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_structure(path):
    nb = load(path)
    assert (ROOT / "notebooks" / path.name).exists(), "every exercise belongs to a lesson of the same stem"
    codes = [c for c in nb["cells"] if c["cell_type"] == "code"]

    def src(c):
        return c["source"] if isinstance(c["source"], str) else "".join(c["source"])

    tasks = [i for i, c in enumerate(codes) if "### BEGIN SOLUTION" in src(c)]
    checks = [i for i, c in enumerate(codes) if "check" in c["metadata"].get("tags", [])]
    assert len(checks) >= 4, "at least four exercises, each with a check cell"
    for c in (codes[i] for i in checks):
        assert "### BEGIN SOLUTION" not in src(c) and len(src(c).strip().splitlines()) == 1, "a check cell is one call"
    for t in tasks:
        assert any(ch > t for ch in checks), "every task is followed by a check"
    setup = src(codes[0])
    assert "connect()" in setup, "the first code cell connects to the lab"


def test_every_lesson_ends_with_links_to_its_exercises_and_the_next_lesson():
    """The last line of a lesson is a **Next:** line whose links open (not a bare "Next: 02 ...")."""
    from cloudlab import course

    ready = [le for le in course.lessons() if le.ready and le.id != "00"]
    for i, le in enumerate(ready):
        name = f"{le.id}_{le.slug}.ipynb"
        last = json.loads((ROOT / "notebooks" / name).read_text())["cells"][-1]
        line = "".join(last["source"]).rstrip().splitlines()[-1]
        assert line.startswith("**Next:**") and f"](../exercises/{name})" in line, (name, line)
        if i + 1 < len(ready):
            nxt = ready[i + 1]
            assert f"]({nxt.id}_{nxt.slug}.ipynb)" in line, (name, line)
        for target in re.findall(r"\]\(([^)]+\.ipynb)\)", line):
            assert (ROOT / "notebooks" / target).resolve().exists(), (name, target)


SHUT_DOWN = "Kernel ▸ Shut Down Kernel"


@pytest.mark.parametrize(
    "path", LESSONS + SOLUTIONS + sorted(ROOT.glob("exercises/*.ipynb")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_the_last_words_tell_the_learner_to_shut_the_kernel_down(path):
    """Ten lessons left open held 19 kernels and 2.4 GiB: each notebook's final markdown cell says how to give the
    memory back (the lab also culls kernels left idle with no tab open: cloudlab.lab.jupyter.CULL)."""
    last = [c for c in load(path)["cells"] if c["cell_type"] == "markdown"][-1]
    src = last["source"] if isinstance(last["source"], str) else "".join(last["source"])
    assert SHUT_DOWN in src, f"{path.name}: add the kernel shut-down line to the final markdown cell"
