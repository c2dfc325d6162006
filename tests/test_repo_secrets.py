"""The course repository's own secret scan: detect-secrets over every tracked file, against a committed baseline.

The baseline (.secrets.baseline) lists the audited false positives (the emulators' dummy `test` keys, words like
"secretName"), each marked ``is_secret: false``; anything else fails this test. The proof that the scanner really
looks plants a fake key, made at run time, in a scratch copy: the repository never holds a real-looking key.
Fix a failure by removing the secret (and rotating it, if it was real); for a false positive, add an inline
``# pragma: allowlist secret`` comment or re-audit the baseline (``detect-secrets scan --baseline .secrets.baseline``
then ``detect-secrets audit .secrets.baseline``).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cloudlab import scanners
from cloudlab.lab import ROOT
from cloudlab.lesson07.repo import fake_aws_key

BASELINE = ROOT / ".secrets.baseline"


def tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"the course repository must be a git checkout to scan its tracked files: {out.stderr.strip()}")
    return [f for f in out.stdout.split("\0") if f and f != ".secrets.baseline" and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def hook(tmp_path_factory):
    """One run of `detect-secrets-hook --baseline .secrets.baseline <every tracked file>`, the hook lesson 07
    installs, with the kernel's detect-secrets, on a copy of the baseline (a failing run changes nothing here)."""
    exe = Path(sys.executable).parent / "detect-secrets-hook"
    assert exe.exists(), f"the kernel's detect-secrets is missing: {exe}"
    copy = tmp_path_factory.mktemp("secrets") / "baseline.json"
    shutil.copy(BASELINE, copy)
    out = subprocess.run(
        [str(exe), "--baseline", str(copy), *tracked()], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    return out, copy


def test_no_tracked_file_holds_a_secret_outside_the_baseline(hook):
    out, _ = hook
    assert "Potential secrets about to be committed" not in out.stdout, (
        "secrets in tracked files (see this file's docstring for the fix):\n"
        + "\n".join(ln for ln in out.stdout.splitlines() if ln.startswith(("Secret Type", "Location")))
    )


def test_the_pre_commit_hook_lesson_07_teaches_passes_on_this_repository(hook):
    """No new secret, and a baseline whose line numbers are current: a stale one makes the hook rewrite it and fail
    the commit. Fix: run `.venv/bin/detect-secrets-hook --baseline .secrets.baseline $(git ls-files)` in the
    repository (it refreshes the line numbers), then commit .secrets.baseline."""
    out, copy = hook
    assert out.returncode == 0, f"detect-secrets-hook failed (exit {out.returncode}):\n{out.stdout[-2000:]}"
    assert copy.read_text() == BASELINE.read_text(), "the hook rewrote the baseline: its line numbers are stale"


def test_every_baseline_entry_is_an_audited_false_positive():
    results = json.loads(BASELINE.read_text())["results"]
    unaudited = [
        f"{f}:{r.get('line_number')}" for f, rows in results.items() for r in rows if r.get("is_secret") is not False
    ]
    assert not unaudited, f"baseline entries not audited as false positives: {unaudited}"


def test_the_scan_really_finds_a_planted_key(tmp_path):
    kid, secret = fake_aws_key()
    (tmp_path / "settings.py").write_text(
        (ROOT / "app" / "service.py").read_text()
        + f'\nAWS_ACCESS_KEY_ID = "{kid}"\nAWS_SECRET_ACCESS_KEY = "{secret}"\n'
    )
    report = scanners.detect_secrets(["settings.py"], cwd=tmp_path, baseline=BASELINE, quiet=True)
    assert {"AWS Access Key"} <= {x["type"] for x in report["new"]}, report
