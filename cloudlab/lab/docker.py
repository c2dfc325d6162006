"""A Docker engine for the lessons that build and run containers (05 and later). Standard library only.

* A learner's own engine (Docker Desktop, Docker Engine) is used as it is: ``DOCKER_HOST`` if set,
  else the standard socket.
* Where none answers and the lab can start one (root on Linux, ``dockerd`` installed: CI here), the
  lab starts a private ``dockerd`` on a unix socket under its state folder (no TCP port at all),
  with the flags that work without a network bridge or iptables, and `make stop` stops it.
* No registry is reachable here, so a slim Debian base with Python is built once with debootstrap
  (``base_image``) and cached under ``.lab/cache``; learners pull ``python:3.11-slim`` instead.

Lessons ask :func:`ensure` for the engine's environment (``{"DOCKER_HOST": ...}``) and pass it to
the docker CLI or SDK. Serves lessons 05, 07, 08 and 09.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from . import ROOT, Lab, LabError, process, runtime, say, tools

DEFAULT_SOCKET = "/var/run/docker.sock"
BASE_TAG = "local/debian-python:bookworm"  # what CI builds; learners use python:3.11-slim
BASE_INCLUDE = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
SHUTDOWN_TIMEOUT = 3  # seconds dockerd gives a container to stop on shutdown before it kills it
TMP_ROOT = runtime.TMP
DOCKERD_FLAGS = (
    f"--shutdown-timeout={SHUTDOWN_TIMEOUT}",
    "--bridge=none",
    "--iptables=false",
    "--ip6tables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--userland-proxy=false",
)


class EngineMissing(tools.ToolMissing):
    """No Docker engine answers and the lab cannot start one; the message says how to get one."""

    def _render_traceback_(self):
        return [f"\x1b[31mEngineMissing\x1b[0m: {self}"]


def _ping(sock_path: str, timeout: float = 2.0) -> bool:
    """GET /_ping over the engine's unix socket: True when the engine answers OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = s.recv(256)
        return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]
    except OSError:
        return False


def _socket_of(host: str) -> str | None:
    return host[len("unix://") :] if host.startswith("unix://") else None


def lab_dir(lab: Lab) -> Path:
    return lab.state / "docker"


def lab_socket(lab: Lab) -> str:
    return str(lab_dir(lab) / "docker.sock")


def _exec_root(lab: Lab) -> str:
    """The engine's exec root: containerd's socket paths must stay short (108 bytes), so a private folder
    named after the lab under /tmp (:func:`runtime.private_dir`), not under the state folder."""
    return str(runtime.private_dir(lab, "docker"))


def answering_host(lab: Lab | None = None) -> str | None:
    """The DOCKER_HOST of an engine that answers now (the learner's first, then the lab's), or None."""
    lab = lab or Lab.from_env()
    env_host = os.environ.get("DOCKER_HOST", "")
    candidates = []
    if env_host.startswith("unix://"):
        candidates.append(env_host)
    elif env_host:  # tcp:// or ssh://: trust the learner's setting, ask the CLI
        return env_host if _cli_answers(env_host) else None
    candidates += [f"unix://{DEFAULT_SOCKET}", f"unix://{lab_socket(lab)}"]
    for host in dict.fromkeys(candidates):
        if _ping(_socket_of(host)):
            return host
    return None


