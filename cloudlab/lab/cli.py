"""``python3 -m cloudlab.lab <command>``: what the Makefile's targets run. Serves every lesson."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from . import PROFILES, REGION, ROOT, Lab, LabError, docker, emulators, jupyter, process, say, tools, venvs
from .emulators import EMULATORS


def write_env_files(lab: Lab) -> None:
    lab.state.mkdir(parents=True, exist_ok=True)
    (lab.state / "aws-config").write_text(f"[default]\nregion = {REGION}\n")
    (lab.state / "aws-credentials").write_text("[default]\naws_access_key_id = test\naws_secret_access_key = test\n")
    (lab.state / "lab.env").write_text("".join(f"export {k}={v}\n" for k, v in lab.aws_env().items()))


def up(lab: Lab) -> dict[str, str]:
    """Start the emulators that are not running (idempotent) and wait until they answer."""
    venvs.setup(lab, ("localstack", "moto"))
    t0 = time.monotonic()
    result = {name: emulators.START[name](lab) for name in EMULATORS}
    write_env_files(lab)
    for k, v in result.items():
        say(f"{k:<10} {v}")
    say(f"local cloud ready in {time.monotonic() - t0:.1f} s: LocalStack {lab.localstack_url}, moto {lab.moto_url}")
    return result


def stop_lesson_processes(lab: Lab) -> list[str]:
    """Stop every process a lesson started (their PID files are in ``lab.procs_dir``)."""
    stopped = []
    for pidfile in sorted(lab.procs_dir.glob("*.pid")) if lab.procs_dir.exists() else []:
        if process.stop_pidfile(pidfile, grace=2.0) == "stopped":
            stopped.append(pidfile.stem)
    return stopped


def down(lab: Lab) -> None:
    stopped = stop_lesson_processes(lab)
    if stopped:
        say(f"lesson processes stopped: {', '.join(stopped)}")
    say(f"{'jupyter':<10} {jupyter.stop(lab)}")
    for name in EMULATORS:
        say(f"{name:<10} {emulators.stop_one(lab, name)}")
    if lab.pidfile("docker").exists():
        say(f"{'dockerd':<10} {docker.stop(lab)}")


def status(lab: Lab) -> int:
    rows = []
    for name in EMULATORS:
        pid = emulators.read_pid(lab, name)
        ok = emulators.HEALTHY[name](lab)
        state = "healthy" if ok else ("running, not answering" if pid else "stopped")
        rows.append((name, state, getattr(lab, f"{name}_url"), pid))
    jpid = emulators.read_pid(lab, "jupyter")
    rows.append(("jupyter", "running" if jpid else "stopped", jupyter.url(lab) if jpid else "-", jpid))
    for name, state, url, pid in rows:
        print(f"  {name:<11} {state:<24} {url}  {'pid ' + str(pid) if pid else ''}")
    return 0 if all(r[1] == "healthy" for r in rows[: len(EMULATORS)]) else 1


def reset(lab: Lab, progress: bool = False) -> None:
    """Wipe the lab's state: emulator data (restart), Terraform state, lesson scratch, optionally progress."""
    was_running = any(emulators.read_pid(lab, n) for n in EMULATORS)
    stop_lesson_processes(lab)
    for name in EMULATORS:
        emulators.stop_one(lab, name)
    for sub in ("localstack", "terraform", "work"):
        shutil.rmtree(lab.state / sub, ignore_errors=True)
    for tfdir in ROOT.glob("**/.terraform"):
        if ".lab" not in tfdir.parts:
            shutil.rmtree(tfdir, ignore_errors=True)
    for tfstate in ROOT.glob("**/terraform.tfstate*"):
        if ".lab" not in tfstate.parts and ".venv" not in tfstate.parts:
            tfstate.unlink(missing_ok=True)
    if progress:
        (lab.state / "progress.json").unlink(missing_ok=True)
        say("progress file removed")
    say("emulator data and Terraform state wiped")
    if was_running:
        up(lab)


def run(lab: Lab, cmd: list[str]) -> int:
    """Start the lab, run ``cmd`` with the lab's environment, stop the lab: nothing is left running."""
    try:
        if lab.profile == "test":  # every test run starts from nothing
            for sub in ("localstack", "terraform", "work", "run", "progress.json"):
                target = lab.state / sub
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
        up(lab)
        env = dict(os.environ)
        env.update(lab.aws_env())
        return subprocess.call(cmd, env=env)
    finally:
        stop_lesson_processes(lab)
        for name in EMULATORS:
            emulators.stop_one(lab, name)
        docker.stop(lab)
        say("test lab stopped")


def logs(lab: Lab, lines: int = 40) -> None:
    for name in EMULATORS + ("jupyter",):
        f = lab.logfile(name)
        if f.exists():
            print(f"==> {f} <==")
            print(process.tail(f, lines))


def setup(lab: Lab, everything: bool = False) -> None:
    if not everything:
        venvs.setup(lab)
        return
    missing = tools.setup_all(lab)
    if missing:
        say(f"still missing (see the fix in lesson 00): {', '.join(missing)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cloudlab.lab", description="The local cloud of the course.")
    ap.add_argument("--profile", choices=sorted(PROFILES), default=None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup", help="create the virtual environments that are missing or stale")
    s.add_argument("--all", action="store_true", help="also every lesson's tools (system packages as root)")
    sub.add_parser("up", help="start the emulators (idempotent) and wait until healthy")
    sub.add_parser("lab", help="up + JupyterLab on 127.0.0.1; prints the URL")
    sub.add_parser("down", help="stop everything this lab started")
    sub.add_parser("status", help="what runs, what answers")
    sub.add_parser("logs", help="the last lines of each log")
    sub.add_parser("env", help="print the environment as shell exports")
    r = sub.add_parser("reset", help="wipe emulator data and Terraform state")
    r.add_argument("--progress", action="store_true", help="also delete the progress file")
    sub.add_parser("cluster", help="create the course's kind cluster (lesson 06), load the order service's image")
    sub.add_parser("cluster-down", help="delete the course's kind cluster")
    rn = sub.add_parser("run", help="up, run a command with the lab environment, down")
    rn.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    try:
        lab = Lab.from_env(args.profile)
        if args.cmd == "setup":
            setup(lab, everything=args.all)
        elif args.cmd == "up":
            up(lab)
        elif args.cmd == "lab":
            venvs.setup(lab)
            jpid = jupyter.spawn(lab)  # boots while the emulators start
            up(lab)
            url = jupyter.start(lab, jpid)
            say("JupyterLab is running. Open:")
            print(f"\n    {url}\n", flush=True)
            say("start with notebooks/00_environment-check.ipynb; `make stop` stops everything")
        elif args.cmd == "down":
            down(lab)
        elif args.cmd == "status":
            return status(lab)
        elif args.cmd == "logs":
            logs(lab)
        elif args.cmd == "env":
            print("".join(f"export {k}={v}\n" for k, v in lab.aws_env().items()), end="")
        elif args.cmd == "reset":
            reset(lab, progress=args.progress)
        elif args.cmd in ("cluster", "cluster-down"):
            from . import cluster

            cluster.up() if args.cmd == "cluster" else cluster.down()
        elif args.cmd == "run":
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not cmd:
                raise LabError("`run` needs a command after --")
            return run(lab, cmd)
    except LabError as e:
        print(f"[lab] ERROR: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
