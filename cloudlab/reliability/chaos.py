"""Chaos Toolkit, run for real: validate an experiment, run it, read its journal in plain words.

``chaos`` (chaostoolkit 1.19) lives in its own pinned environment (``tools.require("chaostoolkit")``).
Experiments call the lesson's fault and probe commands with ``python`` (the course's kernel, first on
the PATH we give ``chaos``), and their rollbacks always run (``--rollback-strategy always``): also when
the hypothesis fails or the run is interrupted. Serves lesson 09.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ..lab import Lab, tools
from ..tables import Table

LESSON = "09"


class ChaosError(RuntimeError):
    """The experiment could not run (not valid, chaos missing, took too long); the message says why."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mChaosError\x1b[0m: {self}"]


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}/usr/sbin{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _base(work: Path) -> list[str]:
    exe = tools.require("chaostoolkit", LESSON)
    settings = work / "chaos-settings.yaml"
    if not settings.exists():
        settings.write_text("{}\n")
    return [exe, "--no-version-check", "--log-file", str(work / "chaostoolkit.log"), "--settings", str(settings)]


def _shown(cmd: list[str]) -> str:
    return "chaos --no-version-check " + " ".join(shlex.quote(c) for c in cmd[6:])


def validate(path, quiet: bool = False) -> tuple[bool, str]:
    """``chaos validate``: (valid?, the reason in chaos's own words)."""
    work = Lab.from_env().work_dir(LESSON)
    path = Path(path)
    if not path.exists():
        return False, f"there is no experiment file {path}"
    try:
        json.loads(path.read_text()) if path.suffix == ".json" else None
    except ValueError as e:
        return False, f"{path.name} is not valid JSON: {e}"
    cmd = [*_base(work), "validate", str(path)]
    if not quiet:
        print("$ " + _shown(cmd))
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=str(work), timeout=60)
    text = out.stdout + out.stderr
    if out.returncode == 0:
        return True, "valid"
    errors = [ln.split("]", 1)[-1].strip() for ln in text.splitlines() if "ERROR" in ln or "- " in ln]
    return False, "; ".join(e for e in errors if e)[:600] or text.strip()[-600:]


def run(path, variables: dict | None = None, timeout: float = 90, quiet: bool = False) -> dict:
    """``chaos run`` the experiment; returns its journal (a dict). Raises ChaosError when it cannot run."""
    work = Lab.from_env().work_dir(LESSON)
    path = Path(path)
    if not path.exists():
        raise ChaosError(f"there is no experiment file {path}")
    journal = work / f"journal-{path.stem}.json"
    journal.unlink(missing_ok=True)
    cmd = [*_base(work), "run", "--journal-path", str(journal), "--rollback-strategy", "always"]
    for k, v in (variables or {}).items():
        cmd += ["--var", f"{k}={v}"]
    cmd.append(str(path))
    if not quiet:
        print("$ " + _shown(cmd))
    t0 = time.monotonic()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=str(work), timeout=timeout)
    except subprocess.TimeoutExpired:
        from . import faults

        faults.heal_all()
        raise ChaosError(
            f"the experiment ran longer than {timeout:.0f} s and was stopped; active faults were undone"
        ) from None
    if not journal.exists():
        ok, why = validate(path, quiet=True)
        if not ok:
            raise ChaosError(f"{path.name} is not a valid experiment: {why}")
        raise ChaosError(f"chaos wrote no journal (exit {out.returncode}):\n{(out.stdout + out.stderr)[-1200:]}")
    data = json.loads(journal.read_text())
    data["_seconds"] = round(time.monotonic() - t0, 1)
    data["_path"] = str(journal)
    if not quiet:
        for line in (out.stdout + out.stderr).splitlines():
            if "[INFO]" in line or "[WARNING]" in line or "[ERROR]" in line or "[CRITICAL]" in line:
                print("  " + line.split("] ", 1)[-1])
    return data


def _out(activity: dict) -> str:
    o = activity.get("output")
    if isinstance(o, dict):
        if "stdout" in o:
            text = (o.get("stdout") or o.get("stderr") or "").strip().splitlines()
            return f"exit {o.get('status')}: {text[-1][:90] if text else ''}"
        if "status" in o:
            return f"HTTP {o['status']}"
    return "" if o is None else str(o)[:90]


def summary(journal: dict) -> str:
    """The journal in plain words: the hypothesis before and after, what the method did, the rollbacks.

    A string (the table's text); a notebook shows it as a table when it is the cell's value."""
    ss = journal.get("steady_states") or {}
    title = (
        f"experiment: {journal.get('experiment', {}).get('title', '?')}   status: {journal.get('status')}   "
        f"deviated: {journal.get('deviated')}   ({journal.get('_seconds', '?')} s)"
    )
    rows = []
    for when in ("before", "after"):
        st = ss.get(when)
        if st is None:
            rows.append((f"steady state {when}", "", "(the hypothesis)", "not checked", ""))
            continue
        met = "met" if st.get("steady_state_met") else "NOT MET"
        rows.append((f"steady state {when}", "", "(the hypothesis)", met, ""))
        for p in st.get("probes", []):
            rows.append(("", "probe", p["activity"]["name"], "ok" if p.get("tolerance_met") else "BAD", _out(p)))
    for a in journal.get("run", []):
        rows.append(("method", a["activity"]["type"], a["activity"]["name"], a.get("status"), _out(a)))
    for a in journal.get("rollbacks", []):
        rows.append(("rollback", a["activity"]["type"], a["activity"]["name"], a.get("status"), _out(a)))
    notes = [] if journal.get("rollbacks") else ["rollbacks: none ran"]
    return Table(("part", "type", "activity", "result", "output"), rows, title=title, notes=notes).text()
