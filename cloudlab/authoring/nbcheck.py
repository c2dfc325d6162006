"""pytest plugin (``-p cloudlab.authoring.nbcheck``) that makes nbval prove the exercises can fail.

nbval's ``raises-exception`` tag only *allows* an error.  In ``exercises/`` we
*require* the right one: every check cell must fail with ``CheckFailed`` (the
friendly message); a blank TODO cell may raise only ``NotImplementedError`` (or
nothing, when the TODO is inside a function body).  Any other error (a NameError,
a crash inside the check) fails the test: that is a bug.

In every folder it also refuses output a learner should never see: float noise such as
``0.07200000000000006`` (format numbers for people) and raw epoch-millisecond timestamps in a cell's
result (show a time). It writes each notebook's wall time to ``$CLOUDLAB_STATE_DIR/notebook-times.json``, and each
other test's CPU seconds (its own and its finished child processes') to ``test-cpu.json`` beside it.
"""

from __future__ import annotations

import json
import os
import re
import resource
import time
from pathlib import Path

import pytest

from . import CHECK_TAG, TODO_TAG
from .retry import BLANK_TAG, FAIL_TAG, ROUND_TAG

_times: dict[str, float] = {}
_cpu: dict[str, float] = {}
_cells: dict[str, dict[int, dict]] = {}  # notebook -> code cell number -> {"s": seconds, "image": bool}
FLOAT_NOISE = re.compile(r"(?<![\w.])\d+\.\d{10,}(?!\d)")
EPOCH_MS = re.compile(r"(?<![\w.:/-])1[5-9]\d{11}(?![\w.])")


def stray_output(outputs: list[dict]) -> str | None:
    """The first piece of output nobody should read, or None."""
    for o in outputs or []:
        kind = o.get("output_type")
        if kind == "stream":
            text = o.get("text", "")
        elif kind in ("execute_result", "display_data"):
            text = (o.get("data") or {}).get("text/plain", "")
        else:
            continue
        text = "".join(text) if isinstance(text, list) else text
        found = FLOAT_NOISE.search(text) or (EPOCH_MS.search(text) if kind == "execute_result" else None)
        if found:
            start = max(0, found.start() - 60)
            return text[start : found.end() + 40]
    return None


def one_line_error(error: dict) -> bool:
    """An error shown the course's way (``_render_traceback_``: a line or two), not a raw Python traceback."""
    tb = error.get("traceback") or []
    return len(tb) <= 3 and not any("Traceback" in t or "Cell In[" in t or "File " in t for t in tb)


def retry_rules(cell: dict, outputs: list[dict]) -> None:
    """The rules of a retry notebook (:mod:`cloudlab.authoring.retry`), by the cell's tags."""
    tags = cell.get("metadata", {}).get("tags", [])
    if ROUND_TAG not in tags:
        return  # the solution's own cells: nbval already fails them on any error
    source = str(cell.get("source", ""))
    errors = [o for o in outputs if o.get("output_type") == "error"]
    got = errors[0]["ename"] if errors else None
    detail = f"raised {got}: {errors[0]['evalue'][:300]}" if errors else "did not raise at all"
    where = f"\n--- cell ---\n{source[:600]}"
    if FAIL_TAG in tags:
        if got != "CheckFailed":
            raise AssertionError(
                f"after a blank or wrong answer this check must fail with CheckFailed, but it {detail}.\n"
                "A check that passes a wrong answer (or one left by an earlier attempt) is a bug." + where
            )
        text = "\n".join(errors[0].get("traceback") or []) + errors[0].get("evalue", "")
        if "[missing]" not in text:
            raise AssertionError("this check failed without a [missing] line saying what is wrong" + where)
        return
    allowed = ("NotImplementedError",) if BLANK_TAG in tags else ()
    if errors and got not in allowed and not one_line_error(errors[0]):
        raise AssertionError(
            f"a learner's {'blank' if BLANK_TAG in tags else 'wrong'} answer made this cell end in a raw "
            f"traceback ({got}): the course's code after the answer must say in one line what the answer did and "
            f"point to the check below.\n{''.join(errors[0].get('traceback') or [])[-1500:]}" + where
        )


def _is_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell"


def _cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A test's CPU time, setup and teardown included (a notebook's cells run in its kernel: not counted here)."""
    c0 = _cpu_seconds()
    try:
        return (yield)
    finally:
        if not _is_cell(item):
            _cpu[item.nodeid] = _cpu_seconds() - c0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    t0 = time.monotonic()
    try:
        result = yield
    finally:
        if _is_cell(item):
            key = (
                str(Path(str(item.path)).relative_to(Path.cwd()))
                if Path(str(item.path)).is_absolute()
                else str(item.path)
            )
            _times[key] = _times.get(key, 0.0) + time.monotonic() - t0
            outs = item.test_outputs or []
            image = any(k.startswith("image/") for o in outs for k in (o.get("data") or {}))
            seen = _cells.setdefault(key, {})  # the first run of a cell: a second pass runs warm
            seen.setdefault(item.cell_num, {"s": round(time.monotonic() - t0, 2), "image": image})
    if _is_cell(item):
        outputs = item.test_outputs or []
        lines = [ln for ln in str(item.cell.get("source", "")).splitlines() if ln.strip()]
        if lines and lines[-1].rstrip().endswith(";"):
            # JupyterLab hides the value of a cell ending in ";"; nbval runs cells with store_history=False,
            # which defeats IPython's check, so that value shows here only: not the learner's view
            outputs = [o for o in outputs if o.get("output_type") != "execute_result"]
        stray = stray_output(outputs)
        if stray:
            raise AssertionError(
                "this cell shows a number nobody should have to read (float noise such as 0.07200000000000006, or "
                f"a raw epoch-ms timestamp): round it, format it or show a time.\n...{stray}...\n"
                f"--- cell ---\n{item.cell.get('source', '')[:400]}"
            )
    if _is_cell(item) and str(item.path).endswith(".retry.ipynb"):
        retry_rules(item.cell, item.test_outputs or [])
    if _is_cell(item) and Path(str(item.path)).parent.name == "exercises":
        tags = item.cell.get("metadata", {}).get("tags", [])
        source = item.cell.get("source", "")
        errors = [o for o in (item.test_outputs or []) if o.get("output_type") == "error"]
        got = errors[0]["ename"] if errors else None
        detail = f"raised {got}: {errors[0]['evalue'][:300]}" if errors else "did not raise at all"
        if CHECK_TAG in tags and got != "CheckFailed":
            raise AssertionError(
                f"exercise check cell must fail with CheckFailed when its task is blank, but it {detail}.\n"
                f"A check that passes (or crashes) on a blank exercise is a bug.\n--- cell ---\n{source[:600]}"
            )
        if TODO_TAG in tags and got not in (None, "NotImplementedError"):
            # A blank task may raise NotImplementedError (top-level code) or nothing (a function body).
            raise AssertionError(
                f"blank task cell must raise nothing or NotImplementedError, but it {detail}.\n"
                f"--- cell ---\n{source[:600]}"
            )
    return result


def pytest_sessionfinish(session):
    state = os.environ.get("CLOUDLAB_STATE_DIR")
    if not state:
        return
    cells = {k: {str(n): c for n, c in sorted(v.items())} for k, v in sorted(_cells.items())}
    for name, data in (("notebook-times.json", _times), ("test-cpu.json", _cpu), ("cell-times.json", cells)):
        if not data:
            continue
        try:
            text = json.dumps(data if name == "cell-times.json" else {k: round(v, 1) for k, v in sorted(data.items())})
            (Path(state) / name).write_text(text)
        except OSError:
            pass
