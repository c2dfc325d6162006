"""The task cell's own code around a learner's answer: an answer that fails says so in one line.

A task cell often runs the learner's function once more (``print(recommend_for(...))``) or reads what the answer
made (``describe_alarms(...)[0]``). A plausible wrong answer must not end that cell in a raw boto3 traceback
before the learner reaches the check that explains it: :func:`call` and :func:`after` turn any error into one
line that says what the answer did, where in the learner's code, and points to the check below.

Errors that already speak the course's way (an exception with ``_render_traceback_``, such as
``TerraformError`` or ``StackError``), the blank exercise's ``NotImplementedError`` and an emulator that does
not answer (the kernel's own message, :mod:`cloudlab.kernel`) pass through unchanged.

Serves the task cells of lessons 03 and 04 (any lesson may use it).
"""

from __future__ import annotations

import traceback
from contextlib import contextmanager

POINTER = "run the check below: it says what it expects"


class AnswerFailed(RuntimeError):
    """A learner's answer failed while the task cell ran it; the message says what, and where."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mAnswerFailed\x1b[0m: {self}"]


def describe(exc: BaseException) -> str:
    """``ClientError (NoSuchBucket): The specified bucket does not exist`` for boto3; ``Type: message`` else."""
    err = getattr(exc, "response", None)
    code = err.get("Error", {}).get("Code") if isinstance(err, dict) else None
    text = " ".join(str(exc).split())
    if code:
        text = text.split(": ", 1)[-1] if "operation" in text else text
        op = getattr(exc, "operation_name", None)
        return f"{type(exc).__name__} ({code}{' in ' + op if op else ''}): {text[:300]}"
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def learner_line(exc: BaseException) -> str:
    """`` (your line 7: `s3.put_object(...)`)`` for the deepest frame of notebook code, or ``""``."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename.startswith("<ipython-input-") or "/ipykernel_" in f.filename or f.filename.startswith("<cell")
    ]
    if not frames:
        return ""
    f = frames[-1]
    code = (f.line or "").strip()
    return f" (your line {f.lineno}" + (f": `{code[:100]}`)" if code else ")")


def _passes_through(exc: BaseException) -> bool:
    if isinstance(exc, (NotImplementedError, AnswerFailed)) or hasattr(exc, "_render_traceback_"):
        return True
    from .kernel import _connection_errors

    return isinstance(exc, _connection_errors())


def call(what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, the learner's function as the task cell calls it; on an error, AnswerFailed with
    one line: ``what`` raised ..., where, and a pointer to the check."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        if _passes_through(e):
            raise
        raise AnswerFailed(f"{what} raised {describe(e)}{learner_line(e)}; {POINTER}") from None


@contextmanager
def after(what: str):
    """Course code that reads what the answer made: an error there means the answer did not make it.

    ``with answers.after("reading the composite alarm l04-ex-burn-page"): ...``"""
    try:
        yield
    except Exception as e:
        if _passes_through(e):
            raise
        raise AnswerFailed(f"{what} failed: {describe(e)}; {POINTER}") from None
