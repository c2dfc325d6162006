"""Retry notebooks: every task run as a learner runs it, blank, then wrong, then right, in ONE kernel.

A learner always re-runs a corrected cell. For each task of ``solutions/NN_slug.ipynb`` (the cells holding
``### BEGIN SOLUTION`` blocks up to the next check cell), the retry notebook replays the task three times
before going on:

1. blank: the exercise's TODO (``raise NotImplementedError()``); its check must fail with ``CheckFailed``;
2. wrong: a plausible wrong answer from ``tests/attempts/lessonNN.py``; the task's cells must not end in a raw
   traceback (the course's code after the learner's answer turns errors into one line), and its check must
   fail with ``CheckFailed``;
3. right: the solution's own cells; its check must pass.

``tests/attempts/lessonNN.py`` holds ``ATTEMPTS = {"NN.k": "source", ...}``: the source replaces the solution
block of the task whose check has id ``NN.k`` (a tuple of sources when the task has several blocks).
``make test`` runs the retry notebook as the second run of each solution (so every solution still runs twice
in a row against the same lab); ``cloudlab.authoring.nbcheck`` enforces the rules above by cell tag.

    python -m cloudlab.authoring.retry 09            # build and run lesson 09's retry notebook in a test lab
    python -m cloudlab.authoring.retry 09 --build    # only write it (path printed)
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from . import CHECK_TAG, RAISES_TAG
from .generate import BEGIN, END, blank_solution, clean_notebook, dumps, source_text

ROOT = Path(__file__).resolve().parent.parent.parent
ATTEMPTS_DIR = ROOT / "tests" / "attempts"
BLANK_TAG = "retry-blank"  # a cell of the blank round: nothing, NotImplementedError or a one-line course error
WRONG_TAG = "retry-wrong"  # a cell of the wrong round: nothing or a one-line course error (no raw traceback)
FAIL_TAG = "retry-fail"  # a check after a blank or wrong attempt: must raise CheckFailed
ROUND_TAG = "retry-round"  # any cell of the blank or wrong round (may raise only as its own tag allows)
CALL = re.compile(r"^\s*(\w+)\.(\w+)\(\s*\)\s*$")


class RetryError(ValueError):
    pass


def solution_path(lesson: str, root: Path = ROOT) -> Path:
    found = sorted((root / "solutions").glob(f"{lesson}_*.ipynb"))
    if not found:
        raise RetryError(f"no solutions/{lesson}_*.ipynb")
    return found[0]


def load_attempts(lesson: str, root: Path = ROOT) -> dict:
    path = root / "tests" / "attempts" / f"lesson{lesson}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"_attempts_{lesson}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return dict(getattr(mod, "ATTEMPTS", {}))


def check_id(source: str) -> str:
    """``lesson01.check_config()`` -> the registered check's id (``"01.1"``)."""
    m = CALL.match(source.strip())
    if not m:
        raise RetryError(f"a check cell must be one call like lesson01.check_config(), not {source.strip()[:80]!r}")
    module, fn = m.groups()
    mod = importlib.import_module(f"cloudlab.{module}")
    spec = getattr(getattr(mod, fn, None), "spec", None)
    if spec is None:
        raise RetryError(f"cloudlab.{module}.{fn} is not a check")
    return spec.id


def tasks(nb: dict) -> list[tuple[int, int, str]]:
    """(index of the task's first solution cell, index of its check cell, check id) for every task."""
    out, first = [], None
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = source_text(cell)
        if first is None and any(BEGIN.match(ln) for ln in src.split("\n")):
            first = i
        if CHECK_TAG in cell.get("metadata", {}).get("tags", []):
            if first is not None:
                out.append((first, i, check_id(src)))
            first = None
    return out


def substitute(text: str, answers: list[str], where: str) -> str:
    """Replace each solution block of ``text`` by the next answer of ``answers`` (consumed), indented as the block."""
    out, inside = [], False
    for line in text.split("\n"):
        m = BEGIN.match(line)
        if m:
            if not answers:
                raise RetryError(f"{where}: the wrong attempt has fewer parts than the task has solution blocks")
            inside = True
            indent = m.group(1)
            out += [indent + ln if ln.strip() else ln for ln in answers.pop(0).strip("\n").split("\n")]
            continue
        if END.match(line):
            inside = False
            continue
        if not inside:
            out.append(line)
    return "\n".join(out)


def _cell(src: str, tags: list[str], base: dict) -> dict:
    cell = copy.deepcopy(base)
    cell.pop("id", None)
    cell["source"] = src.replace("# NBVAL_CHECK_OUTPUT", "# (output not compared in a retry round)")
    cell["outputs"], cell["execution_count"] = [], None
    cell["metadata"] = {"tags": tags}
    return cell


