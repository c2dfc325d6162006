"""Lesson 07's git side: a small repository with a key leaked in its history, git as a learner runs it,
and the proofs the checks need (is the key anywhere in history? does the hook really block a commit?).

The leaked key is a real access key of the user ``l07-deploy-bot`` in the lesson's enforcing IAM
emulator (:mod:`cloudlab.iam`), made when the repository is made: finding it is not an exercise in
spotting a string, it is a credential that works until someone rotates it. Nothing real-looking is
in the course repository: keys are made at run time, under the lab's state folder.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shlex
import shutil
import string
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..lab import ROOT, Lab, tools

BOT = "l07-deploy-bot"
HOOK_CONFIG_FILE = ROOT / "lessons" / "07_secrets-and-least-privilege" / "pre-commit" / ".pre-commit-config.yaml"
BOT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::l07-deploy/*"}],
}


def fake_aws_key() -> tuple[str, str]:
    """An access key id and secret that look real to scanners, made now (never committed anywhere)."""
    rng = random.SystemRandom()
    kid = "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    return kid, secrets.token_urlsafe(30)[:40]


def git_env() -> dict[str, str]:
    """git as a learner runs it, with the lesson's scanners on PATH and no personal git config."""
    lab = Lab.from_env()
    home = lab.state / "git-home"
    home.mkdir(parents=True, exist_ok=True)
    path = os.environ.get("PATH", "/usr/bin:/bin")
    bin_dir = str(Path(tools.require("pre-commit", "07")).parent)
    return dict(
        os.environ,
        PATH=f"{bin_dir}:{path}",
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Lesson 07",
        GIT_AUTHOR_EMAIL="l07@example.com",
        GIT_COMMITTER_NAME="Lesson 07",
        GIT_COMMITTER_EMAIL="l07@example.com",
        PRE_COMMIT_HOME=str(lab.state / "pre-commit-home"),
        PYTHONWARNINGS="ignore",
    )


def run(repo, *cmd: str, quiet: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run ``cmd`` (git, pre-commit, detect-secrets, git-filter-repo ...) in ``repo``; ``quiet=False`` prints it."""
    args = [str(c) for c in cmd]
    try:
        proc = subprocess.run(args, cwd=str(repo), capture_output=True, text=True, env=git_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess(args, 124, "", f"{args[0]} did not finish within {timeout:.0f} s")
    except FileNotFoundError:
        proc = subprocess.CompletedProcess(args, 127, "", f"{args[0]}: command not found")
    if not quiet:
        print(f"$ {' '.join(shlex.quote(str(c)) for c in cmd)}")
        out = (proc.stdout + proc.stderr).rstrip()
        if out:
            print(out)
        if proc.returncode:
            print(f"(exit {proc.returncode})")
    return proc


def sh(repo, command: str, quiet: bool = False) -> subprocess.CompletedProcess:
    """A shell command line in ``repo`` (``sh(REPO, "git log --oneline")``), printed with its output."""
    return run(repo, *shlex.split(command), quiet=quiet)


def git(repo, *args: str) -> str:
    """``git args`` in ``repo``: its output, or RuntimeError with git's own message."""
    proc = run(repo, "git", *args)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()[:400]}")
    return proc.stdout


@dataclass
class Leak:
    """A repository with a leaked key: where it is, whose key, and the key id (the secret half is in the repo)."""

    repo: Path
    user: str
    key_id: str
    secret: str = field(default="", repr=False)

    def save(self) -> None:
        path = self.repo.parent / f"{self.repo.name}.leak.json"
        path.write_text(
            json.dumps({"repo": str(self.repo), "user": self.user, "key_id": self.key_id, "secret": self.secret})
        )
        os.chmod(path, 0o600)


def load_leak(repo) -> Leak | None:
    path = Path(repo).parent / f"{Path(repo).name}.leak.json"
    try:
        d = json.loads(path.read_text())
        return Leak(Path(d["repo"]), d["user"], d["key_id"], d.get("secret", ""))
    except (OSError, ValueError, KeyError):
        return None


APP = '''"""The orders app: every setting comes from the environment."""
import os

BUCKET = os.environ["ORDERS_BUCKET"]
'''
SAFE_SETTINGS = '''"""Deploy settings: credentials come from the environment (or a role), never from this file."""
import os

AWS_REGION = os.environ.get("AWS_REGION", "us-east-1")
DEPLOY_BUCKET = "l07-deploy"
'''


