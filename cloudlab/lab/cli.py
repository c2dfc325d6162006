"""``python3 -m cloudlab.lab <command>``: what the Makefile's targets run. Serves every lesson.

Commands that start or stop things take the lab's lock first, so two `make lab`/`make stop` runs
never interleave: the second one says what is running and waits for it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import PROFILES, REGION, ROOT, Lab, LabError, docker, emulators, jupyter, process, say, tools, venvs, workspace
from . import report as report
from . import runtime as runtime
from .emulators import EMULATORS

LOCK_WAIT = float(os.environ.get("CLOUDLAB_LOCK_WAIT") or 300)  # seconds a second command waits for the first


@contextlib.contextmanager
def locked(lab: Lab, what: str, wait: float = LOCK_WAIT):
    """Hold the lab's lock while ``what`` runs; if another command holds it, say which and wait."""
    lab.run_dir.mkdir(parents=True, exist_ok=True)
    path = lab.run_dir / "lab.lock"
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another command"
            say(f"waiting: {holder} is running on this lab (up to {wait:.0f} s) ...")
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(
                            f"{holder} still holds the lab after {wait:.0f} s. If nothing is running, "
                            f"remove {path} and try again."
                        ) from None
                    time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"`{what}` (pid {os.getpid()})")
        fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


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


def stop_lesson_processes(lab: Lab, by: str = "`make stop`") -> list[str]:
    """Stop every process a lesson started (their PID files are in ``lab.procs_dir``)."""
    stopped = []
    for pidfile in sorted(lab.procs_dir.glob("*.pid")) if lab.procs_dir.exists() else []:
        if process.stop_pidfile(pidfile, grace=2.0) == "stopped":
            stopped.append(pidfile.stem)
            report.stopped_note(lab, pidfile.stem, by)
    return stopped


def stop_emulator(lab: Lab, name: str, by: str) -> str:
    state = emulators.stop_one(lab, name)
    if state == "stopped":
        report.stopped_note(lab, name, by)
    return state


def stop_docker(lab: Lab, by: str) -> str:
    state = docker.stop(lab)
    if state == "stopped":
        report.stopped_note(lab, "docker", by)
    return state


def stop_cloud(lab: Lab, by: str = "`make stop`") -> None:
    """Stop the local cloud: lesson processes, the emulators, the lab's own dockerd. Never JupyterLab."""
    stopped = stop_lesson_processes(lab, by)
    if stopped:
        say(f"lesson processes stopped: {', '.join(stopped)}")
        emulators.mark_stopped(lab)
    for name in EMULATORS:
        say(f"{name:<10} {stop_emulator(lab, name, by)}")
    engine = stop_docker(lab, by)  # also what an engine killed earlier left running
    if engine == "stopped":
        say(f"{'dockerd':<10} {engine}")
    clean_runtime(lab)


def clean_runtime(lab: Lab) -> None:
    """Remove what the lab made outside its state folder (private /tmp folders, namespaces, leftover mounts)."""
    gone = runtime.clean(lab)
    parts = [f"{len(v)} {k}" for k, v in (("folders", gone["folders"]), ("namespaces", gone["namespaces"]),
                                           ("mounts", gone["unmounted"])) if v]  # fmt: skip
    if parts:
        say(f"{'removed':<10} {', '.join(parts)} the lab had made outside .lab/ (under /tmp, /dev/shm, /run/netns)")


AFTER_STOP = (
    "kept:      your code, variables (while the kernel runs), workspace/ files and progress",
    "not kept:  what the lessons created in the emulators (they keep no state across a restart) and the lesson",
    "           processes (haproxy, PostgreSQL, a fleet ...): `make lab` starts the local cloud again, empty;",
    "           then re-run each notebook you were working in from its setup cell (the first code cell).",
)


def down(lab: Lab, everything: bool = False, force: bool = False) -> None:
    """`make stop` (the local cloud; JupyterLab keeps running) or `make stop-all` (JupyterLab too)."""
    if not everything:
        stop_cloud(lab)
        if emulators.read_pid(lab, "jupyter"):
            say(f"jupyter    keeps running at {jupyter.url(lab)}: open notebooks keep saving.")
            say("           `make stop-all` also stops JupyterLab.")
        for line in AFTER_STOP:
            say(line)
        return
    open_now = jupyter.open_notebooks(lab) if emulators.read_pid(lab, "jupyter") else []
    if open_now and not force:
        raise LabError(
            f"{len(open_now)} notebook(s) are open with a running kernel in JupyterLab:\n"
            + "".join(f"    {p}\n" for p in open_now)
            + "  Stopping JupyterLab now would lose their unsaved changes. First save them (File > Save All) and\n"
            "  shut their kernels down (Kernel > Shut Down All Kernels), then run `make stop-all` again.\n"
            "  Or: `make stop-all FORCE=1` to stop anyway. (`make stop` stops only the local cloud.)"
        )
    stop_cloud(lab, "`make stop-all`")
    state = jupyter.stop(lab)
    if state == "stopped":
        report.stopped_note(lab, "jupyter", "`make stop-all`")
    say(f"{'jupyter':<10} {state}")
    for line in AFTER_STOP:
        say(line.replace("variables (while the kernel runs)", "saved notebooks"))


