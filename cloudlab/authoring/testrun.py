"""`make test`: everything CI runs, in shards side by side, each against its own test lab.

A lesson that mostly waits (Terraform, health checks, paced traffic, image builds) runs in a shard of
its own or beside another one, with its own LocalStack and moto, while the other lessons and the unit
tests run in the main shard (``shard`` in ``lessons/course.toml``).
Within a shard: unit tests, then notebooks/, solutions/, exercises/, then all three again (every
notebook must pass a second run in a row against the same lab).
Each shard's output is printed whole when it ends; the last line sums them up.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from .. import course
from ..lab import PORTS, ROOT, Lab
from . import retry

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
            out[name] = ["tests"] + [f"--ignore={u}" for u in claimed] + first + again
        elif first:
            units = [u for le in ls for u in le.unit_tests if (ROOT / u).exists()]
            out[name] = units + first + again
    return out


def state_dir(shard: str) -> Path:
    return ROOT / ".lab" / "test-run" / shard


def _env(index: int, name: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["CLOUDLAB_STATE_DIR"] = str(state_dir(name))
    # Each shard's lab: the test profile's ports (see cloudlab.lab.PROFILES), shifted by 10 per shard.
    for name in PORTS:
        env.pop(f"CLOUDLAB_{name.upper()}_PORT", None)
    env["CLOUDLAB_PORT_OFFSET"] = str(int(os.environ.get("CLOUDLAB_PORT_OFFSET") or 0) + 10 * index)
    return env


def summary_counts(text: str) -> dict[str, int]:
    lines = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|error)", ln)]
    counts: dict[str, int] = {}
    if lines:
        for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", lines[-1]):
            key = "errors" if what.startswith("error") else what
            counts[key] = counts.get(key, 0) + int(n)
    return counts


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


def main(argv: list[str] | None = None) -> int:
    extra = list(argv if argv is not None else sys.argv[1:])
    lint_rc = lint()
    try:
        plan = shards(retry_dirs=True)
    except retry.RetryError as e:
        print(f"[test] retry notebooks: {e}", flush=True)
        return 1
    procs, logs, t0 = {}, {}, time.monotonic()
    for i, (name, args) in enumerate(plan.items()):
        env = _env(i, name)
        log = ROOT / ".lab" / "test-run" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        logs[name] = log
        timings = ["--durations=15", f"--junitxml={state_dir(name) / 'junit.xml'}"]  # every test's time, kept
        cmd = [sys.executable, "-m", "cloudlab.lab", "--profile", "test", "run", "--", sys.executable, *PYTEST]
        cmd += [*timings, *args, *extra]
        port = Lab.from_env("test", env).localstack_port
        print(
            f"[test] shard {name}: {len(args)} paths, lab on port {port} (output in {log.relative_to(ROOT)})",
            flush=True,
        )
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)

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
    codes = {name: done[name][0] for name in procs}
    total: dict[str, int] = {}
    for name in plan:
        text = logs[name].read_text(errors="replace")
        print(f"\n========== shard {name} (exit {codes[name]}) ==========\n{text}", flush=True)
        for k, v in summary_counts(text).items():
            total[k] = total.get(k, 0) + v
    took = time.monotonic() - t0
    ok = all(c == 0 for c in codes.values())
    for name, c in codes.items():
        if c == 5:
            print(f"[test] shard {name} collected no tests: that is a failure here")
        elif c != 0:
            print(f"[test] shard {name} failed (exit {c}); its log: {logs[name]}")
    for name, (_c, wall, cpu) in sorted(done.items(), key=lambda kv: -kv[1][1]):
        print(f"[test] shard {name}: {wall:.0f} s wall, {cpu:.0f} s CPU (its test lab and notebooks included)")
    print(f"[test] all shards done in {took:.0f} s, {sum(v[2] for v in done.values()):.0f} s CPU in all")
    failed = total.get("failed", 0) + total.get("errors", 0) + (0 if ok or total.get("failed") else 1)
    print(f"{total.get('passed', 0)} passed, {failed} failed, {total.get('skipped', 0)} skipped")
    return 0 if ok and lint_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
