"""What JupyterHub runs (as root) to start one learner's server: namespaces, a cgroup, then the learner.

``python -m cloudlab.hub.launch`` (the spawner's command, root, on the host):

1. binds the host's ``127.0.0.1:<port JupyterHub chose>`` and ``~/.lab/run/hub/hub-api.sock`` (both relays
   of :mod:`cloudlab.hub.relay`), makes the learner's memory cgroup (:mod:`cloudlab.hub.cgroups`);
2. starts, in that cgroup, ``unshare --mount --net --pid --fork --mount-proc --propagation private
   --kill-child=TERM python -m cloudlab.hub.launch --inner``: PID 1 of new namespaces, still root;
3. drops to the learner's uid and relays bytes until the server ends; SIGINT or SIGTERM (the hub stopping
   the server) ask the learner's PID 1 to stop their lab and JupyterLab first.

``--inner`` (root, PID 1 inside): a private /tmp (the course's own folders under it kept) and /dev/shm, root's
home replaced by a read-only copy of only what the course runs (interpreters installed under /root by pyenv or
uv), the loopback up, then
``setpriv --reuid --regid --init-groups --no-new-privs --bounding-set=-all`` into
:mod:`cloudlab.hub.supervisor` as the learner. Standard library only. Serves the workshop hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from ..lab import ROOT, Lab, venvs
from . import cgroups, relay, settings

PR_SET_PDEATHSIG = 1
STOP_GRACE = 20.0  # seconds the learner's PID 1 gets to stop JupyterLab and their lab


def pdeathsig(sig: int = signal.SIGTERM) -> None:
    """Receive ``sig`` when the parent ends (so nothing of a learner's lab outlives its server)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def run_dir(home: Path) -> Path:
    return home / ".lab" / "run" / "hub"


def learner_dir(path: Path, pw) -> None:
    """Create ``path`` (under the learner's home) owned by them, 0700, refusing links they may have planted."""
    home = Path(pw.pw_dir)
    parts = path.relative_to(home).parts
    here = home
    for part in parts:
        here = here / part
        if here.is_symlink():
            raise SystemExit(f"cloudlab.hub.launch: {here} is a symbolic link; refusing to start")
        if not here.exists():
            here.mkdir(mode=0o700)
            os.chown(here, pw.pw_uid, pw.pw_gid)


def needed_paths(lab: Lab) -> list[Path]:
    """Folders the learner's processes must read: the course, its environments and their interpreters."""
    found = {ROOT, lab.venvs, venvs.venv_python(lab, "kernel").parent.parent}
    for py in [venvs.venv_python(lab, "kernel"), *lab.venvs.glob("*/bin/python")]:
        real = Path(os.path.realpath(py))
        if real.exists():
            found.add(real.parent.parent)  # <prefix>/bin/pythonX.Y -> <prefix>
    return sorted(found)


def hidden_home_mounts(needed: list[Path], home: Path = Path("/root")) -> list[list[str]]:
    """The mount commands that replace ``home`` by a tmpfs holding only ``needed`` paths below it (read-only)."""
    inside = [p for p in needed if p == home or home in p.parents]
    if not inside:
        return []
    stage = Path("/tmp/.cloudlab-stage")
    cmds = []
    for i, p in enumerate(inside):
        cmds += [["mkdir", "-p", f"{stage}/{i}"], ["mount", "--bind", str(p), f"{stage}/{i}"]]
    cmds.append(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1m,nosuid,nodev", "tmpfs", str(home)])
    for i, p in enumerate(inside):
        cmds += [
            ["mkdir", "-p", str(p)],
            ["mount", "--bind", f"{stage}/{i}", str(p)],
            ["mount", "-o", "remount,bind,ro", str(p)],
            ["umount", f"{stage}/{i}"],
        ]
    return cmds + [["rm", "-rf", str(stage)]]


def private_tmp_mounts(keep: list[Path], stage: Path, tmp: Path = Path("/tmp")) -> list[list[str]]:
    """The mount commands for a private, empty ``tmp`` that still shows the host's ``keep`` paths below it, as they
    are (a course cloned under /tmp, and the homes of a room under it): a new tmpfs is prepared at ``stage`` (a
    folder of this learner's own), each kept path is bound into it, then it is moved onto ``tmp``. A plain tmpfs
    on /tmp would hide the course itself, and no learner's server would start."""
    inside = sorted({p for p in keep if tmp in p.parents})
    top = [p for p in inside if not any(q in p.parents for q in inside)]  # a parent's bind shows its children
    cmds = [
        ["mkdir", "-p", str(stage)],
        ["mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev,size=2g", "tmpfs", str(stage)],
    ]
    for p in top:
        where = stage / p.relative_to(tmp)
        cmds += [["mkdir", "-p", str(where)], ["mount", "--bind", str(p), str(where)]]
    return cmds + [["mount", "--move", str(stage), str(tmp)], ["rmdir", str(stage)]]


def learner_env(env: dict, pw) -> dict[str, str]:
    """The learner's environment: JupyterHub's variables and the course's, nothing else of root's."""
    home = Path(pw.pw_dir)
    out = {k: v for k, v in env.items() if k.startswith("JUPYTERHUB_") or k in ("MEM_LIMIT", "CPU_LIMIT", "LANG")}
    for k in ("CLOUDLAB_VENV_DIR", "CLOUDLAB_KERNEL_VENV"):
        if env.get(k):
            out[k] = env[k]
    kernel_bin = venvs.venv_python(Lab.from_env(environ={}), "kernel").parent
    out.update(
        HOME=str(home),
        USER=pw.pw_name,
        LOGNAME=pw.pw_name,
        SHELL="/bin/bash",
        PATH=f"{kernel_bin}:/usr/local/bin:/usr/bin:/bin",
        CLOUDLAB_HUB="1",
        CLOUDLAB_PROFILE="lab",
        CLOUDLAB_PORT_OFFSET="0",
        CLOUDLAB_STATE_DIR=str(home / ".lab"),
        CLOUDLAB_WORKSPACE=str(home / "workspace"),
        MAKEFILES=str(ROOT / "hub" / "learner.mk"),  # `make lab` from the workspace says the lab already runs
    )
    return out


# ------------------------------------------------------------------ outer: the host side
def _pid1(unshare_pid: int, timeout: float = 5.0) -> int | None:
    """The learner's PID 1 as the host sees it: the child of ``unshare``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kids = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
        except OSError:
            return None
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    return None


async def _relay_until_done(child: subprocess.Popen, pid1: int | None, servers: list) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = [await relay.serve(sock, opener) for sock, opener in servers]
    while child.poll() is None and not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    if child.poll() is None and pid1:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid1, signal.SIGTERM)  # the learner's PID 1 stops JupyterLab and the lab, then exits
        deadline = time.monotonic() + STOP_GRACE
        while child.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid1, signal.SIGKILL)  # PID 1 gone: the kernel ends every process in its namespace
    for s in running:
        s.close()
    try:
        return child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return 1


def outer() -> int:
    env = dict(os.environ)
    pw = pwd.getpwnam(env["CLOUDLAB_HUB_SYSUSER"])
    if pw.pw_uid == 0:
        raise SystemExit("cloudlab.hub.launch: a learner's server never runs as root")
    port = urlparse(env["JUPYTERHUB_SERVICE_URL"]).port
    api_port = urlparse(env["JUPYTERHUB_API_URL"]).port
    rd = run_dir(Path(pw.pw_dir))
    learner_dir(rd, pw)
    listener = relay.tcp_listener(port)
    api_listener = relay.unix_listener(rd / "hub-api.sock", pw.pw_uid, pw.pw_gid)
    limit = int(env.get("MEM_LIMIT") or settings.to_bytes(settings.MEM_LIMIT))  # JupyterHub: Spawner.mem_limit
    target, why = cgroups.create(pw.pw_name, limit)
    if why:
        print(f"[hub] {pw.pw_name}: {why}; the lab runs without a memory limit", flush=True)

    def pre():
        pdeathsig()
        with contextlib.suppress(OSError):
            cgroups.join(target)

    unshare = ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "--propagation", "private"]
    cmd = [*unshare, "--kill-child=TERM", sys.executable, "-m", "cloudlab.hub.launch", "--inner"]
    child = subprocess.Popen(cmd, env=env, preexec_fn=pre, cwd="/")
    pid1 = _pid1(child.pid)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)  # from here on: the learner, on the host's loopback, with two fixed relays
    servers = [
        (listener, relay.unix_opener(rd / "jupyter.sock", owner=pw.pw_uid)),
        (api_listener, relay.tcp_opener(api_port)),
    ]
    return asyncio.run(_relay_until_done(child, pid1, servers))


# ------------------------------------------------------------------ inner: PID 1 of the namespaces, root
def inner() -> None:
    env = dict(os.environ)
    pw = pwd.getpwnam(env["CLOUDLAB_HUB_SYSUSER"])
    needed = needed_paths(Lab.from_env(environ={k: v for k, v in env.items() if "VENV" in k}))
    stage = Path(tempfile.mkdtemp(prefix="cloudlab-tmp-", dir="/run"))  # this learner's own (getpid() is 1 for all)
    run = [
        *private_tmp_mounts([*needed, Path(pw.pw_dir)], stage=stage),
        ["mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev,size=512m", "tmpfs", "/dev/shm"],
        *hidden_home_mounts(needed),
        ["ip", "link", "set", "lo", "up"],
    ]
    state = env.get("CLOUDLAB_HUB_STATE")
    if state and Path(state).is_dir():  # the hub's database and cookie secret: not even their names
        run.append(["mount", "-t", "tmpfs", "-o", "ro,size=4k,mode=0700", "tmpfs", state])
    for cmd in run:
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"cloudlab.hub.launch: `{' '.join(cmd)}` failed: {out.stderr.strip()}")
    os.chdir(pw.pw_dir)
    kernel_py = str(venvs.venv_python(Lab.from_env(environ={}), "kernel"))
    drop = [f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--inh-caps=-all"]
    drop += ["--bounding-set=-all", "--no-new-privs", "--pdeathsig=TERM"]
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    os.execve(setpriv, [setpriv, *drop, "--", kernel_py, "-m", "cloudlab.hub.supervisor"], learner_env(env, pw))


if __name__ == "__main__":
    if sys.argv[1:] == ["--inner"]:
        inner()
    else:
        sys.exit(outer())
