"""`make test`: everything CI runs, in shards side by side, each against its own test lab.

A lesson that mostly waits (Terraform, health checks, paced traffic, image builds) runs in a shard of
its own or beside another one, with its own LocalStack and moto, while the other lessons and the unit
tests run in the main shard (``shard`` in ``lessons/course.toml``).
Within a shard: unit tests, then notebooks/, solutions/, exercises/, then all three again (every
notebook must pass a second run in a row against the same lab).
Each shard's output is printed whole when it ends; the last line sums them up.

Any lesson can be the first one: in the first pass, the lab is reset before each lesson's notebook
(:mod:`.fresh`), so every lesson first runs on a fresh lab. And the instructor notes list every wrong answer the
tests prove a check rejects (:mod:`.wronganswers` reads them from the test files): each shard records the
``rejected(...)`` calls that ran (``CLOUDLAB_REJECTED_LOG``), and a call the reader does not see fails the run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from .. import course
from ..lab import PORTS, ROOT, Lab
from . import retry, wronganswers

PYTEST = [
    "-m",
    "pytest",
    "-p",
    "cloudlab.authoring.nbcheck",
    "--nbval-lax",
    "--nbval-current-env",
    "--nbval-cell-timeout=300",
    "--keep-duplicates",
    "-p",
    "cloudlab.authoring.fresh",
    "-p",
    "no:cacheprovider",
    "-q",
]


def shard_of(lesson: course.Lesson) -> str:
    """A lesson's shard: "main", its own ("own" in course.toml), or a named one shared by several lessons."""
    if lesson.shard == "own":
        return f"lesson{lesson.id}"
    return lesson.shard or "main"


