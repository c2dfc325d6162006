"""`make status` and `make logs`: what runs, what stopped and why, then (logs) the tails without routine noise.

Both start from the same summary: the lab's own processes (LocalStack, moto, JupyterLab, the lab's dockerd) and
every process a lesson started (haproxy, a fleet, PostgreSQL, the IAM emulator ... : the PID files in
``run/procs``), each running or stopped, and for a stopped one *why*: stopped by a lab command (the lab writes a
``=== <time> stopped by `make stop``` line into the log when it stops something) or the last words of its log
(its exit line). `make logs` then shows the tail of each log with the routine lines left out (one line per
request from the emulators, dockerd's gRPC chatter), and says how many it left out. Standard library only.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from . import Lab, docker, emulators, jupyter, process
from .emulators import EMULATORS

BANNER = re.compile(r"^=== (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$")
# One line per request, or housekeeping: true of every healthy lab, so left out of `make logs`.
NOISE = [
    re.compile(r'^\S+ - - \[[^\]]+\] "[A-Z]+ \S+ HTTP/[\d.]+" [234]\d\d\b'),  # moto (werkzeug): one line a request
    re.compile(r"localstack\.request\.\w+\s*: .*=> [234]\d\d\b"),  # LocalStack: one line a request
    re.compile(r'level=(info|debug) msg="(\[core\]|\[graphdriver\]|loading plugin|ccResolverWrapper|parsed scheme)'),
    re.compile(
        r'level=(info|debug) msg="(Starting up|API listen on|Processing signal|stopping healthcheck|'
        r"Daemon shutdown complete|Loading containers|Default bridge|Restoring containers)"
    ),  # fmt: skip
    re.compile(r"^\[[ID] [\d\- :.]+ \w+\] (\d{3} (GET|POST|PUT|PATCH|DELETE|HEAD) |Kernel (started|shutdown))"),
    # what every start prints: LocalStack's offline warnings, moto's development-server banner
    re.compile(r"localstack\.deprecations|Unable to download local test SSL certificate|This is a development server"),
    re.compile(r"Press CTRL\+C to quit"),
]
INSTALL_LOG = "install-"  # the environments' install logs: not processes


def routine(line: str) -> bool:
    return any(p.search(line) for p in NOISE)


def stopped_note(lab: Lab, name: str, by: str) -> None:
    """Write into ``name``'s log that a lab command stopped it (so `make logs` can say why it is not running)."""
    f = lab.logfile(name)
    if f.exists():
        with open(f, "a") as fh:
            fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} stopped by {by}\n")


def _last_run(path: Path) -> list[str]:
    """The lines of the log since its last start banner (a lesson process's log holds only its last run)."""
    lines = process.tail(path, 400).splitlines()
    starts = [i for i, ln in enumerate(lines) if BANNER.match(ln) and "stopped by" not in ln]
    return lines[starts[-1] :] if starts else lines


def why_stopped(path: Path) -> str:
    """'stopped by `make stop` at <time>', or the exit line: the last words of the log that are not routine."""
    if not path.exists():
        return "not started in this lab yet"
    lines = [ln for ln in _last_run(path) if ln.strip()]
    for ln in reversed(lines):
        m = BANNER.match(ln)
        if m and m.group(2).startswith("stopped by"):
            return f"{m.group(2)} at {m.group(1)}"
        if m:
            break
        if not routine(ln):
            return f"exit line: {ln.strip()[:160]}"
    return "its log says nothing about why"


@dataclass
class Entry:
    name: str
    state: str  # healthy | running | running, not answering | stopped | exited
    where: str = ""  # URL, socket or command line
    pid: int | None = None
    why: str = ""  # for a process that is not running

    @property
    def up(self) -> bool:
        return self.state in ("healthy", "running")


