"""Measure one lesson the way a workshop meets it: alone, on a brand-new lab. ``make measure L=05``.

For each lesson asked: a new, empty state folder (no emulator data, no Terraform state, no lesson scratch, no
Docker images but the base image, which comes from the cache), the test lab started on it, and the lesson's
three notebooks run in a row (lesson, solution, blank exercise), exactly as ``make test`` runs them. Meanwhile,
every 0.5 s, the sum of the resident memory (RSS) of every process of that run (the emulators, lesson processes,
the lab's dockerd and its containers, the notebook kernel: every process carrying this run's marker in its
environment, and their children) and, every 5 s, the disk the lab uses (its state folder and its folders under
/tmp and /dev/shm). Written to ``lessons/instructor/measured.json``:

* ``passed``: did all three notebooks pass on the fresh lab (the "any lesson first" proof, lesson by lesson);
* ``seconds``: machine time per notebook, and per section of the lesson notebook (from nbcheck's cell times);
* ``peak_rss_mib``, ``disk_mib``: what the pre-workshop checklist's machine requirements are built from;
* ``load``: the machine's load average before and after (a shared machine inflates every time).

Caches are kept (the environments in ``.lab/venvs``, the debootstrap base in ``.lab/cache``): a room's machine
image has them after ``make setup ALL=1``. Authors only; needs the lab's tools (``make setup ALL=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from .. import course
from ..lab import ROOT, Lab, runtime
from . import outline

MEASURED = ROOT / "lessons" / "instructor" / "measured.json"
MIB = 1 << 20
PYTEST = ["-m", "pytest", "-p", "cloudlab.authoring.nbcheck", "--nbval-lax", "--nbval-current-env",
          "--nbval-cell-timeout=300", "-p", "no:cacheprovider", "-q"]  # fmt: skip


def _environ_has(pid: str, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _status(pid: str) -> dict[str, str]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            out[k] = v.strip()
    except OSError:
        pass
    return out


def run_pids(marker: bytes) -> set[str]:
    """Every process with ``marker`` in its environment, and all their descendants (a container's processes
    get a clean environment from their image, but they are children of the run's dockerd)."""
    parent: dict[str, str] = {}
    marked = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        parent[d.name] = _status(d.name).get("PPid", "")
        if _environ_has(d.name, marker):
            marked.add(d.name)
    found = set(marked)
    changed = True
    while changed:
        changed = False
        for pid, pp in parent.items():
            if pp in found and pid not in found:
                found.add(pid)
                changed = True
    return found


def rss_bytes(pids: set[str]) -> int:
    total = 0
    for p in pids:
        v = _status(p).get("VmRSS", "")
        if v.endswith("kB"):
            total += int(v.split()[0]) * 1024
    return total


def disk_bytes(paths: list[Path]) -> int:
    seen, total = set(), 0
    for root in paths:
        for here, dirs, files in os.walk(root, onerror=lambda e: None):
            for name in files + dirs:
                try:
                    st = os.lstat(os.path.join(here, name))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


class Sampler(threading.Thread):
    def __init__(self, marker: bytes, lab: Lab):
        super().__init__(daemon=True)
        self.marker, self.lab, self.stop = marker, lab, threading.Event()
        self.peak_rss = self.peak_disk = 0

    def run(self):
        n = 0
        while not self.stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_bytes(run_pids(self.marker)))
            if n % 10 == 0:
                self.peak_disk = max(self.peak_disk, disk_bytes([self.lab.state, *runtime.private_dirs(self.lab)]))
            n += 1
            self.stop.wait(0.5)


def sections(lesson: course.Lesson, cells: dict) -> dict[str, float]:
    """Machine seconds per section of the lesson notebook, from nbcheck's per-cell times."""
    ol = outline.lesson_outline(lesson)
    key = f"notebooks/{lesson.stem}.ipynb"
    out: dict[str, float] = {}
    for n, c in (cells.get(key) or {}).items():
        name = ol.section_of_code_cell(int(n)) or "Introduction"
        out[name] = round(out.get(name, 0.0) + c["s"], 1)
    return out


