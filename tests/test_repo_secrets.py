"""The course repository's own secret scan: detect-secrets over every tracked file, against a committed baseline.

The baseline (.secrets.baseline) lists the audited false positives (the emulators' dummy `test` keys, words like
"secretName"), each marked ``is_secret: false``; anything else fails this test. The proof that the scanner really
looks plants a fake key, made at run time, in a scratch copy: the repository never holds a real-looking key.
Fix a failure by removing the secret (and rotating it, if it was real); for a false positive, add an inline
``# pragma: allowlist secret`` comment or re-audit the baseline (``detect-secrets scan --baseline .secrets.baseline``
then ``detect-secrets audit .secrets.baseline``).
"""

import json
import subprocess

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


def test_no_tracked_file_holds_a_secret_outside_the_baseline():
    report = scanners.detect_secrets(tracked(), cwd=ROOT, baseline=BASELINE, quiet=True)
    assert not report["new"], "secrets in tracked files (see this file's docstring for the fix):\n" + "\n".join(
        f"  {x['file']}:{x['line']}  {x['type']}" for x in report["new"]
    )


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