def _cli_answers(host: str) -> bool:
    exe = shutil.which("docker")
    if not exe:
        return False
    try:
        out = subprocess.run(
            [exe, "-H", host, "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def _root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def can_start() -> bool:
    return _root() and shutil.which("dockerd") is not None


def engine_missing(lab: Lab) -> str:
    """Why the lessons have no Docker engine here ("" when they have one): an engine that answers, or a
    ``dockerd`` the lab can start. A docker CLI alone is not enough (this machine image ships one without
    an engine). Nothing is started."""
    if shutil.which("dockerd") is not None or answering_host(lab):
        return ""
    return "the docker CLI is here, but no Docker engine answers and there is no dockerd for the lab to start"


def _install_engine(lab: Lab) -> None:
    """As root with apt and no dockerd: install Debian's docker.io now (the first lesson that needs an engine)."""
    if not _root() or shutil.which("dockerd") is not None or not tools.can_apt():
        return
    try:
        tools.install("docker", lab, why="(lessons 05 and 08 need a Docker engine; once)")
    except LabError as e:  # ToolMissing is one
        raise EngineMissing(f"installing Debian's docker.io (the Docker engine) failed: {e}") from None


def start(lab: Lab, timeout: float = 30.0) -> str:
    """Start the lab's own dockerd (idempotent; as root, installing docker.io first if needed); its DOCKER_HOST."""
    host = f"unix://{lab_socket(lab)}"
    if _ping(lab_socket(lab)):
        return host
    _install_engine(lab)
    if not can_start():
        raise EngineMissing(
            "no Docker engine answers, and the lab can start one only as root on Linux with dockerd installed.\n"
            "  Fix: start Docker Desktop (macOS/Windows) or `sudo systemctl start docker` (Linux), or install it:\n"
            "       https://docs.docker.com/get-docker/  (Debian/Ubuntu: `sudo apt-get install docker.io`)"
        )
    stop(lab)  # an engine of this lab that does not answer, and what it left behind
    d = lab_dir(lab)
    (d / "data").mkdir(parents=True, exist_ok=True)
    Path(lab_socket(lab)).unlink(missing_ok=True)
    cmd = [
        "dockerd",
        "--data-root",
        str(d / "data"),
        "--exec-root",
        _exec_root(lab),
        "-H",
        host,
        "--pidfile",
        str(d / "dockerd.pid"),
        *DOCKERD_FLAGS,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    t0 = time.monotonic()
    proc = process.spawn(
        cmd, lab.logfile("docker"), env=env, cwd=d, pidfile=lab.pidfile("docker"), banner="starting dockerd"
    )
    while time.monotonic() - t0 < timeout:
        if _ping(lab_socket(lab)):
            return host
        if proc.poll() is not None:
            raise LabError(
                f"dockerd exited during start-up. Last lines of {lab.logfile('docker')}:\n"
                f"{process.tail(lab.logfile('docker'))}"
            )
        time.sleep(0.1)
    raise LabError(f"dockerd did not answer within {timeout:.0f} s; see {lab.logfile('docker')}")


def stop(lab: Lab) -> str:
    """Stop the lab's own dockerd (never a learner's engine): it stops its containers (SIGKILL after
    ``--shutdown-timeout``) and unmounts their filesystems and namespaces; whatever of its containerd and
    shims outlives it is stopped too, and its mounts and exec root go with ``runtime.clean``."""
    state = process.stop_pidfile(lab.pidfile("docker"), grace=SHUTDOWN_TIMEOUT + 15.0)
    roots = (TMP_ROOT / runtime.name(lab, "docker"), TMP_ROOT / f"cl-docker-{runtime.tag(lab)}")  # now, before
    for pid in _processes_mentioning(*(f"{r}/" for r in roots)):  # containerd and shims dockerd left running
        process.stop_pid(pid, grace=2.0, group=False)
        state = "stopped"
    Path(lab_socket(lab)).unlink(missing_ok=True)
    return state


def _processes_mentioning(*texts: str) -> list[int]:
    """PIDs whose command line contains one of ``texts`` (the lab's exec root: only this lab's engine has it)."""
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (d / "cmdline").read_bytes()
            if any(t.encode() in cmdline for t in texts) and int(d.name) != os.getpid():
                out.append(int(d.name))
        except (OSError, ValueError):
            continue
    return out


def ensure(lab: Lab | None = None, quiet: bool = False) -> dict[str, str]:
    """The environment that points the docker CLI/SDK at an engine that answers: the learner's
    own, else the lab's private one (started now if the lab can). Raises :class:`EngineMissing`."""
    lab = lab or Lab.from_env()
    host = answering_host(lab)
    started = False
    if host is None:
        host = start(lab)
        started = True
    if not quiet:
        whose = (
            "the lab's own dockerd (started now)"
            if started
            else ("the lab's own dockerd" if host.endswith(lab_socket(lab)) else "your Docker engine")
        )
        say(f"Docker engine: {whose} at {host}")
    return {"DOCKER_HOST": host}


# ------------------------------------------------------------------ the base image
def cache_dir() -> Path:
    return Path(os.environ.get("CLOUDLAB_CACHE_DIR") or ROOT / ".lab" / "cache")


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources), else deb.debian.org."""
    for f in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]:
        try:
            text = f.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
            if line.startswith("deb ") and "security" not in line:
                parts = [p for p in line.split() if not p.startswith("[")]
                if len(parts) > 1:
                    return parts[1]
    return "http://deb.debian.org/debian"


def _docker(env: dict, *args: str, **kw) -> subprocess.CompletedProcess:
    exe = shutil.which("docker")
    if exe is None:
        raise EngineMissing("the docker CLI is not installed: https://docs.docker.com/get-docker/")
    return subprocess.run([exe, *args], env={**os.environ, **env}, capture_output=True, text=True, **kw)


def has_image(env: dict, tag: str) -> bool:
    return _docker(env, "image", "inspect", tag).returncode == 0


def base_tarball(suite: str = "bookworm", include=BASE_INCLUDE) -> Path:
    """A minimal Debian root filesystem with Python, built once with debootstrap and cached."""
    key = hashlib.sha256(f"{suite} {' '.join(include)}".encode()).hexdigest()[:10]
    tar = cache_dir() / f"debian-{suite}-{key}.tar"
    if tar.exists():
        return tar
    exe = tools.require("debootstrap", "05")  # installed now as root with apt; else ToolMissing with the fix
    cache_dir().mkdir(parents=True, exist_ok=True)
    # Two shards of `make test` (or two notebooks) may need it at the same moment: one builds, the other waits.
    with open(cache_dir() / f".debian-{suite}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tar.exists():
            return tar
        return _build_base_tarball(suite, include, key, tar, exe)


def _build_base_tarball(suite: str, include, key: str, tar: Path, exe: str = "debootstrap") -> Path:
    root = cache_dir() / f"rootfs-{key}"
    shutil.rmtree(root, ignore_errors=True)
    say(f"building the local base image once: debootstrap --variant=minbase {suite} (about 30 s) ...")
    cmd = [exe, "--variant=minbase", f"--include={','.join(include)}", suite, str(root), debian_mirror()]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed:\n{(out.stdout + out.stderr)[-1500:]}")
    # Leave out what an image does not need: package lists, docs, man pages, locales.
    for sub in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale", "var/cache/apt"):
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir(parents=True, exist_ok=True)
    tmp = tar.with_suffix(".part")
    subprocess.run(["tar", "-C", str(root), "-cf", str(tmp), "."], check=True)
    os.replace(tmp, tar)
    shutil.rmtree(root, ignore_errors=True)
    return tar


def base_image(env: dict, tag: str = BASE_TAG) -> str:
    """The local base image in the engine ``env`` points at (imported from the cached tarball once)."""
    if has_image(env, tag):
        return tag
    tar = base_tarball()
    with open(tar, "rb") as fh:
        out = subprocess.run(
            [shutil.which("docker") or "docker", "import", "--change", 'CMD ["python3"]', "-", tag],
            stdin=fh,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
    if out.returncode != 0:
        raise LabError(f"`docker import` of {tar} failed: {out.stderr.strip()[-800:]}")
    return tag
