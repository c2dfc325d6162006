"""`make status` and `make logs` (items 15 and 16 of issue 19): a summary first (what runs, what stopped and why),
lesson processes included; `make logs` leaves routine lines out; `make status` fails with the reason as its last
line and without make's own error line."""

import os
import signal
import subprocess
import sys

import pytest

from cloudlab import net
from cloudlab.lab import ROOT, Lab, cli, process, report

LS = "INFO --- [   asgi_gw_0] localstack.request.aws     :"
REQUESTS = [f"2026-12-06T02:38:{i:02d}.149  {LS} AWS s3.ListBuckets => 200" for i in range(40)]
WERKZEUG = [f'127.0.0.1 - - [06/Dec/2026 02:38:{i:02d}] "POST / HTTP/1.1" 200 -' for i in range(30)]
GRPC = [
    f'time="2026-12-06T02:39:{i:02d}Z" level=info msg="[core] [Channel #{i}] Channel Connectivity change to READY" '
    "module=grpc"
    for i in range(30)
]


def lonely_lab(tmp_path) -> tuple[Lab, dict]:
    """A lab whose ports nobody listens on, and whose state is empty."""
    env = {
        **os.environ,
        "CLOUDLAB_STATE_DIR": str(tmp_path / "state"),
        "CLOUDLAB_PROFILE": "test",
        **{f"CLOUDLAB_{n}_PORT": str(net.free_port()) for n in ("LOCALSTACK", "MOTO", "JUPYTER")},
    }
    return Lab.from_env("test", env), env


def write_log(lab: Lab, name: str, lines: list[str]) -> None:
    f = lab.logfile(name)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("\n".join(lines) + "\n")


def a_lesson_that_ran(lab: Lab) -> subprocess.Popen:
    """One lesson process that runs (l99-web-a) and one that crashed (l99-lb: its PID file stayed)."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    web = process.spawn(sleeper, lab.logfile("l99-web-a"), pidfile=lab.procs_dir / "l99-web-a.pid")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (lab.procs_dir / "l99-lb.pid").write_text(dead.stdout)
    write_log(lab, "l99-lb", ["[NOTICE] haproxy started", "[ALERT] cannot bind socket [127.0.0.1:8080]"])
    return web


def at_a_terminal() -> None:
    """make as a learner's shell starts it: SIGQUIT at its default. A test run started as a script's background job
    inherits it ignored, and then make cannot take the recipe's quiet way out (the Makefile's fallback: exit 1)."""
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def test_make_status_fails_even_where_sigquit_is_ignored(tmp_path):
    lab, env = lonely_lab(tmp_path)
    out = subprocess.run(
        ["make", "status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGQUIT, signal.SIG_IGN),
    )
    assert out.returncode != 0, out.stdout[-500:] + out.stderr
    assert "The local cloud is down" in out.stdout  # then make's own lines (its error; "Leaving directory" in make[1])


def test_make_status_with_the_cloud_down_gives_the_reason_last_without_makes_error_line(tmp_path):
    lab, env = lonely_lab(tmp_path)
    web = a_lesson_that_ran(lab)
    try:
        out = subprocess.run(
            ["make", "status"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, preexec_fn=at_a_terminal
        )
    finally:
        process.stop_pid(web.pid)
    text = out.stdout + out.stderr
    assert out.returncode != 0, "the cloud is down: `make status` fails"
    assert "make: ***" not in text and "Error 1" not in text, text
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("The local cloud is down") and "`make lab`" in last, last
    assert "l99-web-a" in out.stdout and "running" in out.stdout, "lesson processes are listed"
    assert "l99-lb" in out.stdout and "exited" in out.stdout and "cannot bind socket" in out.stdout
    assert out.stdout.index("Your progress") < out.stdout.index(last), "progress before the reason"


def test_status_says_the_cloud_runs_last_when_it_does(tmp_path, capsys, monkeypatch):
    lab, _ = lonely_lab(tmp_path)
    monkeypatch.setattr(report.emulators, "HEALTHY", {"localstack": lambda lab: True, "moto": lambda lab: True})
    assert cli.status(lab) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("The local cloud runs")


def test_make_logs_leads_with_a_summary_and_leaves_routine_lines_out(tmp_path, capsys):
    lab, _ = lonely_lab(tmp_path)
    write_log(
        lab,
        "localstack",
        ["=== 2026-12-06 02:38:11 starting localstack", "Ready.", *REQUESTS,
         "2026-12-06T02:40:00.000  INFO --- [   asgi_gw_0] localstack.request.aws     : AWS sqs.SendMessage => 500 "
         "(InternalError)",
         "=== 2026-12-06 02:41:00 stopped by `make stop`"],
    )  # fmt: skip
    write_log(
        lab,
        "moto",
        ["=== 2026-12-06 02:38:17 starting moto", " * Running on http://127.0.0.1:5050", *WERKZEUG,
         "OSError: [Errno 24] Too many open files"],
    )  # fmt: skip
    write_log(
        lab,
        "docker",
        ["=== 2026-12-06 02:39:00 starting dockerd", *GRPC,
         'time="2026-12-06T02:40:00Z" level=error msg="failed to mount overlay: no such device"'],
    )  # fmt: skip
    web = a_lesson_that_ran(lab)
    try:
        cli.logs(lab)
    finally:
        process.stop_pid(web.pid)
    out = capsys.readouterr().out
    head = out.split("==>")[0]
    assert head.startswith("The lab ("), out[:300]
    assert "stopped by `make stop` at 2026-12-06 02:41:00" in head, head
    assert "exit line: OSError: [Errno 24] Too many open files" in head, head
    assert "dockerd" in head and "level=error" in head and "failed to mount overlay" in head
    assert "Lesson processes:" in head and "l99-web-a" in head and "cannot bind socket" in head
    assert "s3.ListBuckets => 200" not in out and '"POST / HTTP/1.1" 200' not in out and "[core]" not in out
    assert "sqs.SendMessage => 500" in out, "an emulator's error is not routine"
    assert "41 routine lines left out" in out or "40 routine lines left out" in out, out
    assert len(out.splitlines()) < 80, "a summary and short tails, not 200 lines"


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1 - - [06/Dec/2026 02:38:18] "GET /moto-api/ HTTP/1.1" 200 -',
        "2026-12-06T02:38:17.149  INFO --- [   asgi_gw_0] localstack.request.aws     : AWS s3.HeadBucket => 404 "
        "(NoSuchBucket)",
        'time="2026-12-06T02:39:00Z" level=info msg="[core] [Server #7] Server created" module=grpc',
    ],
)
def test_routine_lines(line):
    assert report.routine(line)


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1 - - [06/Dec/2026 02:38:18] "POST / HTTP/1.1" 500 -',
        "Traceback (most recent call last):",
        'time="2026-12-06T02:39:00Z" level=error msg="[core] failed"',
        "=== 2026-12-06 02:38:11 starting localstack",
    ],
)
def test_lines_that_matter_are_kept(line):
    assert not report.routine(line)


def test_a_lab_command_that_stops_something_says_so_in_its_log(tmp_path):
    lab, _ = lonely_lab(tmp_path)
    proc = process.spawn([sys.executable, "-c", "import time; time.sleep(60)"], lab.logfile("l99-w"),
                         pidfile=lab.procs_dir / "l99-w.pid", banner="starting l99-w")  # fmt: skip
    assert cli.stop_lesson_processes(lab) == ["l99-w"]
    proc.wait(5)
    assert report.why_stopped(lab.logfile("l99-w")).startswith("stopped by `make stop` at ")
