"""The workshop hub under load. Not a test: run it by hand as root and read the numbers (docs/instructors/room.md).

    python3 benchmarks/hub_room.py --memory        one learner: peak memory of their whole lab (every process in
                                                   their cgroup) while lesson 01's and lesson 04's exercises run
    python3 benchmarks/hub_room.py --room 2 4 6 8  N learners, all running lesson 01's exercise notebook (every
                                                   check) at the same moment; the largest N where all pass

The exercises run as the learner would run them: the worked solutions (so every check runs and passes) from their
own workspace copy, by nbval, inside their namespaces and their memory cgroup (cloudlab.hub.inside). It uses the
test profile's hub (its own ports and its own system users, ``clt<offset>-seatNN``) and removes them at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloudlab.hub import Hub, cgroups, cli, inside  # noqa: E402
from cloudlab.lab import Lab, venvs  # noqa: E402

MIB = 1 << 20


def server_ready(hub: Hub, name: str) -> bool:
    servers = (cli.api(hub, "GET", f"/users/{name}") or {}).get("servers") or {}
    return bool((servers.get("") or {}).get("ready"))


def room_up(hub: Hub, n: int) -> list[str]:
    names = [f"seat{i:02d}" for i in range(1, n + 1)]
    env = dict(os.environ, CLOUDLAB_PROFILE="test")
    out = subprocess.run([sys.executable, "-m", "cloudlab.hub", "accounts", "create", "--seats", str(n), "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    t0 = time.monotonic()
    print(f"hub: {cli.up(hub)}", flush=True)
    go = threading.Barrier(n)

    def start(name):
        go.wait()
        cli.api(hub, "POST", f"/users/{name}/server", timeout=120)

    threads = [threading.Thread(target=start, args=(nm,)) for nm in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if all(server_ready(hub, nm) for nm in names):
            break
        time.sleep(1)
    print(f"{n} servers ready in {time.monotonic() - t0:.1f} s", flush=True)
    return names


def room_down(hub: Hub, n: int) -> None:
    cli.down(hub)
    env = dict(os.environ, CLOUDLAB_PROFILE="test")
    subprocess.run([sys.executable, "-m", "cloudlab.hub", "accounts", "remove", "--seats", str(n)], cwd=ROOT, env=env,
                   capture_output=True)  # fmt: skip


# nbclient (what nbval drives): run every cell of each notebook in a fresh kernel, in the notebook's own folder;
# a cell that raises (a check that fails) stops it with CellExecutionError.
RUN_NOTEBOOKS = """
import os, sys, nbformat
from nbclient import NotebookClient
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    where = {"metadata": {"path": os.path.dirname(path)}}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources=where).execute()
    print("ran", os.path.basename(path), flush=True)
"""


def run_exercises(hub: Hub, name: str, stems: list[str]) -> tuple[int, float, str]:
    """The learner's workspace copies of the worked solutions (every check runs and must pass), as the learner."""
    kernel_py = str(venvs.venv_python(Lab.from_env(environ={}), "kernel"))
    ws = hub.home(name) / "workspace" / "solutions"
    paths = [str(ws / f"{s}.solutions.ipynb") for s in stems]
    cmd = [kernel_py, "-c", RUN_NOTEBOOKS, *paths]
    t0 = time.monotonic()
    r = inside.run(hub.sysuser(name), cmd, timeout=1800)
    return r.returncode, time.monotonic() - t0, (r.stdout + r.stderr)[-1500:]


class Sampler(threading.Thread):
    """Every 0.5 s: the sum of RSS of every process in each learner's memory cgroup; keeps the peaks."""

    def __init__(self, hub: Hub, names: list[str]):
        super().__init__(daemon=True)
        self.hub, self.names, self.stop = hub, names, threading.Event()
        self.peak_rss = dict.fromkeys(names, 0)
        self.peak_total = 0

    def rss(self, pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def run(self):
        while not self.stop.is_set():
            total = 0
            for n in self.names:
                pids = cgroups.stats(cgroups.path_for(self.hub.sysuser(n))).get("pids", [])
                now = sum(self.rss(p) for p in pids)
                self.peak_rss[n] = max(self.peak_rss[n], now)
                total += now
            self.peak_total = max(self.peak_total, total)
            self.stop.wait(0.5)


def memory(hub: Hub) -> dict:
    names = room_up(hub, 1)
    try:
        sampler = Sampler(hub, names)
        sampler.start()
        code, took, tail = run_exercises(hub, names[0], ["01_cloud-mindset", "04_observability"])
        sampler.stop.set()
        sampler.join()
        cg = cgroups.stats(cgroups.path_for(hub.sysuser(names[0])))
        out = {
            "passed": code == 0,
            "seconds": round(took, 1),
            "peak_rss_mib": round(sampler.peak_rss[names[0]] / MIB),
            "cgroup_peak_mib": round((cg.get("peak") or 0) / MIB),
            "oom_kills": cg.get("oom_kills"),
        }
        if code != 0:
            out["tail"] = tail
        return out
    finally:
        room_down(hub, 1)


def room(hub: Hub, n: int) -> dict:
    names = room_up(hub, n)
    try:
        sampler = Sampler(hub, names)
        sampler.start()
        results: dict[str, tuple] = {}

        def one(name):
            results[name] = run_exercises(hub, name, ["01_cloud-mindset"])

        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(nm,)) for nm in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        sampler.stop.set()
        sampler.join()
        times = sorted(r[1] for r in results.values())
        failed = {nm: r[2] for nm, r in results.items() if r[0] != 0}
        return {
            "learners": n,
            "all_passed": not failed,
            "wall_s": round(wall, 1),
            "slowest_s": round(times[-1], 1),
            "fastest_s": round(times[0], 1),
            "peak_rss_all_mib": round(sampler.peak_total / MIB),
            "failed": {k: v[-600:] for k, v in failed.items()},
            "load": os.getloadavg(),
        }
    finally:
        room_down(hub, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--room", type=int, nargs="*", default=[])
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the hub starts each learner's server as their own system user")
    os.environ["CLOUDLAB_PROFILE"] = "test"
    hub = Hub.from_env("test")
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()}", flush=True)
    if args.memory:
        print(json.dumps({"memory": memory(hub)}, indent=1), flush=True)
    largest = 0
    for n in args.room:
        r = room(hub, n)
        print(json.dumps({"room": r}, indent=1), flush=True)
        if not r["all_passed"]:
            break
        largest = n
    if args.room:
        print(f"largest room held with every learner running lesson 01's checks at once: {largest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