def make_leaky_repo(name: str, iam_emulator) -> Leak:
    """A fresh repository ``work/l07/<name>`` whose second commit adds ``deploy/settings.py`` with the
    deploy bot's real (emulated) access key, and whose third commit "removes" it again."""
    root = Lab.from_env().work_dir("07")
    repo = root / name
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    creds = iam_emulator.create_user(BOT, BOT_POLICY)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# orders\n\nThe orders app and its deploy script.\n")
    (repo / "app.py").write_text(APP)
    (repo / ".gitignore").write_text(".env\n*.pem\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Add the orders app")
    (repo / "deploy").mkdir()
    (repo / "deploy" / "settings.py").write_text(
        SAFE_SETTINGS.split("import os")[0]
        + f'AWS_ACCESS_KEY_ID = "{creds.key_id}"\nAWS_SECRET_ACCESS_KEY = "{creds.secret}"\n'
        + 'AWS_REGION = "us-east-1"\nDEPLOY_BUCKET = "l07-deploy"\n'
    )
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Add deploy settings (quick fix for the demo)")
    (repo / "deploy" / "settings.py").write_text(SAFE_SETTINGS)
    git(repo, "commit", "-q", "-am", "Remove credentials from the deploy settings")
    (repo / "deploy" / "deploy.sh").write_text("#!/bin/sh\nset -eu\naws s3 cp build.zip s3://l07-deploy/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Add the deploy script")
    leak = Leak(repo, BOT, creds.key_id, creds.secret)
    leak.save()
    return leak


# ------------------------------------------------------------------ what the checks ask
def state(repo) -> dict:
    """Is ``repo`` a git repository, on a branch, with a clean tree? ``{'ok', 'branch', 'problem'}``."""
    repo = Path(repo)
    if not (repo / ".git").exists():
        return {"ok": False, "branch": None, "problem": f"{repo} is not a git repository (no .git folder)"}
    branch = run(repo, "git", "symbolic-ref", "--short", "-q", "HEAD").stdout.strip()
    if not branch:
        return {
            "ok": False,
            "branch": None,
            "problem": "HEAD is detached (not on a branch): `git switch main` first, then re-run the check",
        }
    dirty = run(repo, "git", "status", "--porcelain").stdout.strip()
    if dirty:
        first = ", ".join(ln[3:] for ln in dirty.splitlines()[:4])
        return {
            "ok": False,
            "branch": branch,
            "problem": f"the working tree has uncommitted changes ({first}): commit them, or `git restore` them",
        }
    return {"ok": True, "branch": branch, "problem": ""}


def history_hits(repo, needle: str) -> list[str]:
    """Every commit reachable from ANY ref (branches, tags, stash, refs/original) or the reflog whose
    diff adds or removes ``needle`` (git's pickaxe, ``git log -S``): ``['<hash> <subject>']``."""
    out = run(repo, "git", "log", "--all", "--reflog", "--format=%h %s", f"-S{needle}")
    return [ln for ln in out.stdout.splitlines() if ln.strip()]


def refs(repo) -> list[str]:
    return run(repo, "git", "for-each-ref", "--format=%(refname)").stdout.split()


def tree_files(repo, ref: str = "HEAD") -> set[str]:
    return set(run(repo, "git", "ls-tree", "-r", "--name-only", ref).stdout.split())


def commit_count(repo) -> int:
    out = run(repo, "git", "rev-list", "--count", "HEAD").stdout.strip()
    return int(out) if out.isdigit() else 0


@dataclass
class CommitTry:
    """One attempted commit in a copy of a repository: did it land, and what did the hook say?"""

    path: str
    landed: bool
    output: str


def try_commits(repo, files: dict[str, str]) -> list[CommitTry]:
    """In a throw-away copy of ``repo`` (hooks included), commit each file on its own and report what landed.

    The learner's repository is never touched: the copy is deleted afterwards.
    """
    out = []
    with tempfile.TemporaryDirectory(prefix="l07-hook-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(repo, copy, symlinks=True)
        for rel, content in files.items():
            before = run(copy, "git", "rev-parse", "HEAD").stdout.strip()
            target = copy / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            run(copy, "git", "add", "--", rel)
            proc = run(copy, "git", "commit", "-m", f"add {rel}")
            after = run(copy, "git", "rev-parse", "HEAD").stdout.strip()
            landed = after != before and rel in tree_files(copy)
            out.append(CommitTry(rel, landed, (proc.stdout + proc.stderr)[-1500:]))
            if not landed:  # leave the copy clean for the next try
                run(copy, "git", "reset", "-q", "HEAD", "--", rel)
                target.unlink(missing_ok=True)
    return out
