"""Faults on purpose, always bounded and always undone: kill or freeze a lesson process, cut or slow
the network of a lesson namespace.

Every fault here:

* targets only what the lesson made: processes named ``l09-...`` (their PID files) and namespaces
  ``l09-...`` (a firewall rule inside the namespace, never the machine's own firewall);
* prints the real command it runs (``kill -STOP 1234``, ``ip netns exec l09-az-c iptables ...``);
* is bounded: a timed fault (freeze, partition, slow) needs ``seconds`` (at most 30) and starts a
  *watchdog*, a separate lesson process that undoes it when the time is up, even if the notebook was
  interrupted or its kernel restarted; stopping the watchdog (``reset_lesson``, ``make stop``) undoes
  it at once;
* is recorded in ``faults.json`` (what is active, with its undo command) and ``faults.log`` (what
  happened, when): :func:`heal_all` undoes whatever is still active, and checks read the log.

Use it as a context manager (``with partition(...):``, undone on leaving, also on KeyboardInterrupt),
or from the command line, as a Chaos Toolkit action does: ``python -m cloudlab.reliability.faults
partition l09-web-c --for 3``. Serves lesson 09.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .. import procs
from ..lab import Lab, process
from . import netns

LESSON = "09"
MAX_SECONDS = 30.0
SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "STOP": signal.SIGSTOP, "CONT": signal.SIGCONT}


class FaultRefused(RuntimeError):
    """The fault would leave the lab, or is unbounded, or its target does not exist."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mFaultRefused\x1b[0m: {self}"]


def _dir() -> Path:
    return Lab.from_env().work_dir(LESSON)


def registry_path() -> Path:
    return _dir() / "faults.json"


def log_path() -> Path:
    return _dir() / "faults.log"


