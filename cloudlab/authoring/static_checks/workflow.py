"""Rules for the GitHub workflow (make test, permissions, pinned actions), pinned versions, JSON schemas."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .common import *  # noqa: F403

# ---------------------------------------------------------------------------- workflow
PINNED_REF = re.compile(r"^(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
MAKE_TEST = re.compile(r"(^|[;&|(]\s*|\s)make\s+test(\s|$)", re.M)


def _triggers(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {t: None for t in on}
    return on or {}


def steps(workflow: dict):
    for job_name, job in (workflow.get("jobs") or {}).items():
        for step in (job or {}).get("steps") or []:
            yield job_name, step


def workflow_problems(workflow: dict) -> list[str]:
    problems = []
    triggers = _triggers(workflow)
    for event in ("push", "pull_request"):
        if event not in triggers:
            problems.append(f"workflow: does not run on {event}")
    perms = workflow.get("permissions")
    if not isinstance(perms, dict) or perms.get("contents") != "read":
        problems.append("workflow: top-level permissions must be `contents: read`")
    elif any(v == "write" for v in perms.values()):
        problems.append("workflow: top-level permissions grant write access")
    conc = workflow.get("concurrency")
    if not isinstance(conc, dict) or conc.get("cancel-in-progress") is not True:
        problems.append("workflow: no concurrency group with cancel-in-progress: true")
    jobs = workflow.get("jobs") or {}
    if not jobs:
        problems.append("workflow: no jobs")
    for name, job in jobs.items():
        if "timeout-minutes" not in (job or {}):
            problems.append(f"job {name}: no timeout-minutes (a hung run would burn 6 hours)")
    runs_make_test = False
    for job_name, step in steps(workflow):
        uses = step.get("uses")
        if uses and not uses.startswith(("./", "docker://")):
            action, _, ref = uses.partition("@")
            if not PINNED_REF.match(ref):
                problems.append(f"job {job_name}: {uses!r} is not pinned to a version (vN or a commit)")
        if MAKE_TEST.search(str(step.get("run") or "")):
            runs_make_test = True
    if not runs_make_test:
        problems.append("workflow: no step runs `make test`, the course's test command")
    return problems


def workflow_python_versions(workflow: dict) -> set[str]:
    versions: set[str] = set()
    for _, step in steps(workflow):
        if str(step.get("uses", "")).startswith("actions/setup-python@"):
            raw = (step.get("with") or {}).get("python-version", "")
            versions |= {v.strip() for v in str(raw).split() if v.strip()}
    return versions


def workflow_python_problems(workflow: dict, venv_specs) -> list[str]:
    """Each of the lab's environments (name -> VenvSpec) finds one of the Python versions it accepts."""
    have = workflow_python_versions(workflow)
    return [
        f"workflow: the {name} environment needs Python {' or '.join(spec.pythons)}; setup-python installs "
        f"{', '.join(sorted(have)) or 'none'}"
        for name, spec in venv_specs.items()
        if not have & set(spec.pythons)
    ]


# ------------------------------------------------------------------ lesson 06 live on kind
SHA_REF = re.compile(r"^[0-9a-f]{40}$")
NODE_DIGEST = re.compile(r"^kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$")
LIVE_JOB = "kubernetes-live"


def kind_job_problems(workflow: dict, kind_config: str) -> list[str]:
    """The live Kubernetes job: actions pinned by commit, the node image by digest, a real cluster required."""
    job = (workflow.get("jobs") or {}).get(LIVE_JOB)
    if not isinstance(job, dict):
        return [f"workflow: no job {LIVE_JOB!r} runs lesson 06 on a kind cluster"]
    problems = []
    if "timeout-minutes" not in job:
        problems.append(f"job {LIVE_JOB}: no timeout-minutes")
    runs: list[str] = []
    required = False
    for step in job.get("steps") or []:
        uses = str(step.get("uses") or "")
        if uses and not SHA_REF.match(uses.partition("@")[2]):
            problems.append(f"job {LIVE_JOB}: {uses!r} is not pinned to a commit SHA")
        run = str(step.get("run") or "")
        runs.append(run)
        if "test-notebooks" in run and str((step.get("env") or {}).get("CLOUDLAB_REQUIRE_CLUSTER")) == "1":
            required = True
    cluster_at = next((i for i, r in enumerate(runs) if re.search(r"\bmake cluster\b", r)), None)
    test_at = next((i for i, r in enumerate(runs) if re.search(r"make test-notebooks L=06\b", r)), None)
    if cluster_at is None or test_at is None or cluster_at > test_at:
        problems.append(f"job {LIVE_JOB}: must run `make cluster`, then `make test-notebooks L=06`")
    if not required:
        problems.append(
            f"job {LIVE_JOB}: the notebook step must set CLOUDLAB_REQUIRE_CLUSTER=1 (else it passes offline)"
        )
    images = re.findall(r"^\s*image:\s*(\S+)", kind_config, re.M)
    if not images or not all(NODE_DIGEST.match(i) for i in images):
        problems.append(
            f"kind config: node image(s) {images or 'missing'} not pinned by digest (kindest/node:vX@sha256:...)"
        )
    return problems


# ------------------------------------------------------------------------- pins, schema
def pinned_version(lock_text: str, package: str) -> str | None:
    """``package==X`` in a requirements/lock file (names compared as pip does)."""
    norm = re.sub(r"[-_.]+", "-", package).lower()
    for line in lock_text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
        if m and re.sub(r"[-_.]+", "-", m.group(1)).lower() == norm:
            return m.group(3)
    return None


def schema_problems(path: Path, builtin_schema: str) -> list[str]:
    """Validate a file against one of check-jsonschema's vendored schemas (offline)."""
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", builtin_schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode == 0:
        return []
    text = (proc.stdout + proc.stderr).strip()
    return [f"{Path(path).name} does not match {builtin_schema}:\n{text}"]
