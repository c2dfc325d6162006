"""Background processes a lesson starts (the sample service, a load generator, a worker, haproxy ...).

Each gets a PID file and a log under the lab's state directory, so a lesson can be re-run, a crashed
kernel leaves nothing orphaned (`make stop` and ``cloudlab.reset_lesson`` stop them: name them
``lNN-...``), and stopping works even if SIGTERM is ignored. Serves every lesson that runs a process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import net
from .lab import Lab, process

_POPENS: dict[str, subprocess.Popen] = {}  # processes this interpreter started, to read their exit codes


def _dir() -> Path:
    d = Lab.from_env().procs_dir
    d.mkdir(parents=True, exist_ok=True)
    return d


def log_path(name: str) -> Path:
    p = Lab.from_env().logfile(name)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


@dataclass
class Proc:
    """A process a lesson started: its name, PID and log."""

    name: str
    pid: int
    popen: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return log_path(self.name)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return process.pid_alive(self.pid)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def running(name: str) -> Proc | None:
    pid = process.read_pidfile(_dir() / f"{name}.pid")
    return Proc(name, pid) if pid else None


def start(
    name: str,
    args: list,
    env: dict | None = None,
    ready_url: str | None = None,
    timeout: float = 10.0,
    python: bool = True,
    cwd: str | None = None,
    hold_sigterm: bool = False,
) -> Proc:
    """Start ``args`` (a Python script or ``-m module`` and its arguments when ``python``) in the background.

    Starting a name that already runs stops the old process first: running a cell twice is safe.
    ``ready_url``: wait until it answers HTTP, or raise with the process's output. ``hold_sigterm``: SIGTERM waits
    until the process unblocks it (see :func:`cloudlab.lab.process.spawn`).
    """
    import os

    stop(name)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    cmd = ([sys.executable] if python else []) + [str(a) for a in args]
    popen = process.spawn(
        cmd,
        log_path(name),
        env=full_env,
        cwd=cwd,
        pidfile=_dir() / f"{name}.pid",
        append=False,
        hold_sigterm=hold_sigterm,
    )
    _POPENS[name] = popen
    proc = Proc(name, popen.pid, popen)
    if ready_url and not (waited := wait_ready(proc, ready_url, timeout))[0]:
        out = proc.output()[-1500:]
        _stop_own(name, popen)  # not stop(name): meanwhile another process may have started under this name
        raise RuntimeError(
            f"{name} did not answer on {ready_url} within {waited[1]:.0f} s ({waited[2]}). Its output:\n{out}"
        )
    return proc


STILL_STARTING = 5  # how many more ``timeout`` windows a process gets while its CPU time still grows


def wait_ready(proc: Proc, url: str, timeout: float) -> tuple[bool, float, str]:
    """Wait until ``url`` answers: (answered?, seconds waited, what the process did meanwhile).

    A process that is still starting when ``timeout`` ends (its CPU time grew in that window: imports on a machine
    whose cores are busy elsewhere) gets another window, up to ``STILL_STARTING`` more; one that has exited, or used
    no CPU in the last window (hung, or waiting on something that will not come), has failed.
    """
    t0, cpu = time.monotonic(), process.cpu_seconds(proc.pid) or 0.0
    for _ in range(1 + STILL_STARTING):
        if net.wait_http(url, timeout, alive=proc.alive):
            return True, time.monotonic() - t0, "answered"
        now = process.cpu_seconds(proc.pid)
        if now is None or not proc.alive():
            return False, time.monotonic() - t0, "it exited"
        if now <= cpu:  # not one clock tick
            return False, time.monotonic() - t0, f"it used {now:.1f} s of CPU in all, none in the last {timeout:.0f} s"
        cpu = now
    return False, time.monotonic() - t0, f"still starting: {cpu:.1f} s of CPU so far"


def _stop_own(name: str, popen: subprocess.Popen) -> None:
    """Stop the process this call started, and forget its PID file only if the file still names it."""
    process.stop_pid(popen.pid, popen=popen)
    pidfile = _dir() / f"{name}.pid"
    if process.read_pidfile(pidfile) in (None, popen.pid):
        pidfile.unlink(missing_ok=True)
    if _POPENS.get(name) is popen:
        del _POPENS[name]


def stop(name: str, grace: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
    """Send ``sig`` (SIGTERM), wait up to ``grace`` s, then SIGKILL. Returns the exit code if known."""
    pidfile = _dir() / f"{name}.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return None
    popen = _POPENS.pop(name, None)
    if popen is not None and popen.pid != pid:
        popen = None
    code = process.stop_pid(pid, grace, sig, popen=popen)
    pidfile.unlink(missing_ok=True)
    return code


def stop_all(prefix: str = "", keep=()) -> list[str]:
    """Stop every process whose name starts with ``prefix``, except the names in ``keep``."""
    stopped = []
    for f in sorted(_dir().glob(f"{prefix}*.pid")):
        if f.stem in keep:
            continue
        stop(f.stem)
        stopped.append(f.stem)
    return stopped
