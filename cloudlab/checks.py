"""Exercise checks: read real state, answer in plain words, record progress.

A check is a function decorated with :func:`check`.  It receives a
:class:`Report` and the notebook's namespace, reads the REAL state (a bucket,
a queue, a running process, a file) and states expectations::

    @check("01.3", "Orders are stored in S3", hints=["Use put_object", "Key: orders/<id>.json"])
    def orders_in_s3(r, ns):
        save_order = r.need(ns, "save_order", callable)
        key = r.call(save_order, s3, BUCKET, order)
        r.expect(key == f"orders/{order['id']}.json", "the key is orders/<id>.json", f"the key is {key!r}")

All expectations are evaluated, so the learner sees everything that is right
and everything that is missing at once.  A failed check raises
:class:`CheckFailed`, which Jupyter shows as a short message, not a traceback.
"""

from __future__ import annotations

import functools
import html
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REGISTRY: dict[str, CheckSpec] = {}


class ScriptedClock:
    """The clock a check hands the learner's code (``clock=``): epoch seconds (now, or ``start``) that only move
    when the check moves them (``clock.now += 46``), so leases and timeouts are tested without waiting."""

    def __init__(self, start: float | None = None):
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now


class CheckFailed(AssertionError):
    """A check found something wrong or missing. The message says what, and how to fix it."""

    def __init__(self, message: str, check_id: str = ""):
        super().__init__(message)
        self.check_id = check_id

    def _render_traceback_(self):  # IPython: the message, without a stack trace
        return [f"\x1b[31mCheckFailed\x1b[0m {self.check_id}: {self}"]


class _Stop(Exception):
    """Internal: a required expectation failed, stop evaluating."""


class Report:
    """What one run of a check found: the expectations that hold (``right``) and those that do not (``wrong``).

    A check function receives it as ``r`` and states every expectation through it (:meth:`expect`,
    :meth:`require`, :meth:`fail`), gets the learner's names through :meth:`need` and calls the
    learner's code through :meth:`call`, so a wrong answer becomes a line of plain words, never a
    traceback. The check passes when ``wrong`` is empty and something was looked at.
    """

    def __init__(self, spec: CheckSpec):
        self.spec = spec
        self.right: list[str] = []
        self.wrong: list[str] = []

    def expect(self, ok, right: str, wrong: str) -> bool:
        """Record one expectation; carry on either way."""
        (self.right if ok else self.wrong).append(right if ok else wrong)
        return bool(ok)

    def require(self, ok, right: str, wrong: str) -> None:
        """Like :meth:`expect`, but stop here when it fails (later expectations would make no sense)."""
        if not self.expect(ok, right, wrong):
            raise _Stop()

    def fail(self, wrong: str):
        self.wrong.append(wrong)
        raise _Stop()

    def need(self, ns: dict, name: str, kind=None, what: str = ""):
        """The learner's ``name`` from the notebook, of the right kind, or a clear failure."""
        if name not in ns:
            self.fail(f"`{name}` is not defined yet: complete the TODO cell above and run it (Shift+Enter).")
        value = ns[name]
        if kind is callable:
            if not callable(value):
                self.fail(f"`{name}` should be a function, but it is a {type(value).__name__}.")
        elif kind is not None and not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(f"`{name}` should be a {what or names}, but it is a {type(value).__name__}: {value!r:.80}")
        return value

    def call(self, fn, *args, **kwargs):
        """Call the learner's function; if it raises, say so instead of crashing the check."""
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            self.fail(
                f"`{getattr(fn, '__name__', fn)}` still raises NotImplementedError: replace the TODO with your code."
            )
        except _Stop:
            raise
        except SystemExit as e:  # sys.exit() in a function would end the check (and look like a crash)
            self.fail(
                f"`{getattr(fn, '__name__', fn)}` called sys.exit({e.code!r}): a function should raise an "
                "exception (or return); exiting is for the end of a program."
            )
        except Exception as e:
            shown = ", ".join([shown_arg(a) for a in args] + [f"{k}={shown_arg(v, k)}" for k, v in kwargs.items()])
            self.fail(f"`{getattr(fn, '__name__', fn)}({shown})` raised {type(e).__name__}: {e}")


