"""Lesson 07's running service: the payments service (``app/payments.py``) started with its database
password injected at launch, and the places a secret can leak from a running process."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import net, procs
from ..lab import ROOT, Lab


@dataclass
class Service:
    name: str
    url: str
    pid: int

    @property
    def log(self) -> str:
        return procs.log_path(self.name).read_text(errors="replace") if procs.log_path(self.name).exists() else ""


def secrets_dir() -> Path:
    """Where the lesson "mounts" secret files: a folder only this user can open (on Kubernetes: a tmpfs
    volume the kubelet fills from the Secret, mode 0400)."""
    d = Lab.from_env().work_dir("07") / "run-secrets"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def write_secret_file(path, value: str) -> Path:
    """Write ``value`` to ``path`` readable by the owner only (created 0600, never world-readable, not even briefly)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    os.replace(tmp, path)  # atomic: a reader sees the old or the new password, never half of one
    return path


def start_payments(name: str, env: dict[str, str]) -> Service:
    """Start ``python -m app.payments`` as ``name`` (a background process) with ``env`` added to its environment
    (the DB_* variables; PORT is chosen here) and wait until it answers ``/health``."""
    port = net.free_port()
    full = {k: str(v) for k, v in env.items()}
    full["PORT"] = str(port)
    p = procs.start(name, ["-m", "app.payments"], env=full, ready_url=f"http://127.0.0.1:{port}/health", cwd=str(ROOT))
    return Service(name, f"http://127.0.0.1:{port}", p.pid)


def health(url: str) -> dict:
    try:
        r = net.request("GET", f"{url}/health", timeout=5)
    except (OSError, ValueError) as e:  # ValueError: not a URL at all
        return {"status": "down", "error": str(e)}
    return dict(r.json({}) or {}, http=r.status)


def process_exposure(pid: int, value: str) -> list[str]:
    """Where a running process shows ``value`` to anyone who may inspect it: its command line, its environment.

    (``ps aux`` shows command lines to every user; ``/proc/<pid>/environ``, ``docker inspect`` and crash
    reports show environments.) Linux only; elsewhere the answer is ["cannot inspect ..."].
    """
    found = []
    base = Path(f"/proc/{pid}")
    if not base.exists():
        return [f"cannot inspect process {pid} (no /proc here, or it has exited)"]
    for part, label in (
        ("cmdline", "its command line (ps aux shows it to every user)"),
        ("environ", "its environment"),
    ):
        try:
            if value.encode() in (base / part).read_bytes():
                found.append(label)
        except OSError:
            pass
    return found


def file_mode(path) -> int | None:
    try:
        return stat.S_IMODE(Path(path).stat().st_mode)
    except OSError:
        return None


def password_file_of(pid: int) -> str | None:
    """The DB_PASSWORD_FILE a running process was started with (from its environment), if any."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"DB_PASSWORD_FILE="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return None


# ------------------------------------------------------------------ images (lesson 05)
def docker_answers() -> tuple[bool, str]:
    exe = shutil.which("docker")
    if exe is None:
        return False, "no docker client on this machine"
    try:
        out = subprocess.run(
            [exe, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"`docker info` did not answer ({e})"
    if out.returncode != 0:
        return False, f"no Docker engine answers (`docker info`: {(out.stderr or out.stdout).strip()[:120]})"
    return True, f"Docker engine {out.stdout.strip()}"


def lesson05_images() -> list[str]:
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True)
    return [i for i in out.stdout.split() if i.startswith(("l05-", "local/l05"))]


def image_history_mentions(image: str, value: str) -> list[str]:
    """Layers of ``image`` whose creating command (``docker history --no-trunc``) contains ``value``."""
    out = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image], capture_output=True, text=True
    )
    return [ln[:120] for ln in out.stdout.splitlines() if value in ln]
