"""Background processes, standard library only: start one in its own process group, ask whether it
is alive, stop it (SIGTERM to the whole group, then SIGKILL after a grace period).

The one implementation of "stop a process" in the package: the emulators and JupyterLab
(:mod:`cloudlab.lab.emulators`), the processes lessons start (:mod:`cloudlab.procs`) and
Terraform runs (:mod:`cloudlab.terraform`) all stop through :func:`stop_pid`. Serves every lesson.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a running process (a zombie is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = stat_fields(pid)
    return fields is None or fields[0] != "Z"  # no /proc here: trust kill(0)


def stat_fields(pid: int | None) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first: field 3 of proc(5)); None where
    there is no such process, or no /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int | None) -> float | None:
    """The CPU time (user + system) a running process and its waited-for children have used; None where there is
    no such process (or no /proc)."""
    fields = stat_fields(pid) if pid else None
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK") if fields else None


def read_pidfile(path: Path) -> int | None:
    """The PID in ``path`` if that process still runs, else None."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def reap(pid: int) -> int | None:
    """The exit code of our child ``pid`` if it has ended (None if it runs, or is not our child)."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def stop_pid(
    pid: int, grace: float = 5.0, sig: int = signal.SIGTERM, popen: subprocess.Popen | None = None, group: bool = True
) -> int | None:
    """Send ``sig`` to the process group of ``pid``, wait up to ``grace`` s, then SIGKILL what is left.

    Returns the exit code when it can be known (the process is our child, or ``popen`` is given).
    Safe on a process that is already gone.
    """

    def kill(s):
        try:
            os.killpg(pid, s) if group else os.kill(pid, s)
        except ProcessLookupError:
            pass
        except PermissionError:  # not our group: the process itself
            try:
                os.kill(pid, s)
            except ProcessLookupError:
                pass

    def code_now():
        return popen.poll() if popen is not None else reap(pid)

    code = None
    if pid_alive(pid):
        kill(sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(pid):
            code = code_now()
            if code is not None:
                break
            time.sleep(0.05)
        if pid_alive(pid):
            kill(signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and pid_alive(pid):
                code = code_now() if code is None else code
                time.sleep(0.05)
    if code is None:
        code = code_now()
    if code is None and popen is not None:
        try:
            code = popen.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    return code


def spawn(
    cmd: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    pidfile: Path | None = None,
    append: bool = True,
    banner: str | None = None,
    hold_sigterm: bool = False,
) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its own process group) with output to ``log``; write ``pidfile``.

    ``hold_sigterm``: the process starts with SIGTERM blocked (the mask survives exec), so a SIGTERM sent before it
    has installed its handler waits for it instead of killing it; the process unblocks SIGTERM once it is ready.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab" if append else "wb") as fh:
        if banner:
            fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {banner}\n".encode())
            fh.flush()
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
            preexec_fn=_block_sigterm if hold_sigterm else None,
        )
    if pidfile is not None:
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{proc.pid}\n")
    return proc


def _block_sigterm() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def stop_pidfile(path: Path, grace: float = 5.0) -> str:
    """Stop the process named in ``path`` and remove the file: 'stopped' or 'not running'."""
    pid = read_pidfile(path)
    if pid is None:
        path.unlink(missing_ok=True)
        return "not running"
    stop_pid(pid, grace)
    path.unlink(missing_ok=True)
    return "stopped"


def tail(path: Path, lines: int = 12) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
    except OSError:
        return ""


# ------------------------------------------------------------------ what listens where
def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (from /proc; empty where /proc does not exist)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(children.get(p, []))
    return out


def _hex_addr(text: str) -> tuple[str, int]:
    addr, port = text.split(":")
    raw = bytes.fromhex(addr)
    if len(raw) == 4:
        ip = ".".join(str(b) for b in raw[::-1])
    else:  # IPv6: four little-endian 32-bit words
        words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
        full = b"".join(words)
        if full[:12] == b"\x00" * 10 + b"\xff\xff":
            ip = "::ffff:" + ".".join(str(b) for b in full[12:])
        else:
            import ipaddress

            ip = str(ipaddress.IPv6Address(full))
    return ip, int(port, 16)


def listening(pids: set[int]) -> list[tuple[str, int, int]]:
    """The TCP sockets in LISTEN state owned by ``pids``: (address, port, pid), read from /proc."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and parts[9] in inodes:  # 0A: LISTEN
                ip, port = _hex_addr(parts[1])
                out.append((ip, port, inodes[parts[9]]))
    return sorted(set(out))


def is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1",) or ip.startswith("::ffff:127.")
