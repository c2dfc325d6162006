"""gitlab-ci-local: run a real ``.gitlab-ci.yml`` on this machine (shell executor, no Docker) in a
project folder made by :func:`prepare_project`, and report what each job did. Part of
:mod:`cloudlab.pipelines` (lesson 08)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..lab import ROOT, Lab, tools
from ..tables import Table, show

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")  # variables whose values a printed command hides
_NOISE = (  # gitlab-ci-local's remarks about a repository without a remote: true, and not the learner's problem
    "Unable to retrieve default remote branch",
    "Command failed with exit code",
    "fatal: ref refs/remotes/origin/HEAD",
    "error: No such remote",
    "Using fallback git remote data",
)


class PipelineError(RuntimeError):
    """The pipeline file cannot run (YAML error, unknown job in `needs`, unknown stage ...)."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mPipelineError\x1b[0m: {self}"]


# ===================================================================== gitlab-ci-local
@dataclass
class Job:
    """What one job did in one pipeline run."""

    name: str
    status: str = "not run"  # passed | failed | allowed to fail | not run
    seconds: float = 0.0
    start: float | None = None  # seconds after the pipeline started
    end: float | None = None
    log: str = ""

    @property
    def ran(self) -> bool:
        return self.status != "not run"


@dataclass
class PipelineRun:
    """One run of a pipeline: the jobs in the order they started, and how it ended."""

    project: Path
    returncode: int
    seconds: float
    command: str
    output: str
    jobs: dict[str, Job] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def ran(self, name: str) -> bool:
        return name in self.jobs and self.jobs[name].ran

    def status(self, name: str) -> str:
        return self.jobs[name].status if name in self.jobs else "not run"

    def logs(self) -> str:
        """Every job's log, one after the other (what a leak scan reads)."""
        return "\n".join(f"--- {j.name}\n{j.log}" for j in self.jobs.values() if j.log)

    def as_table(self) -> Table:
        rows = []
        for j in self.jobs.values():
            start = f"{j.start:.2f}" if j.start is not None else "-"
            rows.append((j.name, j.status, start, f"{j.seconds:.2f}"))
        verdict = "passed" if self.ok else "FAILED"
        return Table(
            ("job", "status", "start", "seconds"),
            rows,
            notes=[f"pipeline {verdict} in {self.seconds:.1f} s"],
            right=("start", "seconds"),
        )

    def table(self) -> str:
        return self.as_table().text()

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self.as_table()._repr_html_()


def gitlab_ci_local(lesson: str = "08") -> str:
    """The gitlab-ci-local executable (installed into the lab's npm folder on first use)."""
    tools.require("rsync", lesson)  # gitlab-ci-local copies artifacts and caches with rsync
    return tools.require("gitlab-ci-local", lesson)


def _git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "cloudlab",
        "GIT_AUTHOR_EMAIL": "lab@example.invalid",
        "GIT_COMMITTER_NAME": "cloudlab",
        "GIT_COMMITTER_EMAIL": "lab@example.invalid",
    }
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise PipelineError(f"`git {' '.join(args)}` failed in {cwd}: {out.stderr.strip()[-500:]}")


def prepare_project(template: Path, dest: Path, files: dict[str, str] | None = None, app: bool = True) -> Path:
    """A fresh project folder: ``template`` copied to ``dest`` (the course's ``app/`` package too),
    ``files`` ({relative path: text}) written over it, and one git commit (gitlab-ci-local reads the
    commit, as GitLab would). Anything at ``dest`` before is replaced."""
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(template, dest, ignore=shutil.ignore_patterns(".gitlab-ci-local", "__pycache__", "*.pyc"))
    if app:  # the sample service itself, as the course has it now
        (dest / "app").mkdir(exist_ok=True)
        for name in ("__init__.py", "service.py"):
            shutil.copy2(ROOT / "app" / name, dest / "app" / name)
    for rel, text in (files or {}).items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (dest / ".gitignore").write_text(".gitlab-ci-local/\n__pycache__/\n.pytest_cache/\n.ruff_cache/\n")
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "the commit this pipeline builds")
    return dest


