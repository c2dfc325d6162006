"""The lab as a learner meets it: one lab command at a time, `make stop` that keeps JupyterLab (and
its URL), `make stop-all` that will not lose open work, loopback only, and a workspace that makes
course updates painless."""

import json
import os
import subprocess
import sys
import time

import pytest

from cloudlab import net
from cloudlab.lab import ROOT, Lab, LabError, cli, emulators, jupyter, process, workspace


def mini_lab(tmp_path, offset):
    offset += int(os.environ.get("CLOUDLAB_PORT_OFFSET") or 0)  # labs of several helpers side by side
    env = {"CLOUDLAB_STATE_DIR": str(tmp_path / "state"), "CLOUDLAB_PORT_OFFSET": str(offset)}
    return Lab.from_env("test", env), env


# ------------------------------------------------------------------ one command at a time
def test_a_second_command_waits_for_the_first_and_says_what_runs(tmp_path):
    lab, env = mini_lab(tmp_path, 3000)
    full = {**os.environ, **env, "CLOUDLAB_PROFILE": "test"}
    with cli.locked(lab, "make lab"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "cloudlab.lab", "down"],
            env=full,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(1.5)
        assert proc.poll() is None, "`make stop` ran while `make lab` held the lab"
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "waiting: `make lab`" in out and "is running on this lab" in out