def listening_report(lab: Lab) -> list[tuple[str, int, str]]:
    """(address, port, owner) of every TCP socket the lab's processes and lesson processes listen on."""
    owners: dict[int, str] = {}
    pidfiles = [*lab.run_dir.glob("*.pid"), *(lab.procs_dir.glob("*.pid") if lab.procs_dir.exists() else [])]
    for pf in pidfiles:
        pid = process.read_pidfile(pf)
        if pid:
            for p in process.descendants(pid):
                owners.setdefault(p, pf.stem)
    return [(ip, port, owners[pid]) for ip, port, pid in process.listening(set(owners))]


def status(lab: Lab) -> int:
    """`make status`: what runs (the lab's processes and the lessons'), what listens beyond loopback, your
    progress, and last, the reason when the local cloud is down. 0 when it runs, 1 when it does not."""
    lines, entries = report.summary(lab)
    print("\n".join(lines))
    exposed = [(ip, port, who) for ip, port, who in listening_report(lab) if not process.is_loopback(ip)]
    for ip, port, who in exposed:
        print(f"  WARNING: {who} listens on {ip}:{port}, beyond this machine: run `make stop` and report it")
    print("Your progress:")
    print("  " + str(progress_table(lab)).replace("\n", "\n  "))
    reason = report.cloud_down_reason(entries)
    if reason:
        print(reason)
    elif exposed:
        print("Something listens beyond 127.0.0.1 (the WARNING above): `make stop`, then report it.")
    else:
        print("The local cloud runs (LocalStack and moto answer).")
    return 0 if not reason and not exposed else 1


def progress_table(lab: Lab):
    """The progress table of :mod:`cloudlab.checks` (standard library only too), read from this lab's file."""
    import json

    from ..checks import ProgressTable

    path = Path(os.environ.get("CLOUDLAB_PROGRESS_FILE") or lab.state / "progress.json")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    return ProgressTable(data if isinstance(data, dict) else {})


PRUNED = {".lab", ".venv", ".git", "node_modules", "__pycache__"}


def _terraform_leftovers(root: Path = ROOT) -> list[tuple[str, Path]]:
    """``.terraform`` folders and ``terraform.tfstate*`` files in the course's own folders (a Terraform run
    outside the lab's state). Never looks inside .lab/ (every lab's state, other labs' engines among it),
    environments or git: those are walked by nobody, so a folder vanishing meanwhile cannot break a reset."""
    found = []
    for here, dirs, files in os.walk(root, onerror=lambda e: None):
        if ".terraform" in dirs:
            found.append(("dir", Path(here) / ".terraform"))
        dirs[:] = [d for d in dirs if d not in PRUNED and d != ".terraform"]
        found += [("file", Path(here) / f) for f in files if f.startswith("terraform.tfstate")]
    return found


def reset(lab: Lab, progress: bool = False) -> None:
    """Wipe the lab's state: emulator data (restart), Terraform state, lesson scratch, optionally progress."""
    was_running = any(emulators.read_pid(lab, n) for n in EMULATORS)
    stop_lesson_processes(lab, "`make reset`")
    for name in EMULATORS:
        stop_emulator(lab, name, "`make reset` (it starts again)")
    clean_runtime(lab)  # the lab's dockerd, if it runs, keeps its folder
    for sub in ("localstack", "terraform", "work"):
        shutil.rmtree(lab.state / sub, ignore_errors=True)
    for kind, path in _terraform_leftovers():
        if kind == "dir":
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
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
        env.update(jupyter.kernel_env(lab))  # kernels behave as in the learner's lab
        return subprocess.call(cmd, env=env)
    finally:
        by = "the end of the test run"
        used = {n: process.cpu_seconds(emulators.read_pid(lab, n)) for n in EMULATORS}
        if any(v is not None for v in used.values()):  # what make test's shards cannot count (not their children)
            shown = ", ".join(f"{n} {v:.0f} s" for n, v in used.items() if v is not None)
            say(f"CPU used by the emulators since they last started: {shown}")
        stop_lesson_processes(lab, by)
        jupyter.stop(lab)
        for name in EMULATORS:
            stop_emulator(lab, name, by)
        stop_docker(lab, by)
        clean_runtime(lab)
        say("test lab stopped")


def logs(lab: Lab) -> None:
    report.logs(lab)


def setup(lab: Lab, everything: bool = False) -> None:
    if not everything:
        venvs.setup(lab)
        return
    missing = tools.setup_all(lab)
    optional = [m for m in missing if tools.TOOLS[m].optional]
    needed = [m for m in missing if m not in optional]
    if needed:
        say(f"still missing (see the fix in lesson 00): {', '.join(needed)}")
    if optional:
        say(f"optional, not installed (lesson 00 says what each adds): {', '.join(optional)}")