def commit(project: Path, message: str) -> str:
    """Commit every change in the project (a new commit for the next pipeline run); returns its SHA."""
    _git(Path(project), "add", "-A")
    _git(Path(project), "commit", "-q", "-m", message)
    return commit_sha(project)


def branch(project: Path, name: str) -> str:
    """Switch the project to branch ``name`` (created if new), as a developer's feature branch; returns ``name``."""
    exists = subprocess.run(["git", "rev-parse", "--verify", "-q", name], cwd=project, capture_output=True)
    _git(Path(project), "checkout", "-q", *([] if exists.returncode == 0 else ["-b"]), name)
    return name


def commit_sha(project: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True)
    return out.stdout.strip()


def _shown(cmd: list[str]) -> str:
    parts = []
    for c in cmd:
        if "=" in c and any(w in c.split("=", 1)[0].upper() for w in SECRET_WORDS):
            c = c.split("=", 1)[0] + "=[MASKED]"
        parts.append(shlex.quote(c))
    return " ".join(parts)


_VALIDATED: set[str] = set()  # sha256 of pipeline files this process has validated already
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _env(extra: dict | None) -> dict:
    env = dict(os.environ)
    for k in ("FORCE_COLOR", "CLICOLOR_FORCE"):  # Jupyter kernels often set these; we parse the output
        env.pop(k, None)
    # Debian's bash reads ~/.bashrc even when not interactive if it believes sshd started it: a job shell
    # would then put the machine's own Python (pyenv) first on PATH. Jobs name their interpreter ($PYTHON).
    for k in ("SSH_CLIENT", "SSH2_CLIENT", "SSH_CONNECTION"):
        env.pop(k, None)
    env["NO_COLOR"] = "1"
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")])
    env.pop("VIRTUAL_ENV", None)
    env.update(extra or {})
    return env


def _error_from(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith("    at ")]
    lines = [ln for ln in lines if not ln.strip().startswith(_NOISE)]
    return "\n".join(lines[-12:])


def run_pipeline(
    project: Path,
    jobs: tuple[str, ...] = (),
    manual: tuple[str, ...] = (),
    variables: dict | None = None,
    isolation: bool = True,
    timeout: float = 180.0,
    quiet: bool = False,
    echo: bool = False,
    env: dict | None = None,
    validate: bool | None = None,
) -> PipelineRun:
    """Run the project's ``.gitlab-ci.yml`` with gitlab-ci-local and report every job.

    ``jobs``: run only these (and what they need); ``manual``: manual jobs to run too (the gate is
    opened); ``variables``: CI/CD variables (values of names with TOKEN/SECRET/PASSWORD/KEY are
    shown as [MASKED] in the printed command); ``isolation``: each job in its own copy of the
    project (``--shell-isolation``), so only caches and artifacts carry files between jobs, as on
    a real runner. ``echo``: print the jobs' output as it arrives. ``validate``: check the file
    against GitLab's schema first (about a second); by default only the first time this process
    runs a given file. Raises :class:`PipelineError` when the file cannot run at all.
    """
    project = Path(project)
    exe = gitlab_ci_local()
    if not (project / ".gitlab-ci.yml").exists():
        raise PipelineError(f"there is no .gitlab-ci.yml in {project}")
    home = Lab.from_env().state / "gitlab-ci-local-home"  # never the learner's ~/.gitlab-ci-local
    home.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "--no-color", "--home", str(home)]
    cmd += ["--shell-isolation"] if isolation else []
    digest = hashlib.sha256((project / ".gitlab-ci.yml").read_bytes()).hexdigest()
    if validate is False or (validate is None and digest in _VALIDATED):
        cmd += ["--no-json-schema-validation"]
    for name in manual:
        cmd += ["--manual", name]
    for k, v in (variables or {}).items():
        cmd += ["--variable", f"{k}={v}"]
    cmd += list(jobs)
    shown = "gitlab-ci-local " + _shown(cmd[1:])
    if not quiet:
        print(f"$ cd {project.name} && {shown}")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(env), bufsize=1
    )
    seen: list[tuple[float, str]] = []

    def read():
        for line in proc.stdout:
            line = _ANSI.sub("", line)
            seen.append((time.monotonic() - t0, line.rstrip("\n")))
            if echo and not line.strip().startswith(_NOISE):
                print(line, end="")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
        reader.join(2)
        raise PipelineError(
            f"the pipeline did not finish within {timeout:.0f} s (a job waits for something?):\n"
            + _error_from("\n".join(x for _, x in seen))
        ) from None
    reader.join(5)
    run = PipelineRun(project, rc, time.monotonic() - t0, shown, "\n".join(x for _, x in seen))
    _parse(run, seen)
    if any(j.ran for j in run.jobs.values()):
        _VALIDATED.add(digest)
    if rc != 0 and not any(j.ran for j in run.jobs.values()):
        raise PipelineError(f"gitlab-ci-local could not run {project.name}/.gitlab-ci.yml:\n{_error_from(run.output)}")
    if not quiet:
        show(run.as_table())
    return run


