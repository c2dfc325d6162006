"""`make test`: everything CI runs, in two shards side by side, each against its own test lab.

Lesson 02 spends most of its time waiting on Terraform's polling, so it runs in its own shard
(its own LocalStack and moto) while the other lessons and the unit tests run in the main shard.
Within a shard: unit tests, then notebooks/, solutions/, exercises/, then notebooks/ and
solutions/ again (every notebook must pass a second run against the same lab).
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

from .lab import ROOT

SLOW_LESSONS = ("02",)  # each gets its own shard and lab
PYTEST = ["-m", "pytest", "-p", "cloudlab.nbcheck", "--nbval-lax", "--nbval-current-env",
          "--nbval-cell-timeout=300", "--keep-duplicates", "-p", "no:cacheprovider", "-q"]
UNIT_OF = {"02": ("tests/test_lesson02.py", "tests/test_terraform.py")}


def notebooks(lesson_filter) -> tuple[list[str], list[str]]:
    def pick(folder):
        return [str(p.relative_to(ROOT)) for p in sorted((ROOT / folder).glob("*.ipynb")) if lesson_filter(p.name[:2])]
    first = pick("notebooks") + pick("solutions") + pick("exercises")
    again = pick("notebooks") + pick("solutions")
    return first, again


def shards() -> dict[str, list[str]]:
    out = {}
    slow_units = [u for lesson in SLOW_LESSONS for u in UNIT_OF.get(lesson, ())]
    first, again = notebooks(lambda nn: nn not in SLOW_LESSONS)
    out["main"] = ["tests"] + [f"--ignore={u}" for u in slow_units] + first + again
    for lesson in SLOW_LESSONS:
        first, again = notebooks(lambda nn, lesson=lesson: nn == lesson)
        if first:
            out[f"lesson{lesson}"] = [u for u in UNIT_OF.get(lesson, ()) if (ROOT / u).exists()] + first + again
    return out


def _env(index: int, name: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["CLOUDLAB_STATE_DIR"] = str(ROOT / ".lab" / "test-run" / name)
    env["CLOUDLAB_LOCALSTACK_PORT"] = str(int(os.environ.get("CLOUDLAB_LOCALSTACK_PORT", 4576)) + 10 * index)
    env["CLOUDLAB_MOTO_PORT"] = str(int(os.environ.get("CLOUDLAB_MOTO_PORT", 5060)) + 10 * index)
    env["CLOUDLAB_JUPYTER_PORT"] = str(int(os.environ.get("CLOUDLAB_JUPYTER_PORT", 8898)) + 10 * index)
    return env


def summary_counts(text: str) -> dict[str, int]:
    lines = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|error)", ln)]
    counts: dict[str, int] = {}
    if lines:
        for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", lines[-1]):
            key = "errors" if what.startswith("error") else what
            counts[key] = counts.get(key, 0) + int(n)
    return counts


def main(argv: list[str] | None = None) -> int:
    extra = list(argv if argv is not None else sys.argv[1:])
    plan = shards()
    procs, logs, t0 = {}, {}, time.monotonic()
    for i, (name, args) in enumerate(plan.items()):
        env = _env(i, name)
        log = ROOT / ".lab" / "test-run" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        logs[name] = log
        cmd = [sys.executable, "-m", "cloudlab.lab", "--profile", "test", "run", "--",
               sys.executable, *PYTEST, *args, *extra]
        print(f"[test] shard {name}: {len(args)} paths, lab on port {env['CLOUDLAB_LOCALSTACK_PORT']} "
              f"(output in {log.relative_to(ROOT)})", flush=True)
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)

    def heartbeat():
        while any(p.poll() is None for p in procs.values()):
            time.sleep(60)
            running = [n for n, p in procs.items() if p.poll() is None]
            if running:
                print(f"[test] {time.monotonic() - t0:.0f} s, still running: {', '.join(running)}", flush=True)
    threading.Thread(target=heartbeat, daemon=True).start()
    codes = {name: p.wait() for name, p in procs.items()}
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
    print(f"[test] all shards done in {took:.0f} s")
    failed = total.get("failed", 0) + total.get("errors", 0) + (0 if ok or total.get("failed") else 1)
    print(f"{total.get('passed', 0)} passed, {failed} failed, {total.get('skipped', 0)} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