def start_lab(lab: Lab) -> None:
    if os.environ.get("CLOUDLAB_HUB") == "1":  # a learner's server on the workshop hub (cloudlab.hub)
        up(lab)  # starts only what is not running
        say("your lab already runs: it started with your server on the workshop hub, and JupyterLab is this page.")
        say("Nothing else to start. `make status` shows it; your server stops it when the instructor or you stop it.")
        return
    venvs.setup(lab)
    jpid = jupyter.spawn(lab)  # boots while the emulators start
    started = [k for k, v in up(lab).items() if v != "already running"]
    url = jupyter.start(lab, jpid)
    open_now = jupyter.open_notebooks(lab) if jpid is None else []  # JupyterLab kept running through `make stop`
    if started and open_now:
        say(f"{' and '.join(started)} started empty (emulators keep no state across a restart). These notebooks were")
        say("open before: re-run each from its setup cell (the first code cell) to create its resources again:")
        for nb in open_now:
            say(f"    {nb}")
    say("JupyterLab is running. Open:")
    print(f"\n    {url}\n", flush=True)
    say("start with notebooks/00_environment-check.ipynb; your work is saved in workspace/ (git-ignored)")
    say("`make stop` stops the local cloud (JupyterLab keeps running); `make stop-all` stops everything")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cloudlab.lab", description="The local cloud of the course.")
    ap.add_argument("--profile", choices=sorted(PROFILES), default=None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup", help="create the virtual environments that are missing or stale")
    s.add_argument("--all", action="store_true", help="also every lesson's tools (system packages as root)")
    s.add_argument(
        "--venv", nargs="+", choices=sorted(venvs.VENVS), help="only these environments (the Docker image builds them)"
    )
    sub.add_parser("up", help="start the emulators (idempotent) and wait until healthy")
    sub.add_parser("lab", help="up + JupyterLab on 127.0.0.1; prints the URL")
    d = sub.add_parser("down", help="stop the local cloud (JupyterLab keeps running)")
    d.add_argument("--all", action="store_true", help="also stop JupyterLab (refuses while notebooks are open)")
    d.add_argument("--force", action="store_true", help="with --all: stop even with notebooks open")
    sub.add_parser("status", help="what runs, what answers, what listens")
    sub.add_parser("logs", help="the last lines of each log")
    sub.add_parser("env", help="print the environment as shell exports")
    ap_ = sub.add_parser("apt-packages", help="print the Debian packages of every lesson's tools (sudo apt-get)")
    ap_.add_argument("--missing", action="store_true", help="only those of tools not found on this machine")
    sub.add_parser("update", help="git pull the course, then refresh your workspace without losing your edits")
    pr = sub.add_parser("prepare", help="sync workspace/ and the kernel settings, then exec a command (Docker path)")
    pr.add_argument("command", nargs=argparse.REMAINDER)
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
            with locked(lab, "make setup"):
                if args.venv:
                    venvs.setup(lab, tuple(args.venv))
                else:
                    setup(lab, everything=args.all)
        elif args.cmd == "up":
            with locked(lab, "make up"):
                up(lab)
        elif args.cmd == "lab":
            with locked(lab, "make lab"):
                start_lab(lab)
        elif args.cmd == "down":
            with locked(lab, "make stop-all" if args.all else "make stop"):
                down(lab, everything=args.all, force=args.force)
        elif args.cmd == "status":
            return status(lab)
        elif args.cmd == "logs":
            logs(lab)
        elif args.cmd == "env":
            print("".join(f"export {k}={v}\n" for k, v in lab.aws_env().items()), end="")
        elif args.cmd == "apt-packages":
            wanted = [t for t in tools.TOOLS.values() if t.kind == "apt"]
            if args.missing:
                wanted = [t for t in wanted if tools.which(t.name, lab) is None]
            print(" ".join(dict.fromkeys(p for t in wanted for p in t.apt)))
        elif args.cmd == "update":
            workspace.update()
        elif args.cmd == "prepare":
            report = workspace.sync(workspace.root(lab))
            if report["added"]:
                say(f"workspace/: {len(report['added'])} notebooks copied (your work goes there)")
            jupyter.settings(lab)
            os.environ.update(jupyter.kernel_env(lab))
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
            if cmd:
                os.execvp(cmd[0], cmd)
        elif args.cmd == "reset":
            with locked(lab, "make reset"):
                reset(lab, progress=args.progress)
        elif args.cmd in ("cluster", "cluster-down"):
            from . import cluster

            cluster.up() if args.cmd == "cluster" else cluster.down()
        elif args.cmd == "run":
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not cmd:
                raise LabError("`run` needs a command after --")
            with locked(lab, "a test run"):
                return run(lab, cmd)
    except LabError as e:
        print(f"[lab] ERROR: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