_START = re.compile(r"^(\S+)\s+starting shell")
_END = re.compile(r"^(\S+)\s+finished in ([\d.]+) (ms|s|min)")
_SUMMARY = re.compile(r"^ (PASS|FAIL|WARN) +(\S+)\s*(.*)$")


def _parse(run: PipelineRun, seen: list[tuple[float, str]]) -> None:
    unit = {"ms": 0.001, "s": 1.0, "min": 60.0}
    for t, line in seen:
        m = _START.match(line)
        if m:
            run.jobs.setdefault(m.group(1), Job(m.group(1))).start = round(t, 3)
            continue
        m = _END.match(line)
        if m and m.group(1) in run.jobs:
            job = run.jobs[m.group(1)]
            job.end, job.seconds = round(t, 3), float(m.group(2)) * unit[m.group(3)]
    for _, line in seen:
        m = _SUMMARY.match(line)
        if m and m.group(2) in run.jobs:
            run.jobs[m.group(2)].status = {"PASS": "passed", "FAIL": "failed", "WARN": "allowed to fail"}[m.group(1)]
    out = run.project / ".gitlab-ci-local" / "output"
    for job in run.jobs.values():
        try:
            job.log = (out / f"{job.name}.log").read_text(errors="replace")
        except OSError:
            job.log = ""
        if job.start is not None and job.status == "not run":
            job.status = "failed"  # started, never reported: killed or crashed


def list_jobs(project: Path) -> list[dict]:
    """gitlab-ci-local --list-json: each job's name, stage, when (on_success, manual ...) and allow_failure."""
    exe = gitlab_ci_local()
    home = Lab.from_env().state / "gitlab-ci-local-home"
    home.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [exe, "--no-color", "--home", str(home), "--list-json"],
        cwd=project,
        capture_output=True,
        text=True,
        env=_env(None),
        timeout=60,
    )
    start = out.stdout.find("[")
    try:
        data = json.loads(out.stdout[start:]) if start >= 0 else None
    except ValueError:
        data = None
    if out.returncode != 0 or not isinstance(data, list):
        raise PipelineError(f"gitlab-ci-local could not read the pipeline:\n{_error_from(out.stdout + out.stderr)}")
    return data


def leaks(text: str, secret: str) -> list[str]:
    """The forms of ``secret`` found in ``text``: as is, base64, hex, reversed (masking catches only the first)."""
    if not secret:
        return []
    whole = secret.encode()[: len(secret.encode()) // 3 * 3] or secret.encode()  # base64 of "secret\n" starts alike
    forms = {
        "as is": secret,
        "base64": base64.b64encode(whole).decode().rstrip("="),
        "hex": secret.encode().hex(),
        "reversed": secret[::-1],
    }
    return [name for name, form in forms.items() if form and form in text]
