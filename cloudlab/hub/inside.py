"""Run a command as a learner, inside their server's namespaces (what their terminal in JupyterLab does).

For the instructor's debugging (``nsenter`` is the real command; :func:`command` prints it), the tests (is
learner A's view really A's alone?) and the benchmark (lesson notebooks in a learner's lab). Root only.
Standard library only. Serves the workshop hub.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path


def pid1(sysuser: str) -> int | None:
    """The host PID of the learner's PID 1 (:mod:`cloudlab.hub.supervisor`), or None when their server is down."""
    uid = pwd.getpwnam(sysuser).pw_uid
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if stat.parent.stat().st_uid != uid:
                continue
            argv = stat.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"cloudlab.hub.supervisor" in argv:
            return int(stat.parent.name)
    return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def memory_cgroup(pid: int) -> Path | None:
    """The memory cgroup folder ``pid`` is in (cgroup v1 or v2), or None."""
    from . import cgroups

    where = cgroups.own(Path(f"/proc/{pid}/cgroup"))
    return where[1] if where is not None and where[1].is_dir() else None


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def command(sysuser: str, argv: list[str], pid: int | None = None) -> tuple[list[str], dict[str, str]]:
    """(the command, its environment) that runs ``argv`` as ``sysuser`` in their mount, network and PID namespaces."""
    pid = pid or pid1(sysuser)
    if pid is None:
        raise RuntimeError(f"{sysuser} has no running server")
    pw = pwd.getpwnam(sysuser)
    from ..lab import process

    server = [p for p in process.descendants(pid) if b"singleuser" in _cmdline(p)]
    env = environ(server[0] if server else pid)  # what a terminal in their JupyterLab gets
    cmd = []
    group = memory_cgroup(pid)
    if group is not None:  # their memory cgroup too: a process of theirs counts against their limit
        cmd = ["sh", "-c", f'echo $$ > "{group}/cgroup.procs" && exec "$@"', "sh"]
    cmd += ["nsenter", "-t", str(pid), "--mount", "--net", "--pid", "--"]
    cmd += ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--no-new-privs", "--"]
    cmd += ["env", f"--chdir={pw.pw_dir}"]
    return cmd + list(argv), env


def run(sysuser: str, argv: list[str], timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    cmd, env = command(sysuser, argv)
    env.update(kw.pop("env", {}))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)


def python(sysuser: str, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run Python ``code`` with the course kernel's interpreter as the learner, inside their namespaces."""
    from ..lab import Lab, venvs

    return run(sysuser, [str(venvs.venv_python(Lab.from_env(environ=os.environ), "kernel")), "-c", code], timeout)