def build(lesson: str, root: Path = ROOT, attempts: dict | None = None) -> dict:
    """The retry notebook of a lesson (a notebook dict); RetryError when an attempt is missing or malformed."""
    path = solution_path(lesson, root)
    nb = clean_notebook(json.loads(path.read_text()))
    attempts = load_attempts(lesson, root) if attempts is None else attempts
    found = tasks(nb)
    missing = [cid for _, _, cid in found if cid not in attempts]
    if missing:
        raise RetryError(
            f"tests/attempts/lesson{lesson}.py has no wrong attempt for {', '.join(missing)}: every task needs one"
        )
    unknown = sorted(set(attempts) - {cid for _, _, cid in found})
    if unknown:
        raise RetryError(f"tests/attempts/lesson{lesson}.py names checks with no task here: {', '.join(unknown)}")
    starts = {first: (check, cid) for first, check, cid in found}
    cells, i = [], 0
    while i < len(nb["cells"]):
        if i not in starts:
            cells.append(nb["cells"][i])
            i += 1
            continue
        check, cid = starts[i]
        segment = nb["cells"][i : check + 1]
        wrong = attempts[cid]
        parts = [wrong] if isinstance(wrong, str) else list(wrong)
        n_blocks = sum(source_text(c).count("### BEGIN SOLUTION") for c in segment if c["cell_type"] == "code")
        if len(parts) != n_blocks:
            raise RetryError(f"{cid}: the task has {n_blocks} solution block(s), the wrong attempt {len(parts)}")
        cells.append(_md(f"**retry {cid}: blank** (what a learner runs first)"))
        for c in segment:
            if c["cell_type"] != "code":
                continue
            src = source_text(c)
            if CHECK_TAG in c.get("metadata", {}).get("tags", []):
                cells.append(_cell(src, [ROUND_TAG, FAIL_TAG, RAISES_TAG], c))
            elif "### BEGIN SOLUTION" in src:
                text, _ = blank_solution(src, cid)
                cells.append(_cell(text, [ROUND_TAG, BLANK_TAG, RAISES_TAG], c))
            else:
                cells.append(_cell(src, [ROUND_TAG, BLANK_TAG, RAISES_TAG], c))
        cells.append(_md(f"**retry {cid}: a wrong answer** (from tests/attempts/lesson{lesson}.py)"))
        for c in segment:
            if c["cell_type"] != "code":
                continue
            src = source_text(c)
            if CHECK_TAG in c.get("metadata", {}).get("tags", []):
                cells.append(_cell(src, [ROUND_TAG, FAIL_TAG, RAISES_TAG], c))
            elif "### BEGIN SOLUTION" in src:
                cells.append(_cell(substitute(src, parts, cid), [ROUND_TAG, WRONG_TAG, RAISES_TAG], c))
            else:
                cells.append(_cell(src, [ROUND_TAG, WRONG_TAG, RAISES_TAG], c))
        cells.append(_md(f"**retry {cid}: the right answer** (the solution; its check must pass)"))
        cells += segment
        i = check + 1
    for n, cell in enumerate(cells):
        cell = cells[n] = copy.deepcopy(cell)
        cell["id"] = f"retry-{n}"
    nb["cells"] = cells
    nb["nbformat"], nb["nbformat_minor"] = 4, max(5, nb.get("nbformat_minor", 5))
    nb.setdefault("metadata", {})["cloudlab_retry_of"] = str(path.relative_to(root))
    return nb


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def write(lesson: str, out_dir: Path, root: Path = ROOT) -> Path:
    """Write the retry notebook of ``lesson`` into ``out_dir`` (named ``NN_slug.retry.ipynb``)."""
    nb = build(lesson, root)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{solution_path(lesson, root).stem}.retry.ipynb"
    target.write_text(dumps(nb))
    return target


def default_dir() -> Path:
    state = os.environ.get("CLOUDLAB_STATE_DIR")
    return (Path(state) if state else ROOT / ".lab" / "test-run") / "retry"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cloudlab.authoring.retry", description=__doc__.split("\n")[0])
    ap.add_argument("lessons", nargs="+", help="lesson ids, e.g. 09")
    ap.add_argument("--build", action="store_true", help="only write the notebooks, do not run them")
    ap.add_argument("--out", type=Path, default=None, help="folder for the notebooks")
    args, extra = ap.parse_known_args(argv)
    out = args.out or default_dir()
    try:
        paths = [write(lesson, out) for lesson in args.lessons]
    except RetryError as e:
        print(f"retry: {e}", file=sys.stderr)
        return 2
    for p in paths:
        print(f"wrote {p}")
    if args.build:
        return 0
    from .testrun import PYTEST

    cmd = [sys.executable, *PYTEST, *map(str, paths), *extra]
    if not os.environ.get("AWS_ENDPOINT_URL"):  # not inside a lab: run in a test lab of its own
        cmd = [sys.executable, "-m", "cloudlab.lab", "--profile", "test", "run", "--", *cmd]
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
