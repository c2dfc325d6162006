"""Measure what a learner waits for. Not a test: run it by hand (`make bench`) and read the numbers.

  cold lab   fresh virtual environments + empty state -> LocalStack, moto and JupyterLab answering
  warm lab   environments exist, nothing running     -> the same
  hot lab    everything already running (idempotent `make lab`)
  memory     peak RSS of the lab's processes (VmHWM)
  test       `make test` wall time and each notebook's time (with --test)

Uses its own ports and directories, so a running lab is left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_lab(env: dict, *args: str) -> float:
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "cloudlab.lab", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    return time.monotonic() - t0


def peak_rss_mb(state: Path) -> dict[str, float]:
    out = {}
    for pidfile in (state / "run").glob("*.pid"):
        pid = pidfile.read_text().split()[0]
        total = 0
        # the process and its children (LocalStack runs a supervisor + a runtime)
        pids = [pid] + subprocess.run(["pgrep", "-g", pid], capture_output=True, text=True).stdout.split()
        for p in set(pids):
            try:
                for line in Path(f"/proc/{p}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        out[pidfile.stem] = round(total / 1024, 1)
    return out


def cold_env(env: dict, tmp: Path, n: int, installer: str) -> dict:
    """An empty package cache, no environments, no installer: what a new learner's machine has."""
    d = tmp / f"cold-{installer}-{n}"
    return dict(
        env,
        CLOUDLAB_VENV_DIR=str(d / "venvs"),
        CLOUDLAB_KERNEL_VENV=str(d / "kernel"),
        CLOUDLAB_STATE_DIR=str(d / "state"),
        UV_CACHE_DIR=str(d / "uv-cache"),
        PIP_NO_CACHE_DIR="1",
        CLOUDLAB_INSTALLER=installer,
    )


def stats(values: list[float]) -> dict:
    v = sorted(values)
    return {
        "runs": [round(x, 1) for x in values],
        "min": round(v[0], 1),
        "median": round(v[len(v) // 2], 1),
        "max": round(v[-1], 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--cold",
        type=int,
        default=0,
        metavar="N",
        help="also measure N cold starts (empty package cache, new environments: what a new learner waits)",
    )
    ap.add_argument("--pip", action="store_true", help="with --cold: also one cold start with the pip fallback")
    ap.add_argument("--test", action="store_true", help="also time `make test` and each notebook")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cloudlab-bench-"))
    # The test profile (its own workspace under the state folder) on ports of its own.
    env = dict(os.environ, CLOUDLAB_PROFILE="test", CLOUDLAB_STATE_DIR=str(tmp / "state"), CLOUDLAB_PORT_OFFSET="2000")
    results: dict[str, object] = {}
    try:
        if args.cold:
            cold = []
            for n in range(args.cold):
                e = cold_env(env, tmp, n, "uv")
                cold.append(run_lab(e, "lab"))
                run_lab(e, "down", "--all", "--force")
            results["cold_lab_uv_s"] = stats(cold)
            if args.pip:
                e = cold_env(env, tmp, 0, "pip")
                results["cold_lab_pip_s"] = round(run_lab(e, "lab"), 1)
                run_lab(e, "down", "--all", "--force")
        results["warm_lab_s"] = round(run_lab(env, "lab"), 1)
        results["hot_lab_s"] = round(run_lab(env, "lab"), 1)
        results["peak_rss_mb"] = peak_rss_mb(tmp / "state")
        run_lab(env, "down", "--all", "--force")
        t0 = time.monotonic()
        run_lab(env, "up")
        results["emulators_up_from_stopped_s"] = round(time.monotonic() - t0, 1)
        run_lab(env, "down", "--all", "--force")
        if args.test:
            t0 = time.monotonic()
            rc = subprocess.run(["make", "test"], cwd=ROOT).returncode
            results["make_test_s"] = round(time.monotonic() - t0, 1)
            results["make_test_exit"] = rc
            results["notebook_s_both_passes"] = {}
            for times in sorted((ROOT / ".lab" / "test-run").glob("*/notebook-times.json")):
                results["notebook_s_both_passes"].update(json.loads(times.read_text()))
            checks = {}
            for prog in sorted((ROOT / ".lab" / "test-run").glob("*/progress.json")):
                for k, v in json.loads(prog.read_text()).items():
                    checks[k] = v.get("last_seconds", 0)
            results["slowest_checks_s"] = dict(sorted(checks.items(), key=lambda kv: -kv[1])[:6])
    finally:
        subprocess.run(
            [sys.executable, "-m", "cloudlab.lab", "down", "--all", "--force"], cwd=ROOT, env=env, capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
