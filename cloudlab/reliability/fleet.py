"""A fleet: instances of the order service with AZ labels, behind haproxy, watched by a supervisor.

Each instance is ``app.service`` (lesson 01's 12-factor order service) as a lesson process on its own
port, labelled with an availability zone. An instance can run inside a network namespace of its own
(:mod:`.netns`), reached through a link on 127.0.0.1, so its network can be cut without touching the
machine's. The fleet's description is written to ``fleet.json`` in the lesson's work folder: the
supervisor, the fault injector and the Chaos Toolkit probes read it (they run as other processes).

The **supervisor** (``python -m cloudlab.reliability.fleet supervise``, a lesson process) restarts an
instance whose process exited or, for instances on the machine's network, whose ``/health`` stopped
answering three times in a row: what systemd's ``Restart=always``, a kubelet's liveness probe or an
Auto Scaling group's instance replacement do. It logs one JSON line per restart. Serves lesson 09.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass

from .. import haproxy, net, procs
from ..lab import ROOT, Lab
from ..tables import Table, show
from . import netns

LESSON = "09"
LB = "l09-lb"
SUPERVISOR = "l09-supervisor"
BACKEND = "web"


@dataclass
class Instance:
    """One instance: lesson process ``name`` in zone ``az`` on 127.0.0.1:``port`` (maybe in a namespace)."""

    name: str
    az: str
    port: int
    netns: str | None = None
    spare: bool = False  # a slot the autoscaler may fill; not started, in maintenance in haproxy

    @property
    def server(self) -> str:
        """Its server name in haproxy (the name without the lesson prefix)."""
        return self.name.removeprefix("l09-")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def state_path():
    return Lab.from_env().work_dir(LESSON) / "fleet.json"


def load_state() -> dict:
    try:
        data = json.loads(state_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_state(data: dict) -> None:
    tmp = state_path().with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, state_path())


def command(inst: Instance) -> list[str]:
    return [*netns.exec_prefix(inst.netns), sys.executable, "-m", "app.service"]


def environment(inst: Instance, backing: dict) -> dict:
    return {
        "ORDERS_BUCKET": backing["bucket"],
        "ORDERS_QUEUE_URL": backing["queue_url"],
        "PORT": str(inst.port),
        "AZ": inst.az,
        "LOG_LEVEL": "WARNING",  # the load would write thousands of request lines; errors still show
    }


def spawn(inst: Instance, backing: dict) -> procs.Proc:
    """Start the instance (and, in a namespace, its links) without waiting for it."""
    if inst.netns:
        netns.create(inst.netns, show=False)
        aws_port = Lab.from_env().localstack_port  # the instance reaches LocalStack through a link
        if procs.running(f"{inst.netns}-aws") is None:
            procs.start(f"{inst.netns}-aws", netns.link_args(inst.netns, None, aws_port))
        if procs.running(f"{inst.name}-link") is None:
            procs.start(f"{inst.name}-link", netns.link_args(None, inst.netns, inst.port))
    return procs.start(inst.name, command(inst), env=environment(inst, backing), python=False, cwd=str(ROOT))


def wait_ready(inst: Instance, proc: procs.Proc | None = None, timeout: float = 20.0) -> float:
    t0 = time.monotonic()
    if proc is not None:  # still starting (its CPU time grows) on a busy machine: it gets more time
        ok, waited, did = procs.wait_ready(proc, inst.url + "/health", timeout)
    else:
        ok, did = net.wait_http(inst.url + "/health", timeout), "no process to ask"
        waited = time.monotonic() - t0
    if not ok:
        out = proc.output()[-800:] if proc else ""
        raise RuntimeError(f"{inst.name} did not answer on {inst.url}/health within {waited:.0f} s ({did}):\n{out}")
    return time.monotonic() - t0


class Fleet:
    """Instances in zones, their load balancer and their state file."""

    def __init__(self, backing: dict, instances: list[Instance]):
        self.backing, self.instances = backing, list(instances)
        self.lb: haproxy.Balancer | None = None

    @classmethod
    def three_azs(cls, backing: dict, region: str = "us-east-1", isolate=("c",), spares: int = 0) -> Fleet:
        """web-a, web-b, web-c in zones a, b, c (those in ``isolate`` in a namespace of their own when the
        machine can), plus ``spares`` slots for the autoscaler."""
        can, _ = netns.available()
        insts = [
            Instance(
                f"l09-web-{z}", f"{region}{z}", net.free_port(), netns.name(f"az-{z}") if can and z in isolate else None
            )
            for z in "abc"
        ]
        insts += [
            Instance(f"l09-web-{i + 4}", f"{region}{'abc'[i % 3]}", net.free_port(), spare=True) for i in range(spares)
        ]
        return cls(backing, insts)

    def get(self, name: str) -> Instance:
        for i in self.instances:
            if i.name == name or i.server == name:
                return i
        raise KeyError(f"no instance {name!r}; the fleet has {[i.name for i in self.instances]}")

    def start(self, quiet: bool = False, warm: bool = True) -> Fleet:
        """Start every instance side by side, wait until each answers, write the state file. Spares start too
        (``warm``): they wait out of service, in a warm pool, for the autoscaler (like an ASG's warm pool)."""
        started = [(i, spawn(i, self.backing)) for i in self.instances if warm or not i.spare]
        for inst, proc in started:
            wait_ready(inst, proc)
        if not quiet:
            rows = [
                (i.name, i.az, f"127.0.0.1:{i.port}", i.netns or "-", "warm pool" if i.spare else "in service")
                for i, _ in started
            ]
            show(Table(("instance", "zone", "address", "network namespace", "role"), rows))
        self.save()
        return self

    def save(self) -> None:
        data = load_state()
        data["instances"] = {
            i.name: {
                **asdict(i),
                "server": i.server,
                "inner_port": i.port,
                "cmd": command(i),
                "env": environment(i, self.backing),
            }
            for i in self.instances
        }
        if self.lb is not None:
            data["lb"] = {"name": self.lb.name, "url": self.lb.url, "socket": str(self.lb.socket_path)}
        save_state(data)

    def balancer(self, retries: int = 2, redispatch: bool = True, check_inter_ms: int = 200, **kw) -> haproxy.Balancer:
        """haproxy in front of every instance (spares in maintenance); started; health checks on /health."""
        servers = [haproxy.Server(i.server, i.port, disabled=i.spare) for i in self.instances]
        backend = haproxy.Backend(BACKEND, servers, retries=retries, redispatch=redispatch)
        self.lb = haproxy.Balancer(LB, [backend], check_inter_ms=check_inter_ms, **kw).start()
        for i in self.instances:
            if not i.spare:
                self.lb.wait_status(BACKEND, i.server, "UP", timeout=10)
        self.save()
        return self.lb

    def statuses(self) -> dict[str, str]:
        """haproxy's view: {server: UP | DOWN | MAINT | DRAIN ...}."""
        if self.lb is None:
            return {}
        return {
            r["svname"]: r["status"].split()[0]
            for r in self.lb.stats()
            if r["pxname"] == BACKEND and r["svname"] != "BACKEND"
        }

    def by_zone(self) -> dict[str, list[str]]:
        st = self.statuses()
        out: dict[str, list[str]] = {}
        for i in self.instances:
            out.setdefault(i.az, []).append(f"{i.server}:{st.get(i.server, '?')}")
        return out


# ---------------------------------------------------------------------------------------------- supervisor
def start_supervisor(interval: float = 0.2) -> procs.Proc:
    """Start the supervisor as a lesson process (restarting a running one)."""
    print(f"$ python -m cloudlab.reliability.fleet supervise --interval {interval}")
    return procs.start(SUPERVISOR, ["-m", "cloudlab.reliability.fleet", "supervise", "--interval", str(interval)])


def supervisor_events(since: float = 0.0) -> list[dict]:
    """The supervisor's restarts: [{"t", "instance", "reason", "pid"}] (from its JSON log)."""
    proc = procs.running(SUPERVISOR)
    text = (
        proc.output()
        if proc
        else procs.log_path(SUPERVISOR).read_text(errors="replace")
        if procs.log_path(SUPERVISOR).exists()
        else ""
    )
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event") == "restarted" and rec.get("t", 0) >= since:
            out.append(rec)
    return out


def supervise(interval: float = 0.2, fails: int = 3, startup_s: float = 15.0) -> None:
    """Restart instances that exited, or (on the machine's network) failed ``fails`` health checks in a row.

    Like a kubelet's startup probe, a (re)started instance gets up to ``startup_s`` to answer for the
    first time before failed checks count against it.
    """
    strikes: dict[str, int] = {}
    since: dict[str, float] = {}  # when we (re)started it, or first saw it not answering
    healthy: set[str] = set()  # answered at least once since it was (re)started
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    print(json.dumps({"event": "supervising", "interval": interval, "t": time.time()}), flush=True)
    while not stop:
        for name, spec in load_state().get("instances", {}).items():
            if spec.get("spare") and not spec.get("running"):
                continue
            proc = procs.running(name)
            reason = None
            if proc is None:
                reason = "exited"
            elif not spec.get("netns"):
                ok = net.answers(f"http://127.0.0.1:{spec['port']}/health", timeout=0.5)
                if ok:
                    healthy.add(name)
                    strikes[name] = 0
                elif name in healthy or time.monotonic() - since.setdefault(name, time.monotonic()) > startup_s:
                    strikes[name] = strikes.get(name, 0) + 1
                reason = "unhealthy" if strikes.get(name, 0) >= fails else None
            if reason:
                procs.stop(name, grace=0.5, sig=signal.SIGKILL)
                new = procs.start(name, spec["cmd"], env=spec["env"], python=False, cwd=str(ROOT))
                strikes[name], since[name] = 0, time.monotonic()
                healthy.discard(name)
                event = {"event": "restarted", "instance": name, "reason": reason, "pid": new.pid, "t": time.time()}
                print(json.dumps(event), flush=True)
        time.sleep(interval)


def restart_missing(wait: float = 20.0) -> list[str]:
    """Start every fleet instance whose process is gone (a rollback: what a supervisor would have done)."""
    started = []
    for name, spec in load_state().get("instances", {}).items():
        if (spec.get("spare") and not spec.get("running")) or procs.running(name) is not None:
            continue
        proc = procs.start(name, spec["cmd"], env=spec["env"], python=False, cwd=str(ROOT))
        started.append(name)
        if not net.wait_http(f"http://127.0.0.1:{spec['port']}/health", wait, alive=proc.alive):
            print(json.dumps({"event": "restart_failed", "instance": name}), flush=True)
    print(json.dumps({"event": "restarted_missing", "instances": started}), flush=True)
    return started


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m cloudlab.reliability.fleet")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("supervise", help="restart instances that died or hang")
    s.add_argument("--interval", type=float, default=0.2)
    sub.add_parser("restart-missing", help="start every fleet instance that is not running (a rollback)")
    a = p.parse_args(argv)
    if a.cmd == "supervise":
        supervise(a.interval)
    else:
        restart_missing()


if __name__ == "__main__":
    main()
