"""Real scanners and linters, run offline, their findings in plain words.

Serves lesson 02 (checkov on Terraform) and the lessons that scan Dockerfiles, manifests and
secrets (05, 06, 07, 08). Each runner prints the real command it ran, so a learner can repeat it,
and never reports an empty result from a tool that could not look as "clean".
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path

from .lab import Lab, tools


class ScanError(RuntimeError):
    """A scanner did not produce a report; the message says why and what to do."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mScanError\x1b[0m: {self}"]


def checkov(path, framework: str = "terraform", quiet: bool = False, timeout: float = 120.0, lesson: str = "") -> dict:
    """Scan ``path`` with checkov (offline, no platform download).

    Returns ``{'failed': [(id, resource, name)], 'passed': n, 'skipped': [(id, resource, reason)],
    'resources': n, 'seconds': s, 'command': str}``. The report is also saved as
    ``<path>/.checkov.json`` (exercise checks read it). Installs checkov the first time (its own
    environment: its pins clash with the course's).
    """
    exe = tools.require("checkov", lesson)
    path = Path(path)
    # checkov's kubernetes runner skips every file under a hidden folder (the lab's state is in .lab/):
    # scan such a folder from inside it, as `-d .`, so nothing is silently left out.
    hidden = framework in ("kubernetes", "helm") and any(
        part.startswith(".") and part not in (".", "..") for part in path.resolve().parts
    )
    cmd = [
        exe,
        "-d",
        "." if hidden else str(path),
        "--framework",
        framework,
        "--skip-download",
        "--compact",
        "-o",
        "json",
        "--download-external-modules",
        "false",
    ]
    home = Lab.from_env().state / "checkov-home"  # checkov caches files in $HOME: keep them out of the scanned dir
    home.mkdir(parents=True, exist_ok=True)
    shown = "checkov " + " ".join(shlex.quote(c) for c in cmd[1:])
    if hidden:
        shown = f"cd {shlex.quote(str(path))} && {shown}"
    if not quiet:
        print(f"$ {shown}")
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(path) if hidden else None,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "BC_SKIP_MAPPING": "TRUE",
            "LOG_LEVEL": "ERROR",
            "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        },
    )
    try:
        data = json.loads(proc.stdout or "{}")
    except ValueError:
        raise ScanError(
            f"checkov did not produce a JSON report (exit {proc.returncode}):\n{proc.stderr[-800:]}"
        ) from None
    if isinstance(data, list):  # several frameworks: one report each
        data = next((d for d in data if d.get("check_type") == framework), data[0] if data else {})
    res = data.get("results", {}) if isinstance(data, dict) else {}
    summary = data.get("summary", {}) if isinstance(data, dict) else {}
    out = {
        "failed": [(c["check_id"], c["resource"], c["check_name"]) for c in res.get("failed_checks", [])],
        "passed": int(summary.get("passed", len(res.get("passed_checks", [])))),
        "skipped": [
            (c["check_id"], c["resource"], (c.get("check_result") or {}).get("suppress_comment", ""))
            for c in res.get("skipped_checks", [])
        ],
        "resources": int(summary.get("resource_count", 0)),
        "seconds": round(time.monotonic() - t0, 1),
        "command": shown,
    }
    out["empty"] = out["resources"] == 0 and not out["failed"] and not out["passed"]
    (path / ".checkov.json").write_text(json.dumps(dict(out, scanned_at=time.time()), indent=1))
    if not quiet:
        print(
            f"checkov: {out['passed']} passed, {len(out['failed'])} failed, {len(out['skipped'])} skipped "
            f"({out['resources']} resources, {out['seconds']} s)"
        )
        for cid, res_, name in out["failed"]:
            print(f"  FAIL {cid:<12} {res_:<40} {name}")
        for cid, res_, why in out["skipped"]:
            print(f"  skip {cid:<12} {res_:<40} reason: {why}")
        if out["empty"]:
            print(f"  (nothing to scan in {path}: that is no clean bill of health, just no input)")
    return out
