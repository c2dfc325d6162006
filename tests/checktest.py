"""The one way the tests prove a check refused a wrong answer: it raised ``CheckFailed`` with a ``[missing]``
line and a hint, and said what is wrong (``from checktest import rejected`` in any test module)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from cloudlab.checks import CheckFailed


def rejected(check, ns=None, *words: str, in_missing: bool = False, one_line: bool = False) -> str:
    """``check(ns)`` fails with a [missing] line and a hint, and its message names each of ``words``
    (``in_missing``: each in a [missing] line; ``one_line``: all of them in the same one). Returns the message."""
    with pytest.raises(CheckFailed) as e:
        check(ns if ns is not None else {})
    msg = str(e.value)
    missing = [ln for ln in msg.splitlines() if ln.strip().startswith("[missing]")]
    assert missing and re.search(r"Hint \d+/\d+", msg), f"no [missing] line or no hint:\n{msg}"
    if one_line:
        assert any(all(w in ln for w in words) for ln in missing), f"no [missing] line with {words}:\n{msg}"
    where = "\n".join(missing) if in_missing else msg
    for w in words:
        assert w in where, f"{w!r} not in:\n{msg}"
    _record(check, words)
    return msg


def _record(check, words) -> None:
    """With CLOUDLAB_REJECTED_LOG set (``make test`` sets it), append where this wrong answer was proved, its check
    and its words: the instructor notes are read from these tests, and ``make test`` compares the two
    (cloudlab/authoring/wronganswers.py)."""
    log = os.environ.get("CLOUDLAB_REJECTED_LOG")
    if not log:
        return
    frame = sys._getframe(1)
    while frame is not None and not frame.f_code.co_name.startswith("test_"):
        frame = frame.f_back
    if frame is None:
        return
    root = Path(__file__).resolve().parent.parent
    path = Path(frame.f_code.co_filename).resolve()
    rec = {
        "file": str(path.relative_to(root)) if path.is_relative_to(root) else str(path),
        "line": frame.f_lineno,
        "check": getattr(getattr(check, "spec", None), "id", ""),
        "words": [str(w) for w in words],
    }
    with open(log, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def rejected_in_missing(check, ns=None, *words: str) -> str:
    """:func:`rejected`, with each word in a [missing] line (the failure itself names the problem)."""
    return rejected(check, ns, *words, in_missing=True)


def rejected_in_one_missing_line(check, ns=None, *words: str) -> str:
    """:func:`rejected`, with all the words in one [missing] line."""
    return rejected(check, ns, *words, one_line=True)
