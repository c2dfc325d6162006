"""Lesson 07's running service: the payments service (``app/payments.py``) started with its database
password injected at launch, and the places a secret can leak from a running process or an image."""

from __future__ import annotations

import json
import os
import stat
import tempfile
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
    """Where the lesson "mounts" secret files: ``.lab/work/l07/run-secrets``, a folder only this user can open.

    It is on disk, and a file in it stays after its service stopped, until ``reset_lesson("07")`` or ``make
    reset`` removes the folder (the lesson deletes its own file when it stops the service). A platform does
    better: a Kubernetes Secret volume is a tmpfs (memory) that goes away with the pod."""
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


def environment_of(pid: int) -> dict[str, str]:
    """The environment a running process was started with (``/proc/<pid>/environ``; {} when unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return {}
    out = {}
    for item in raw:
        k, sep, v = item.partition(b"=")
        if sep:
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def password_file_of(pid: int) -> str | None:
    """The DB_PASSWORD_FILE a running process was started with (from its environment), if any."""
    return environment_of(pid).get("DB_PASSWORD_FILE")


# ------------------------------------------------------------------ images
LEAKY_DOCKERFILE = """FROM scratch
ARG DB_PASSWORD
ENV DB_PASSWORD=${DB_PASSWORD}
"""
LEAKY_TAG = "l07-leaky:build-arg"


def image_with_build_arg(value: str, tag: str = LEAKY_TAG) -> list[str]:
    """Build an image the tempting way, ``docker build --build-arg DB_PASSWORD=<value>`` with a Dockerfile that
    turns the argument into an ENV, on the lessons' engine (:func:`cloudlab.containers.connect`, the one lessons 05
    and 08 use); then read it back as anyone who pulls it can. Returns what ``docker history`` and ``docker image
    inspect`` show that contains ``value``. The image is labelled ``cloudlab.lesson=07`` (the reset removes it)."""
    from .. import containers

    with tempfile.TemporaryDirectory(prefix="l07-image-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(LEAKY_DOCKERFILE)
        containers.docker(
            "build", "--network", "none", "--build-arg", f"DB_PASSWORD={value}", "--label",
            f"{containers.LABEL}=07", "-t", tag, ".", cwd=tmp, show=True, check=True,
        )  # fmt: skip
    seen = [f"docker history: {r.instruction}" for r in containers.history(tag) if value in r.created_by]
    env = containers.docker("image", "inspect", "--format", "{{json .Config.Env}}", tag, check=True).stdout
    seen += [f"docker image inspect (Config.Env): {e}" for e in json.loads(env or "[]") if value in e]
    return seen