def notebooks(ids: set[str], retry_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """The first pass (lessons, solutions, blank exercises) and the second one, where each solution runs again
    as its retry notebook (every task blank, then wrong, then right, in one kernel: :mod:`.retry`) once its
    lesson has wrong attempts in tests/attempts/."""

    def pick(folder):
        return [str(p.relative_to(ROOT)) for p in sorted((ROOT / folder).glob("*.ipynb")) if p.name[:2] in ids]

    first = pick("notebooks") + pick("solutions") + pick("exercises")
    second = []
    for sol in pick("solutions"):
        lesson = Path(sol).name[:2]
        if retry_dir is not None and (retry.ATTEMPTS_DIR / f"lesson{lesson}.py").exists():
            second.append(str(retry.write(lesson, retry_dir)))
        else:
            second.append(sol)
    again = pick("notebooks") + second + pick("exercises")
    return first, again


# Shards that run after the others, with the machine to themselves: the workshop room starts three learners' labs
# (their own LocalStack, moto and JupyterLab each) and drives a browser, about 100 s alone. It was moved here when
# its servers did not come up beside the other shards; the cause turned out to be a clone under /tmp (a learner's
# private /tmp hid the course, fixed in cloudlab.hub.launch), not the load, so it could run beside them again.
SOLO = {"room": ["tests/test_hub_room.py"]}


def shards(retry_dirs: bool = False) -> dict[str, list[str]]:
    """{shard: pytest paths}. Within a shard: its unit tests, then notebooks/, solutions/, exercises/, then
    the three again. The main shard runs every unit test that no other shard claims."""
    groups: dict[str, list[course.Lesson]] = {"main": []}
    for lesson in course.lessons():
        if lesson.ready:
            groups.setdefault(shard_of(lesson), []).append(lesson)
    claimed = [u for name, ls in groups.items() if name != "main" for le in ls for u in le.unit_tests]
    out = {}
    for name, ls in groups.items():
        first, again = notebooks({le.id for le in ls}, state_dir(name) / "retry" if retry_dirs else None)
        if name == "main":
            solo = [p for paths in SOLO.values() for p in paths]
            out[name] = ["tests"] + [f"--ignore={u}" for u in claimed + solo] + first + again
        elif first:
            units = [u for le in ls for u in le.unit_tests if (ROOT / u).exists()]
            out[name] = units + first + again
    out.update({name: list(paths) for name, paths in SOLO.items()})
    return out


def state_dir(shard: str) -> Path:
    return ROOT / ".lab" / "test-run" / shard


def _env(index: int, name: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["CLOUDLAB_STATE_DIR"] = str(state_dir(name))
    env["CLOUDLAB_REJECTED_LOG"] = str(rejected_log(name))  # every rejected(...) that ran (tests/checktest.py)
    # Each shard's lab: the test profile's ports (see cloudlab.lab.PROFILES), shifted by 10 per shard.
    for name in PORTS:
        env.pop(f"CLOUDLAB_{name.upper()}_PORT", None)
    env["CLOUDLAB_PORT_OFFSET"] = str(int(os.environ.get("CLOUDLAB_PORT_OFFSET") or 0) + 10 * index)
    env["CLOUDLAB_FRESH_LESSONS"] = "1"  # the first pass resets the lab before each lesson (cloudlab.authoring.fresh)
    return env


def rejected_log(shard: str) -> Path:
    return state_dir(shard).parent / f"{shard}.rejected.jsonl"


def instructor_notes_see(shards: list[str]) -> int:
    """Every wrong answer the tests proved rejected is one the instructor notes are built from; 0 when so."""
    records = wronganswers.read_records([rejected_log(s) for s in shards])
    unseen = wronganswers.unseen(records)
    for r in unseen[:20]:
        where = f"{r['file']}:{r['line']} proves {r['check']} rejects a wrong answer ({r['words']})"
        print(f"[test] instructor notes: {where}, but wronganswers.py does not read it from the test", flush=True)
    print(f"[test] instructor notes: {len(records)} wrong answers proved, {len(unseen)} not in the notes", flush=True)
    return 1 if unseen else 0


def summary_counts(text: str) -> dict[str, int]:
    lines = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|error)", ln)]
    counts: dict[str, int] = {}
    if lines:
        for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", lines[-1]):
            key = "errors" if what.startswith("error") else what
            counts[key] = counts.get(key, 0) + int(n)
    return counts


def _read_json(path: Path) -> list:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []


def lint() -> int:
    """ruff (the rules in pyproject.toml): style problems fail `make test` before anything slow runs."""
    rc = 0
    for args in (["check", "."], ["format", "--check", "."]):
        out = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            print(
                f"[test] `ruff {' '.join(args)}` found problems (fix them; `ruff format .` reformats):\n"
                f"{out.stdout[-3000:]}{out.stderr[-1000:]}",
                flush=True,
            )
            rc = 1
    print(f"[test] lint: {'ok' if rc == 0 else 'FAILED'}", flush=True)
    return rc


def machine_cpu() -> tuple[float, float]:
    """(busy, idle) core-seconds of the whole machine since boot, from /proc/stat; (0, 0) where it is missing.

    Daemons the shards use but do not reap (dockerd, the emulators' servers) count here and not in wait4's figure.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0, 0.0
    ticks = [int(x) for x in fields[:8]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / hz, idle / hz


def _costliest(plan, n: int = 20) -> None:
    """The tests that took the most CPU across the shards (what to make cheaper first) and the notebooks' times."""
    cpu, nbs = {}, {}
    for name in plan:
        for file, into in (("test-cpu.json", cpu), ("notebook-times.json", nbs)):
            try:
                into.update(json.loads((state_dir(name) / file).read_text()))
            except (OSError, ValueError):
                pass
    if cpu:
        print(f"[test] {n} tests that used the most CPU (s, own and finished children):", flush=True)
        for test, s in sorted(cpu.items(), key=lambda kv: -kv[1])[:n]:
            print(f"[test]   {s:6.1f}  {test}")
    if nbs:
        print("[test] notebooks, wall seconds per run (the second run of a shard's pass adds to the first):")
        for nb, s in sorted(nbs.items()):
            print(f"[test]   {s:6.1f}  {nb}")


def main(argv: list[str] | None = None) -> int:
    extra = list(argv if argv is not None else sys.argv[1:])
    lint_rc = lint()
    try:
        plan = shards(retry_dirs=True)
    except retry.RetryError as e:
        print(f"[test] retry notebooks: {e}", flush=True)
        return 1
    procs, logs, t0, cpu0 = {}, {}, time.monotonic(), machine_cpu()

    def launch(i: int, name: str, args: list[str]) -> subprocess.Popen:
        env = _env(i, name)
        log = ROOT / ".lab" / "test-run" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        logs[name] = log
        timings = ["--durations=15", f"--junitxml={state_dir(name) / 'junit.xml'}"]  # every test's time, kept
        cmd = [sys.executable, "-m", "cloudlab.lab", "--profile", "test", "run", "--", sys.executable, *PYTEST]
        cmd += [*timings, *args, *extra]
        rejected_log(name).unlink(missing_ok=True)
        (state_dir(name) / "fresh-resets.json").unlink(missing_ok=True)
        port = Lab.from_env("test", env).localstack_port
        print(
            f"[test] shard {name}: {len(args)} paths, lab on port {port} (output in {log.relative_to(ROOT)})",
            flush=True,
        )
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)

    parallel = [name for name in plan if name not in SOLO]
    for i, name in enumerate(parallel):
        procs[name] = launch(i, name, plan[name])

    done: dict[str, tuple[int, float, float]] = {}  # shard: (exit code, wall seconds, CPU seconds of its processes)

    def reap(name: str, proc: subprocess.Popen) -> None:
        _, status, usage = os.wait4(proc.pid, 0)  # the shard's own CPU time, children included
        proc.returncode = os.waitstatus_to_exitcode(status)
        done[name] = (proc.returncode, time.monotonic() - t0, usage.ru_utime + usage.ru_stime)

    waiters = [threading.Thread(target=reap, args=item, daemon=True) for item in procs.items()]
    for w in waiters:
        w.start()
    while any(w.is_alive() for w in waiters):
        for w in waiters:
            w.join(timeout=60 / len(waiters))
        running = [n for n in procs if n not in done]
        if running:
            print(f"[test] {time.monotonic() - t0:.0f} s, still running: {', '.join(running)}", flush=True)
    for j, name in enumerate(n for n in plan if n in SOLO):  # after the others: the machine to itself
        print(f"[test] {time.monotonic() - t0:.0f} s, shard {name} runs alone now", flush=True)
        procs[name] = launch(len(parallel) + j, name, plan[name])
        reap(name, procs[name])
    codes = {name: done[name][0] for name in procs}
    total: dict[str, int] = {}
    for name in plan:
        text = logs[name].read_text(errors="replace")
        print(f"\n========== shard {name} (exit {codes[name]}) ==========\n{text}", flush=True)
        for k, v in summary_counts(text).items():
            total[k] = total.get(k, 0) + v
    took = time.monotonic() - t0
    notes_rc = instructor_notes_see(list(plan))
    resets = [r for name in plan for r in _read_json(state_dir(name) / "fresh-resets.json")]
    print(f"[test] any lesson first: {len(resets)} lab resets before a lesson's first run, "
          f"{sum(r['seconds'] for r in resets):.0f} s in all (spread over the shards)", flush=True)  # fmt: skip
    ok = all(c == 0 for c in codes.values()) and notes_rc == 0
    for name, c in codes.items():
        if c == 5:
            print(f"[test] shard {name} collected no tests: that is a failure here")
        elif c != 0:
            print(f"[test] shard {name} failed (exit {c}); its log: {logs[name]}")
    for name, (_c, wall, cpu) in sorted(done.items(), key=lambda kv: -kv[1][1]):
        print(f"[test] shard {name}: {wall:.0f} s wall, {cpu:.0f} s CPU (its test lab and notebooks included)")
    print(f"[test] all shards done in {took:.0f} s, {sum(v[2] for v in done.values()):.0f} s CPU in all")
    _costliest(plan)
    busy, idle = (b - a for a, b in zip(cpu0, machine_cpu(), strict=True))
    if busy + idle > 0:
        cores = os.cpu_count() or 1
        print(
            f"[test] the machine ({cores} cores) was busy {busy:.0f} core-seconds of {busy + idle:.0f} "
            f"({100 * busy / (busy + idle):.0f} %), daemons included",
            flush=True,
        )
    failed = total.get("failed", 0) + total.get("errors", 0) + (0 if ok or total.get("failed") else 1)
    print(f"{total.get('passed', 0)} passed, {failed} failed, {total.get('skipped', 0)} skipped")
    return 0 if ok and lint_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