def test_a_stuck_lock_ends_in_a_plain_error(tmp_path):
    lab, env = mini_lab(tmp_path, 3000)
    full = {**os.environ, **env, "CLOUDLAB_PROFILE": "test", "CLOUDLAB_LOCK_WAIT": "1"}
    with cli.locked(lab, "make reset"):
        out = subprocess.run(
            [sys.executable, "-m", "cloudlab.lab", "down"],
            env=full,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.returncode == 2 and "still holds the lab" in out.stderr and "Traceback" not in out.stderr


# ------------------------------------------------------------------ stop keeps your work
@pytest.mark.timeout(120)
def test_stop_keeps_jupyterlab_and_stop_all_refuses_while_notebooks_are_open(tmp_path, monkeypatch):
    lab, env = mini_lab(tmp_path, 3100)
    # monkeypatch puts back the shard's own state dir afterwards (`make test` sets one per shard)
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", env["CLOUDLAB_STATE_DIR"])
    try:
        url = jupyter.start(lab)
        token = jupyter.token(lab)
        worker = process.spawn(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            lab.logfile("l99-w"),
            pidfile=lab.procs_dir / "l99-w.pid",
        )
        cli.down(lab)  # `make stop`
        assert worker.wait(timeout=10) is not None, "lesson processes stop with `make stop`"
        assert jupyter.answering(lab) and jupyter.url(lab) == url, "JupyterLab and its URL survive `make stop`"
        session = net.request(
            "POST",
            f"http://127.0.0.1:{lab.jupyter_port}/api/sessions?token={token}",
            {"path": "notebooks/x.ipynb", "type": "notebook", "name": "", "kernel": {"name": "python3"}},
        )
        assert session.status == 201, session.body[:300]
        with pytest.raises(LabError, match=r"notebooks/x.ipynb[\s\S]*Save All[\s\S]*FORCE=1"):
            cli.down(lab, everything=True)
        assert jupyter.answering(lab)
        cli.down(lab, everything=True, force=True)
        assert not jupyter.answering(lab)
        assert jupyter.start(lab) == url, "a restarted JupyterLab keeps the token: the open tab's URL still works"
    finally:
        jupyter.stop(lab)


# ------------------------------------------------------------------ loopback only
@pytest.mark.lab
@pytest.mark.timeout(120)
def test_everything_the_lab_starts_listens_on_loopback_only():
    lab = Lab.from_env()
    started = jupyter.spawn(lab)
    try:
        jupyter.start(lab, started)
        socks = cli.listening_report(lab)
        owners = {who for _, _, who in socks}
        assert {"localstack", "moto", "jupyter"} <= owners, socks
        ports = {port for _, port, _ in socks}
        assert {lab.localstack_port, lab.moto_port, lab.jupyter_port} <= ports
        wide = [(ip, port, who) for ip, port, who in socks if not process.is_loopback(ip)]
        assert wide == [], f"listening beyond loopback: {wide}"
        # the same answer from the kernel's own view of the sockets (ss), for the lab's ports
        ss = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        for port in (lab.localstack_port, lab.moto_port, lab.jupyter_port):
            local = [ln.split()[3] for ln in ss.splitlines() if ln.split()[3].rsplit(":", 1)[-1] == str(port)]
            assert local and all(a.startswith(("127.0.0.1:", "[::1]:")) for a in local), (port, local)
    finally:
        if started is not None:
            jupyter.stop(lab)


def test_the_loopback_rule_knows_its_addresses():
    assert process.is_loopback("127.0.0.1") and process.is_loopback("::1") and process.is_loopback("::ffff:127.0.0.1")
    assert not process.is_loopback("0.0.0.0") and not process.is_loopback("::") and not process.is_loopback("10.0.0.5")
    assert process._hex_addr("0100007F:1F90") == ("127.0.0.1", 8080)
    assert process._hex_addr("00000000:11D6") == ("0.0.0.0", 4566)


# ------------------------------------------------------------------ the workspace
def nb(*sources, outputs=()):
    cells = [
        {"cell_type": "code", "source": s, "metadata": {}, "outputs": list(outputs), "execution_count": None}
        for s in sources
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)


def git(cwd, *args):
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_edit_pull_and_keep_both(tmp_path):
    origin = tmp_path / "origin"
    for folder in ("notebooks", "exercises", "solutions"):
        (origin / folder).mkdir(parents=True)
    (origin / "notebooks" / "01_a.ipynb").write_text(nb("print('lesson v1')\n# see ../exercises/01_a.ipynb"))
    (origin / "exercises" / "01_a.ipynb").write_text(nb("raise NotImplementedError()"))
    (origin / "solutions" / "01_a.ipynb").write_text(nb("x = 1"))
    (origin / ".gitignore").write_text((ROOT / ".gitignore").read_text())  # the course's: workspace/ is ignored
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "v1")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    ws = clone / "workspace"
    first = workspace.sync(ws, clone)
    assert sorted(first["added"]) == [
        "exercises/01_a.exercises.ipynb",
        "notebooks/01_a.ipynb",
        "solutions/01_a.solutions.ipynb",
    ]
    # the learner answers the exercise, and runs the lesson (outputs only)
    (ws / "exercises" / "01_a.exercises.ipynb").write_text(nb("x = 42  # my answer"))
    (ws / "notebooks" / "01_a.ipynb").write_text(
        nb("print('lesson v1')\n# see ../exercises/01_a.ipynb", outputs=[{"output_type": "stream", "text": "v1"}])
    )
    assert git(clone, "status", "--porcelain") == "", "the learner's work touches no tracked file"
    # the course moves on
    (origin / "notebooks" / "01_a.ipynb").write_text(nb("print('lesson v2')"))
    (origin / "exercises" / "01_a.ipynb").write_text(nb("# a clearer task\nraise NotImplementedError()"))
    (origin / "notebooks" / "02_b.ipynb").write_text(nb("print('new lesson')"))
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "v2")
    report = workspace.update(ws, clone)
    assert "x = 42  # my answer" in (ws / "exercises" / "01_a.exercises.ipynb").read_text(), "the answer is kept"
    assert "a clearer task" in (ws / "exercises" / "01_a.exercises.updated.ipynb").read_text()
    assert "lesson v2" in (ws / "notebooks" / "01_a.ipynb").read_text(), "an unedited copy takes the new version"
    assert (ws / "notebooks" / "02_b.ipynb").exists()
    assert report["kept"] == ["exercises/01_a.exercises.ipynb"]
    assert "notebooks/01_a.ipynb" in report["refreshed"] and "notebooks/02_b.ipynb" in report["added"]
    assert "lesson v2" in (clone / "notebooks" / "01_a.ipynb").read_text(), "git pull took the course update"


def test_links_between_folders_follow_the_workspace_names(tmp_path):
    course = tmp_path / "c"
    for folder in ("notebooks", "exercises", "solutions"):
        (course / folder).mkdir(parents=True)
    md = {
        "cell_type": "markdown",
        "metadata": {},
        "source": "[ex](../exercises/01_a.ipynb) [sol](../solutions/01_a.ipynb)",
    }
    (course / "notebooks" / "01_a.ipynb").write_text(
        json.dumps({"cells": [md], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    workspace.sync(tmp_path / "ws", course)
    text = (tmp_path / "ws" / "notebooks" / "01_a.ipynb").read_text()
    assert "../exercises/01_a.exercises.ipynb" in text and "../solutions/01_a.solutions.ipynb" in text


def test_update_refuses_when_tracked_files_were_edited(tmp_path):
    origin = tmp_path / "o"
    (origin / "notebooks").mkdir(parents=True)
    (origin / "notebooks" / "01_a.ipynb").write_text(nb("1"))
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "v1")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    (clone / "notebooks" / "01_a.ipynb").write_text(nb("edited in place"))
    with pytest.raises(LabError, match="local changes[\\s\\S]*workspace/"):
        workspace.update(clone / "workspace", clone)


def test_logs_before_the_first_lab_say_so(tmp_path, capsys):
    cli.logs(Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path)}))
    assert "No logs yet" in capsys.readouterr().out


