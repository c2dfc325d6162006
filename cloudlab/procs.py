"""Background processes a lesson starts (the sample service, a load generator, a worker).

Each gets a PID file and a log under the lab's state directory, so a lesson
can be re-run, a crashed kernel leaves nothing orphaned (`make stop` and
``reset_lesson`` stop them), and stopping works even if SIGTERM is ignored.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .lab import Lab, _pid_alive


_POPENS: dict[str, subprocess.Popen] = {}  # processes this interpreter started, to read their exit codes


def _dir() -> Path:
    d = Lab.from_env().run_dir / "procs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it), on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_path(name: str) -> Path:
    p = Lab.from_env().state / "logs" / f"{name}.log"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


@dataclass
class Proc:
    name: str
    pid: int
    popen: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return log_path(self.name)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _pid_alive(self.pid)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def running(name: str) -> Proc | None:
    try:
        pid = int((_dir() / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    return Proc(name, pid) if _pid_alive(pid) else None


def wait_http(url: str, timeout: float = 10.0, proc: Proc | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except (OSError, urllib.error.URLError):
            if proc is not None and not proc.alive():
                return False
            time.sleep(0.05)
    return False


def start(name: str, args: list[str], env: dict | None = None, ready_url: str | None = None,
          timeout: float = 10.0, python: bool = True, cwd: str | None = None) -> Proc:
    """Start ``args`` (a Python script and its arguments when ``python``) in the background.

    Starting a name that already runs stops the old process first: running a cell twice is safe.
    """
    stop(name)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    cmd = ([sys.executable] if python else []) + [str(a) for a in args]
    fh = open(log_path(name), "wb")
    popen = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=full_env, cwd=cwd, start_new_session=True)
    fh.close()
    (_dir() / f"{name}.pid").write_text(str(popen.pid))
    _POPENS[name] = popen
    proc = Proc(name, popen.pid, popen)
    if ready_url and not wait_http(ready_url, timeout, proc):
        out = proc.output()[-1500:]
        stop(name)
        raise RuntimeError(f"{name} did not answer on {ready_url} within {timeout:.0f} s. Its output:\n{out}")
    return proc


def stop(name: str, grace: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
    """Send ``sig`` (SIGTERM), wait up to ``grace`` s, then SIGKILL. Returns the exit code if known."""
    pidfile = _dir() / f"{name}.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return None
    code = None
    popen = _POPENS.pop(name, None)
    if popen is not None and popen.pid != pid:
        popen = None
    reap = (lambda _pid: popen.poll()) if popen is not None else _reap
    if _pid_alive(pid):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _pid_alive(pid):
            code = reap(pid)
            time.sleep(0.05)
        if _pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.1)
    if code is None:
        code = reap(pid)
    if code is None and popen is not None:
        try:
            code = popen.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    pidfile.unlink(missing_ok=True)
    return code


def _reap(pid: int) -> int | None:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def stop_all(prefix: str = "") -> list[str]:
    stopped = []
    for f in sorted(_dir().glob(f"{prefix}*.pid")):
        stop(f.stem)
        stopped.append(f.stem)
    return stopped