def measure(lesson: course.Lesson, base_env: dict) -> dict:
    state = ROOT / ".lab" / "measure" / lesson.id
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    marker = f"cloudlab-measure-{uuid.uuid4().hex[:12]}"
    env = dict(base_env, CLOUDLAB_STATE_DIR=str(state), CLOUDLAB_MEASURE=marker)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    lab = Lab.from_env("test", env)
    paths = [str(lesson.path(f).relative_to(ROOT)) for f in ("notebooks", "solutions", "exercises")]
    paths = [p for p in paths if (ROOT / p).exists()]
    cmd = [sys.executable, "-m", "cloudlab.lab", "--profile", "test", "run", "--", sys.executable, *PYTEST, *paths]
    sampler = Sampler(f"CLOUDLAB_MEASURE={marker}".encode(), lab)
    load_before = os.getloadavg()
    t0 = time.monotonic()
    sampler.start()
    log = state.parent / f"{lesson.id}.log"
    with open(log, "w") as fh:
        rc = subprocess.call(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    wall = time.monotonic() - t0
    sampler.stop.set()
    sampler.join()
    try:
        times = json.loads((state / "notebook-times.json").read_text())
        cells = json.loads((state / "cell-times.json").read_text())
    except (OSError, ValueError):
        times, cells = {}, {}
    result = {
        "measured_on": time.strftime("%Y-%m-%d"),
        "passed": rc == 0,
        "wall_s": round(wall, 1),
        "notebook_s": {Path(k).parts[0]: v for k, v in times.items()},
        "section_s": sections(lesson, cells),
        "figure_cells": {k: sorted(int(n) for n, c in v.items() if c.get("image")) for k, v in cells.items()},
        "sources": {p: outline.sources_hash(ROOT / p) for p in paths},  # what was measured: cell numbers hold
        "peak_rss_mib": round(sampler.peak_rss / MIB),
        "disk_mib": round(sampler.peak_disk / MIB),
        "load": [round(x, 1) for x in (*load_before, *os.getloadavg())],
    }
    if rc != 0:
        result["tail"] = log.read_text(errors="replace")[-2000:]
    return result


def setup_sizes() -> dict:
    """Disk of what is installed once and shared by every lesson (the environments, the caches)."""
    lab = Lab.from_env()
    return {
        "measured_on": time.strftime("%Y-%m-%d"),
        "kernel_mib": round(disk_bytes([ROOT / ".venv"]) / MIB),
        "venvs_mib": round(disk_bytes([lab.venvs]) / MIB),
        "cache_mib": round(disk_bytes([ROOT / ".lab" / "cache"]) / MIB),
    }


def load() -> dict:
    try:
        return json.loads(MEASURED.read_text())
    except (OSError, ValueError):
        return {}


def save(data: dict) -> None:
    MEASURED.parent.mkdir(parents=True, exist_ok=True)
    MEASURED.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make measure", description=__doc__.split("\n")[0])
    ap.add_argument("lessons", nargs="*", help="lesson ids (default: every ready lesson)")
    args = ap.parse_args(argv)
    wanted = [course.by_id(x) for x in args.lessons] or [le for le in course.lessons() if le.ready]
    data = load()
    data["_setup"] = setup_sizes()
    bad = 0
    for le in wanted:
        print(f"[measure] lesson {le.id} on a new lab ...", flush=True)
        r = measure(le, dict(os.environ))
        data[le.id] = {k: v for k, v in r.items() if k != "tail"}
        save(data)
        print(
            f"[measure] lesson {le.id}: {'passed' if r['passed'] else 'FAILED'} in {r['wall_s']} s, "
            f"peak RSS {r['peak_rss_mib']} MiB, disk {r['disk_mib']} MiB, load {r['load']}",
            flush=True,
        )
        if not r["passed"]:
            bad += 1
            print(r.get("tail", ""), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
