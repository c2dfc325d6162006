"""Lesson 01 (the cloud mindset and the 12-factor app): the lab side and the checks.

The helpers start the legacy and the 12-factor service as real processes (:mod:`cloudlab.procs`),
stop them the way a platform does (SIGTERM, a grace period, SIGKILL) and read their JSON logs;
``checks`` holds the four exercise checks. Every resource is named ``l01-...``, so
``cloudlab.reset_lesson("01")`` removes exactly this lesson's.
"""

from __future__ import annotations

import json
import shlex
import signal
import time
from pathlib import Path
from typing import NamedTuple

from .. import aws, net, procs
from ..lab import ROOT, Lab

BUCKET = "l01-orders"
QUEUE = "l01-orders"
LESSON = "01"
LEGACY_PORT = 8081  # hard-coded in app/legacy_service.py, on purpose: that is one of its problems
WORKER_FILE = "l01_worker.py"


class PortTaken(RuntimeError):
    """A port the lesson needs is taken; the message says by what, probably, and what to do."""

    def _render_traceback_(self):
        return [f"\x1b[31mPortTaken\x1b[0m: {self}"]


def backing_services() -> tuple[str, str]:
    """Create (or find) the lesson's bucket and queue; safe to run any number of times."""
    s3, sqs = aws.client("s3"), aws.client("sqs")
    try:
        s3.head_bucket(Bucket=BUCKET)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=BUCKET)
    url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    return BUCKET, url


def work_dir() -> Path:
    return Lab.from_env().work_dir(LESSON)


def service_env(bucket: str, queue_url: str, port: int, **extra) -> dict[str, str]:
    env = {"ORDERS_BUCKET": bucket, "ORDERS_QUEUE_URL": queue_url, "PORT": str(port)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def shell_line(env: dict[str, str], args: list[str]) -> str:
    """The command a person would type for this process: ``VAR=value ... python -m app.service``."""
    return " ".join([f"{k}={shlex.quote(str(v))}" for k, v in env.items()] + [shlex.quote(str(a)) for a in args])


def start_service(
    name: str, bucket: str, queue_url: str, port: int | None = None, quiet: bool = True, **extra
) -> tuple[procs.Proc, str]:
    """Start app/service.py as its own process (a new 'instance'); returns (process, base URL).

    ``quiet=False`` prints the command it runs, so it can be repeated in a terminal.
    """
    port = port or net.free_port()
    env = service_env(bucket, queue_url, port, **extra)
    if not quiet:
        print("$", shell_line(env, ["python", "-m", "app.service"]))
    p = procs.start(
        f"l01-{name}",
        ["-m", "app.service"],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/health",
        cwd=str(ROOT),
    )
    return p, f"http://127.0.0.1:{port}"


def try_config(settings: dict[str, str], wait: float = 3.0) -> tuple[int | None, list[dict]]:
    """Start app/service.py once with exactly these ORDERS_*/PORT/LOG_LEVEL settings; (exit code, JSON log).

    A refused config ends the process at once (exit code 78, EX_CONFIG); an accepted one starts serving,
    so it is stopped with SIGTERM after ``wait`` seconds (exit code 0). Prints the command it runs.
    """
    import os
    import subprocess
    import sys

    own = ("ORDERS_BUCKET", "ORDERS_QUEUE_URL", "PORT", "LOG_LEVEL", "FAULT_RATE", "EXTRA_LATENCY_MS")
    env = {k: v for k, v in os.environ.items() if k not in own}
    env.update({k: str(v) for k, v in settings.items()})
    print("$", shell_line(settings, ["python", "-m", "app.service"]))
    p = subprocess.Popen(
        [sys.executable, "-m", "app.service"], env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = p.communicate(timeout=wait)
    except subprocess.TimeoutExpired:
        p.terminate()
        out, _ = p.communicate(timeout=10)
    return p.returncode, json_lines(out.decode(errors="replace"))


def start_legacy(delay: float = 3.0, quiet: bool = True) -> tuple[procs.Proc, float]:
    """Start the legacy service in a scratch directory; returns (process, seconds until it answered).

    Its port is hard-coded (8081): when something else holds it, say so instead of talking to a stranger.
    """
    procs.stop("l01-legacy", grace=0.5)  # our own earlier copy, if the cell runs twice (it ignores SIGTERM)
    if net.port_in_use(LEGACY_PORT):
        raise PortTaken(
            f"port {LEGACY_PORT} is taken, and the legacy service cannot use another one: its port is "
            "hard-coded (that is one of its problems). Another copy is probably running, from another "
            f"notebook or lab: `ss -ltnp 'sport = :{LEGACY_PORT}'` shows which process; stop it "
            "(or `make stop`), then re-run this cell."
        )
    wd = work_dir() / "legacy"
    wd.mkdir(exist_ok=True)
    if not quiet:
        print(
            f"$ cd {wd.relative_to(ROOT) if wd.is_relative_to(ROOT) else wd} && python app/legacy_service.py {delay:g}"
        )
    t0 = time.monotonic()
    p = procs.start(
        "l01-legacy",
        [ROOT / "app" / "legacy_service.py", str(delay)],
        ready_url=f"http://127.0.0.1:{LEGACY_PORT}/health",
        timeout=delay + 10,
        cwd=str(wd),
    )
    return p, time.monotonic() - t0


class Stopped(NamedTuple):
    """How a process ended: its exit code, how long the stop took, whether SIGKILL was needed."""

    code: int | None
    seconds: float
    killed: bool

    def __repr__(self) -> str:  # what a cell shows when it ends with timed_stop(...)
        how = "SIGKILL after the grace period" if self.killed else "SIGTERM was enough"
        return f"stopped in {self.seconds:.2f} s, exit code {self.code} ({how})"


def timed_stop(name: str, grace: float = 3.0, quiet: bool = True) -> Stopped:
    """SIGTERM, wait ``grace`` s, then SIGKILL: (exit code, seconds, needed SIGKILL).

    What a platform does: ``kill -TERM <pid>``, wait, then ``kill -KILL <pid>`` (``quiet=False`` prints
    those commands). The exit code is Python's (``Popen.returncode``): negative when a signal ended the
    process (-9 = SIGKILL).
    """
    p = procs.running(name)
    if not quiet and p:
        print(f"$ kill -TERM {p.pid}   # then, if it still runs after {grace:g} s: kill -KILL {p.pid}")
    t0 = time.monotonic()
    code = procs.stop(name, grace=grace)
    took = time.monotonic() - t0
    return Stopped(code, took, took >= grace)


def shell_exit_code(code: int | None) -> int | None:
    """The same exit as a shell, Docker or Kubernetes report it: a signal N becomes 128 + N (-9 -> 137)."""
    if code is None or code >= 0:
        return code
    return 128 - code


def describe_exit(code: int | None) -> str:
    """One line for a process's end: Python's code, and what `docker ps` / Kubernetes would show."""
    if code is None:
        return "exit code unknown (the process was not started by this kernel)"
    if code >= 0:
        return f"exit code {code} (the same in a shell, Docker and Kubernetes)"
    name = signal.Signals(-code).name
    return (
        f"exit code {code} in Python (killed by {name}); a shell, Docker and Kubernetes report "
        f"128 + {-code} = {shell_exit_code(code)}"
    )


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def worker_path() -> Path:
    """Where the exercise's %%writefile cell puts the worker: next to the notebook (the kernel's cwd)."""
    return Path.cwd() / WORKER_FILE


from .checks import check_backing, check_config, check_logs, check_worker  # noqa: E402,F401