SECRET_NAMES = ("password", "passwd", "secret", "token", "key", "credential")


def shown_arg(value, name: str = "") -> str:
    """An argument as a failure message shows it: short, and never a secret a check handed to learner code
    (a keyword named like one, or a string that looks like a password: long, no spaces, letters and digits)."""
    if isinstance(value, str):
        looks_secret = (
            len(value) >= 12
            and not any(c in value for c in " /:.")
            and any(c.isdigit() for c in value)
            and any(c.isalpha() for c in value)
        )
        if looks_secret or any(word in name.lower() for word in SECRET_NAMES):
            return f"<hidden: {len(value)} characters>"
    return f"{value!r:.60}"


class CheckSpec:
    """A registered check: its id (``"NN.k"``), title, function and graduated hints (2-3, vague to specific)."""

    def __init__(self, check_id: str, title: str, fn, hints: list[str]):
        self.id, self.title, self.fn, self.hints = check_id, title, fn, list(hints)

    @property
    def lesson(self) -> str:
        return self.id.split(".")[0]


def check(check_id: str, title: str, hints=()):
    """Register a check. Call it from a notebook with no arguments: it finds the notebook's namespace."""

    def deco(fn):
        spec = CheckSpec(check_id, title, fn, hints)
        REGISTRY[check_id] = spec

        @functools.wraps(fn)
        def run(ns: dict | None = None):
            if ns is None:
                ns = sys._getframe(1).f_globals
            return _run(spec, ns)

        run.spec = spec
        return run

    return deco


def _emulator_message(e: Exception) -> str | None:
    from .kernel import _connection_errors, emulator_message, restart_message

    errors = _connection_errors() + (__import__("botocore.exceptions").exceptions.ReadTimeoutError,)
    if isinstance(e, errors):
        return "this check cannot read the real state: " + emulator_message(e)
    gone = restart_message(e)
    if gone:
        return "this check cannot find what the notebook set up: " + gone
    return None


def _run(spec: CheckSpec, ns: dict):
    r = Report(spec)
    t0 = time.monotonic()
    status = "fail"
    try:
        try:
            spec.fn(r, ns)
        except _Stop:
            pass
        except CheckFailed:
            raise
        except Exception as e:
            msg = _emulator_message(e)
            if msg is None:
                from .aws import RealAWSRefused

                if isinstance(e, RealAWSRefused):
                    msg = str(e)
                else:
                    raise
            r.wrong.append(msg)
        if not r.wrong and not r.right:
            r.wrong.append("the check found nothing to look at (this is a bug in the check; please report it).")
        status = "pass" if not r.wrong else "fail"
    finally:
        seconds = time.monotonic() - t0
        record(spec, status, seconds)
    if status == "pass":
        lines = [f"PASS {spec.id} {spec.title}"] + [f"  [ok] {x}" for x in r.right]
        show(Passed(lines))
        return None  # nothing to echo under the PASS lines in a notebook
    seen = min(max(hints_seen(spec.id), 1), len(spec.hints))  # the latest hint revealed (a failure reveals 1)
    lines = [f"{spec.title}: not yet."]
    lines += [f"  [ok]      {x}" for x in r.right]
    lines += [f"  [missing] {x}" for x in r.wrong]
    if spec.hints:
        lines.append(f"  Hint {seen}/{len(spec.hints)}: {spec.hints[seen - 1]}")
        if seen < len(spec.hints):
            lines.append(f"  Stuck? cloudlab.checks.hint({spec.id!r}) shows the next hint.")
    raise CheckFailed("\n".join(lines), spec.id)