@contextlib.contextmanager
def _locked():
    """One writer at a time: the notebook, a watchdog and a Chaos Toolkit action may heal at once."""
    with open(_dir() / "faults.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load() -> dict:
    try:
        data = json.loads(registry_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(data: dict) -> None:
    tmp = registry_path().with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, registry_path())


def _log(event: str, **fields) -> None:
    with open(log_path(), "a") as fh:
        fh.write(json.dumps({"t": time.time(), "event": event, **fields}) + "\n")


def history(since: float = 0.0) -> list[dict]:
    """The fault log: one dict per injected/healed fault (``t``, ``event``, ``kind``, ``target`` ...)."""
    out = []
    try:
        lines = log_path().read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("t", 0) >= since:
            out.append(rec)
    return out


def active() -> dict:
    """The faults in force now: {id: record}."""
    return _load()


def _run(cmd: list[str], quiet: bool) -> subprocess.CompletedProcess:
    if not quiet:
        print("$ " + " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


def _seconds(seconds) -> float:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        raise FaultRefused(f"a fault needs a duration in seconds, not {seconds!r}") from None
    if not 0 < s <= MAX_SECONDS:
        raise FaultRefused(f"a fault lasts more than 0 and at most {MAX_SECONDS:g} s (bounded), not {s:g}")
    return s


def _lesson_pid(name: str) -> int:
    if not isinstance(name, str) or not name.startswith(f"l{LESSON}-"):
        raise FaultRefused(f"refusing to touch {name!r}: faults only target the lesson's processes (l{LESSON}-...)")
    proc = procs.running(name)
    if proc is None:
        raise FaultRefused(f"no running lesson process {name!r} (is the fleet started?)")
    return proc.pid


class Fault:
    """An injected, bounded fault. ``undo()`` rolls it back (safe to call twice); a context manager."""

    def __init__(self, fid: str, kind: str, target: str, undo_cmds: list[list[str]], seconds: float, quiet: bool):
        self.id, self.kind, self.target, self.undo_cmds, self.seconds, self.quiet = (
            fid,
            kind,
            target,
            undo_cmds,
            seconds,
            quiet,
        )

    def undo(self) -> bool:
        return heal(self.id, quiet=self.quiet)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.undo()
        return False

    def __repr__(self):
        return f"<Fault {self.kind} on {self.target} for at most {self.seconds:g} s ({self.id})>"


def _inject(kind: str, target: str, do: list[list[str]], undo: list[list[str]], seconds: float, quiet: bool) -> Fault:
    fid = f"{kind}-{uuid.uuid4().hex[:6]}"
    with _locked():
        data = _load()
        data[fid] = {
            "kind": kind,
            "target": target,
            "undo": undo,
            "until": time.time() + seconds,
            "started": time.time(),
        }
        _save(data)  # recorded BEFORE it is done: a crash in between still leaves the undo on record
    for cmd in do:
        out = _run(cmd, quiet)
        if out.returncode != 0:
            heal(fid, quiet=True)
            raise FaultRefused(f"`{' '.join(map(str, cmd))}` failed: {(out.stderr or out.stdout).strip()[:300]}")
    _log("injected", id=fid, kind=kind, target=target, seconds=seconds)
    # SIGTERM held until the watchdog's handler is in place: stopping it (reset, `make stop`) always undoes the fault
    watchdog = ["-m", "cloudlab.reliability.faults", "watchdog", fid, str(seconds)]
    procs.start(f"l{LESSON}-undo-{fid}", watchdog, hold_sigterm=True)
    return Fault(fid, kind, target, undo, seconds, quiet)


def heal(fid: str, quiet: bool = False, by: str = "rollback") -> bool:
    """Undo one fault now (run its undo commands, stop its watchdog). False if it was not active."""
    with _locked():
        data = _load()
        rec = data.pop(fid, None)
        if rec is None:
            return False
        for cmd in rec["undo"]:
            _run(cmd, quiet)
        _save(data)
    _log("healed", id=fid, kind=rec["kind"], target=rec["target"], by=by)
    if by != "watchdog":
        procs.stop(f"l{LESSON}-undo-{fid}", grace=2)
    return True


def heal_all(quiet: bool = True, by: str = "heal") -> list[str]:
    """Undo every fault still active (reset and `heal` use this). Returns their ids."""
    done = [fid for fid in list(_load()) if heal(fid, quiet=quiet, by=by)]
    return done


# ---------------------------------------------------------------------------------------------- faults
def kill(name: str, sig: str = "KILL", quiet: bool = False) -> int:
    """Send a signal to a lesson process (a crash: SIGKILL; a polite stop: SIGTERM). Returns its PID.

    Not timed: what brings the process back is the system under test (a supervisor), or a rollback.
    """
    if sig not in ("KILL", "TERM"):
        raise FaultRefused(f"kill sends KILL or TERM (use freeze for STOP), not {sig!r}")
    pid = _lesson_pid(name)
    if not quiet:
        print(f"$ kill -{sig} {pid}    # {name}", flush=True)
    os.kill(pid, SIGNALS[sig])
    _log("injected", id=f"kill-{uuid.uuid4().hex[:6]}", kind=f"kill-{sig}", target=name, seconds=0)
    return pid


def freeze(name: str, seconds: float, quiet: bool = False) -> Fault:
    """SIGSTOP a lesson process for ``seconds`` (alive but silent: a gray failure), then SIGCONT."""
    s = _seconds(seconds)
    pid = _lesson_pid(name)
    fault = _inject("freeze", name, [["kill", "-STOP", pid]], [["kill", "-CONT", pid]], s, quiet)
    deadline = time.monotonic() + 1  # the signal is delivered when the process is next scheduled
    while time.monotonic() < deadline and _proc_state(pid) not in ("T", "t", None):
        time.sleep(0.01)
    return fault


def _proc_state(pid: int) -> str | None:
    fields = process.stat_fields(pid)
    return fields[0] if fields else None


def _ns_rule(ns: str, port: int, mode: str) -> list[str]:
    target = ["DROP"] if mode == "drop" else ["REJECT", "--reject-with", "tcp-reset"]
    return ["-p", "tcp", "--dport", str(int(port)), "-j", *target]


def partition(ns: str, port: int, seconds: float, mode: str = "drop", quiet: bool = False) -> Fault:
    """Cut the way into port ``port`` inside namespace ``ns`` for ``seconds`` with an iptables rule there.

    ``drop``: packets vanish (callers hang until their timeout: the nastier failure); ``reject``: the
    connection is refused at once.
    """
    s = _seconds(seconds)
    if mode not in ("drop", "reject"):
        raise FaultRefused(f"mode is 'drop' or 'reject', not {mode!r}")
    ok, why = netns.available()
    if not ok:
        raise FaultRefused(f"this machine cannot cut a network path here: {why}")
    try:
        ns = netns._own(ns)
    except netns.NetnsError as e:
        raise FaultRefused(str(e)) from None
    if not netns.exists(ns):
        raise FaultRefused(f"there is no namespace {ns!r}: start the fleet first")
    ipt = [netns._ip(), "netns", "exec", ns, netns._iptables()]
    rule = _ns_rule(ns, port, mode)
    return _inject(
        "partition", f"{ns}:{port}", [[*ipt, "-I", "INPUT", *rule]], [[*ipt, "-D", "INPUT", *rule]], s, quiet
    )


def slow(ns: str, seconds: float, rate: str = "16kbit", quiet: bool = False) -> Fault:
    """Throttle everything inside namespace ``ns`` (a token bucket on its loopback) for ``seconds``."""
    s = _seconds(seconds)
    try:
        ns = netns._own(ns)
    except netns.NetnsError as e:
        raise FaultRefused(str(e)) from None
    if not netns.exists(ns):
        raise FaultRefused(f"there is no namespace {ns!r}: start the fleet first")
    tc = [netns._ip(), "netns", "exec", ns, "tc", "qdisc"]
    return _inject(
        "slow",
        ns,
        [[*tc, "add", "dev", "lo", "root", "tbf", "rate", rate, "burst", "4kbit", "latency", "2s"]],
        [[*tc, "del", "dev", "lo", "root"]],
        s,
        quiet,
    )


def instance(name: str) -> dict:
    """Where a fleet instance lives ({"port", "netns", "az"}), from the fleet's state file."""
    from . import fleet

    inst = fleet.load_state().get("instances", {}).get(name)
    if inst is None:
        raise FaultRefused(f"no fleet instance {name!r}; known: {sorted(fleet.load_state().get('instances', {}))}")
    return inst


def partition_instance(name: str, seconds: float, mode: str = "drop", quiet: bool = False) -> Fault:
    """Cut a fleet instance off the network (its namespace's firewall), for ``seconds``."""
    inst = instance(name)
    if not inst.get("netns"):
        raise FaultRefused(f"{name} runs in the machine's own network, not in a namespace: it cannot be cut safely")
    return partition(inst["netns"], inst["inner_port"], seconds, mode, quiet)


# ---------------------------------------------------------------------------------------------- CLI
def _watchdog(fid: str, seconds: float) -> int:
    def on_term(signum, frame):
        heal(fid, quiet=True, by="watchdog-stopped")
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # started with it held (_inject): delivered now
    rec = _load().get(fid)
    if rec is None:
        return 0
    time.sleep(max(0.0, rec["until"] - time.time()))
    heal(fid, quiet=True, by="watchdog")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cloudlab.reliability.faults", description="bounded faults, undone")
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kill", help="send KILL (or TERM) to a lesson process")
    k.add_argument("name")
    k.add_argument("--signal", default="KILL", choices=["KILL", "TERM"])
    f = sub.add_parser("freeze", help="SIGSTOP a lesson process for N seconds")
    f.add_argument("name")
    f.add_argument("--for", dest="seconds", type=float, required=True)
    c = sub.add_parser("partition", help="cut a fleet instance off the network for N seconds")
    c.add_argument("name")
    c.add_argument("--for", dest="seconds", type=float, required=True)
    c.add_argument("--mode", default="drop", choices=["drop", "reject"])
    c.add_argument("--wait", action="store_true", help="return only when the fault is over")
    f.add_argument("--wait", action="store_true", help="return only when the fault is over")
    sub.add_parser("heal", help="undo every active fault now")
    sub.add_parser("status", help="the faults in force")
    w = sub.add_parser("watchdog")
    w.add_argument("id")
    w.add_argument("seconds", type=float)
    a = p.parse_args(argv)
    try:
        if a.cmd == "kill":
            kill(a.name, a.signal)
        elif a.cmd in ("freeze", "partition"):
            fault = freeze(a.name, a.seconds) if a.cmd == "freeze" else partition_instance(a.name, a.seconds, a.mode)
            print(f"{fault!r}: undone automatically after {a.seconds:g} s", flush=True)
            if a.wait:
                time.sleep(a.seconds)
                fault.undo()
        elif a.cmd == "heal":
            print("healed:", ", ".join(heal_all(quiet=False)) or "nothing was active")
        elif a.cmd == "status":
            print(json.dumps(active(), indent=1))
        elif a.cmd == "watchdog":
            return _watchdog(a.id, a.seconds)
    except FaultRefused as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