def test_status_fails_when_the_cloud_is_down(tmp_path, capsys):
    lab, _ = mini_lab(tmp_path, 3200)
    assert cli.status(lab) == 1
    assert "`make lab` starts what is missing" in capsys.readouterr().out
    assert emulators.read_pid(lab, "localstack") is None


@pytest.mark.lab
def test_s3_objects_live_in_this_labs_state_not_a_machine_wide_folder():
    """LocalStack 4.14 keeps S3 data in /tmp/localstack-s3-storage for every lab on the machine unless told
    otherwise: two labs with a bucket of the same name would delete each other's objects."""
    import cloudlab

    lab = Lab.from_env()
    s3 = cloudlab.client("s3")
    name = f"l99-storage-{os.getpid()}"
    s3.create_bucket(Bucket=name)
    try:
        s3.put_object(Bucket=name, Key="k", Body=b"v")
        assert (lab.state / "localstack" / "s3-storage" / name).exists()
    finally:
        s3.delete_object(Bucket=name, Key="k")
        s3.delete_bucket(Bucket=name)


# ------------------------------------------------------------------ a lesson's processes
SLOW_SERVER = """
import http.server, sys, time
t0 = time.monotonic()
while time.monotonic() - t0 < float(sys.argv[2]):  # a slow start: CPU work (imports on a busy machine)
    pass
time.sleep(float(sys.argv[3]))  # then, maybe, a wait on something that never comes
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


@pytest.mark.parametrize(
    "work, idle, answers, said",
    [
        (2.5, 0, True, "answered"),  # still working when the timeout ends: it gets more time
        (0, 30, False, "none in the last"),  # idle: failed at the timeout, not later
        (0.5, 30, False, "none in the last"),  # worked, then hung
    ],
)
def test_a_process_still_starting_gets_more_time_and_a_hung_one_does_not(
    tmp_path, monkeypatch, work, idle, answers, said
):
    from cloudlab import procs

    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path / "state"))
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SERVER)
    port = net.free_port()
    t0 = time.monotonic()
    try:
        procs.start("l99-slow", [script, port, work, idle], ready_url=f"http://127.0.0.1:{port}/", timeout=1)
        ok, msg = True, "answered"
    except RuntimeError as e:
        ok, msg = False, str(e)
    finally:
        procs.stop("l99-slow", grace=1)
    assert ok is answers and said in msg, msg
    if not answers:
        assert time.monotonic() - t0 < 3.5, "a hung process gets no more than one extra window"


def test_a_process_that_exits_fails_at_once(tmp_path, monkeypatch):
    from cloudlab import procs

    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path / "state"))
    port = net.free_port()
    with pytest.raises(RuntimeError, match="it exited"):
        procs.start("l99-gone", ["-c", "print('bad config')"], ready_url=f"http://127.0.0.1:{port}/", timeout=5)


def test_a_start_that_fails_stops_its_own_process_not_the_one_now_under_its_name(tmp_path, monkeypatch):
    """Lesson 10's release pipeline and a responder deploy on one colour: the one whose start fails must not take
    the other's process down with it (the PID file names the newer one by then)."""
    import threading

    from cloudlab import procs

    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path / "state"))
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SERVER)
    port = net.free_port()
    failed = []

    def doomed():  # idle, never answers: fails after one window
        try:
            procs.start("l99-colour", [script, port, 0, 30], ready_url=f"http://127.0.0.1:{port}/", timeout=1.5)
        except RuntimeError as e:
            failed.append(str(e))

    first = threading.Thread(target=doomed)
    first.start()
    time.sleep(0.5)  # meanwhile another process starts under the same name (the PID file now names it)
    other = procs.Proc("l99-colour", 0)
    try:
        popen = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
        (procs._dir() / "l99-colour.pid").write_text(f"{popen.pid}\n")
        other = procs.Proc("l99-colour", popen.pid, popen)
        first.join(10)
        assert failed and "none in the last" in failed[0]
        assert other.alive(), "the failed start stopped the process that now has its name"
        assert procs.running("l99-colour").pid == popen.pid
    finally:
        if other.pid:
            process.stop_pid(other.pid, popen=other.popen)