class Passed:
    """A passed check: a green box in a notebook (like the red box of a failure), plain lines elsewhere."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    def __repr__(self):
        return "\n".join(self.lines)

    def _repr_html_(self):
        return (
            '<div style="background:#dafbe1;border-left:6px solid #1a7f37;padding:6px 10px;'
            'white-space:pre-wrap;font-family:monospace;color:#0f3d1c">' + html.escape(repr(self)) + "</div>"
        )


def show(obj) -> None:
    """Display ``obj`` as rich output in IPython (HTML where it can), print it anywhere else."""
    try:
        from IPython import get_ipython

        if get_ipython() is not None:
            from IPython.display import display

            display(obj)
            return
    except ImportError:  # pragma: no cover
        pass
    print(repr(obj))


# ------------------------------------------------------------------ progress
def progress_path() -> Path:
    p = os.environ.get("CLOUDLAB_PROGRESS_FILE")
    if p:
        return Path(p)
    from .lab import Lab

    return Lab.from_env().state / "progress.json"


def load_progress() -> dict:
    path = progress_path()
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(data: dict) -> None:
    path = progress_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".progress-")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def record(spec: CheckSpec, status: str, seconds: float) -> None:
    try:
        data = load_progress()
        row = data.setdefault(spec.id, {"title": spec.title, "attempts": 0, "hints_seen": 0})
        row["title"] = spec.title
        row["attempts"] = row.get("attempts", 0) + 1
        row["last_status"] = status
        row["last_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
        row["last_seconds"] = round(seconds, 3)
        if status == "pass" and not row.get("passed_at"):
            row["passed_at"] = row["last_at"]
        if status == "fail" and spec.hints:  # a failure shows hint 1: `hint()` goes on from there
            row["hints_seen"] = max(int(row.get("hints_seen", 0)), 1)
        _save(data)
    except OSError:
        pass  # progress is a convenience: never fail a check because the file is not writable


def hints_seen(check_id: str) -> int:
    return int(load_progress().get(check_id, {}).get("hints_seen", 0))


def hint(check_id: str) -> None:
    """Print the hints of a check revealed so far, plus the next one (they get more specific each time).

    A failed check has already shown hint 1, so the first call after a failure reveals hint 2.

    Prints and returns nothing, so a notebook shows the hints once.
    """
    if check_id not in REGISTRY:
        raise KeyError(f"no check {check_id!r}; known: {', '.join(sorted(REGISTRY)) or 'none loaded yet'}")
    spec = REGISTRY[check_id]
    if not spec.hints:
        print("This check has no hints.")
        return
    data = load_progress()
    row = data.setdefault(check_id, {"title": spec.title, "attempts": 0, "hints_seen": 0})
    row["hints_seen"] = min(row.get("hints_seen", 0) + 1, len(spec.hints))
    _save(data)
    n = row["hints_seen"]
    text = "\n".join(f"Hint {i + 1}/{len(spec.hints)}: {h}" for i, h in enumerate(spec.hints[:n]))
    print(text)


class ProgressTable:
    """The progress file as a table: HTML in a notebook, text in a terminal (`make status`)."""

    def __init__(self, data: dict, lesson: str | None = None):
        self.rows = sorted((k, v) for k, v in data.items() if lesson is None or k.split(".")[0] == lesson)

    def _cells(self):
        for k, v in self.rows:
            state = "passed" if v.get("passed_at") else ("tried" if v.get("attempts") else "-")
            yield k, v.get("title", ""), state, str(v.get("attempts", 0)), v.get("passed_at") or ""

    def __repr__(self):
        if not self.rows:
            return "No checks run yet. Each exercise's check cell records its result here."
        head = ("check", "exercise", "state", "tries", "passed at")
        rows = [head] + list(self._cells())
        w = [max(len(r[i]) for r in rows) for i in range(5)]
        out = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
        done = sum(1 for k, v in self.rows if v.get("passed_at"))
        return "\n".join(out + [f"{done}/{len(self.rows)} passed"])

    def _repr_html_(self):
        if not self.rows:
            return f"<p>{html.escape(repr(self))}</p>"
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self._cells())
        return (
            "<table><tr><th>check</th><th>exercise</th><th>state</th><th>tries</th><th>passed at</th></tr>"
            f"{body}</table>"
        )


def progress(lesson: str | None = None) -> ProgressTable:
    """Your progress, as a table (in a notebook) or text (in a terminal)."""
    return ProgressTable(load_progress(), lesson)


if __name__ == "__main__":
    print(progress(sys.argv[1] if len(sys.argv) > 1 else None))