def _cmdline(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    words = [a.decode(errors="replace") for a in argv if a]
    if words:
        words[0] = Path(words[0]).name
    return " ".join(words)[:90]


def lab_entries(lab: Lab) -> list[Entry]:
    """The lab's own processes: the emulators (answering?), JupyterLab, and the lab's dockerd if it ever ran."""
    out = []
    for name in EMULATORS:
        pid = emulators.read_pid(lab, name)
        ok = emulators.HEALTHY[name](lab)
        state = "healthy" if ok else ("running, not answering" if pid else "stopped")
        out.append(Entry(name, state, getattr(lab, f"{name}_url"), pid))
    jpid = emulators.read_pid(lab, "jupyter")
    out.append(Entry("jupyter", "running" if jpid else "stopped", jupyter.url(lab) if jpid else "", jpid))
    dpid = process.read_pidfile(lab.pidfile("docker"))
    if dpid or lab.logfile("docker").exists():
        where = f"unix://{docker.lab_socket(lab)}"
        out.append(Entry("dockerd", "running" if dpid else "stopped", where, dpid))
    for e in out:
        if not e.up:
            e.why = why_stopped(lab.logfile("docker" if e.name == "dockerd" else e.name))
    return out


def lesson_entries(lab: Lab) -> list[Entry]:
    """Every process a lesson started that has a PID file: running, or exited (with its exit line)."""
    out = []
    for pidfile in sorted(lab.procs_dir.glob("*.pid")) if lab.procs_dir.exists() else []:
        pid = process.read_pidfile(pidfile)
        if pid:
            out.append(Entry(pidfile.stem, "running", _cmdline(pid), pid))
        else:
            out.append(Entry(pidfile.stem, "exited", why=why_stopped(lab.logfile(pidfile.stem))))
    return out


def _rows(entries: list[Entry]) -> list[str]:
    lines = []
    for e in entries:
        pid = f"pid {e.pid}" if e.pid else ""
        lines.append(f"  {e.name:<14} {e.state:<24} {pid:<10} {e.where}".rstrip())
        if e.why:
            lines.append(f"  {'':<14} {e.why}")
    return lines


def summary(lab: Lab) -> tuple[list[str], list[Entry]]:
    """The lines of the summary, and every entry (the lab's own first)."""
    own, lesson = lab_entries(lab), lesson_entries(lab)
    lines = [f"The lab ({lab.state}):", *_rows(own)]
    lines += [
        "Lesson processes:",
        *(_rows(lesson) or ["  none (a lesson starts them: haproxy, a fleet, PostgreSQL ...)"]),
    ]
    return lines, own + lesson


def cloud_down_reason(entries: list[Entry]) -> str:
    """'' when both emulators answer; else one line: which ones do not, and what to run."""
    bad = [f"{e.name} {e.state}" for e in entries if e.name in EMULATORS and e.state != "healthy"]
    if not bad:
        return ""
    return (
        f"The local cloud is down ({', '.join(bad)}): `make lab` starts what is missing; `make logs` shows why it "
        "stopped. Your notebooks, variables and progress are kept; emulator resources and lesson processes are not."
    )


def logs(lab: Lab, lines: int = 15) -> None:
    """`make logs`: the summary, then the tail of each log of the lab and of the lesson processes it lists,
    without routine lines (the logs of lesson processes stopped earlier stay in the folder, counted)."""
    logdir = lab.state / "logs"
    files = sorted(p for p in logdir.glob("*.log") if not p.name.startswith(INSTALL_LOG)) if logdir.exists() else []
    if not files:
        print(f"No logs yet in {logdir}: the lab has not run here. `make lab` starts it.")
        return
    head, entries = summary(lab)
    print("\n".join(head))
    own = ("localstack", "moto", "jupyter", "docker")
    listed = [lab.logfile(n) for n in own] + [lab.logfile(e.name) for e in entries if e.name not in (*own, "dockerd")]
    shown = [f for f in dict.fromkeys(listed) if f.exists()]
    for f in shown:
        run = _last_run(f)
        kept = [ln for ln in run if ln.strip() and not routine(ln)]
        left_out = sum(1 for ln in run if ln.strip() and routine(ln))
        print(f"\n==> {f} <==  (last {min(lines, len(kept))} lines of its last run", end="")
        print(f"; {left_out} routine lines left out: requests, gRPC chatter)" if left_out else ")")
        print("\n".join(kept[-lines:]) or ("  (nothing but routine lines)" if left_out else "  (empty)"))
    older = len(files) - len(shown)
    if older:
        print(f"\n({older} more logs of lesson processes that stopped earlier are in {logdir})")
