import os
import socket
import subprocess
import sys
import time

import pytest

from cloudlab import lab as L
from cloudlab.lab import cli, emulators, process, venvs


def test_profiles_have_distinct_ports_and_state():
    a, b = L.Lab.from_env("lab", {}), L.Lab.from_env("test", {})
    assert {a.localstack_port, a.moto_port}.isdisjoint({b.localstack_port, b.moto_port})
    assert a.state != b.state


def test_ports_and_state_can_be_overridden():
    lab = L.Lab.from_env("test", {"CLOUDLAB_LOCALSTACK_PORT": "4999", "CLOUDLAB_STATE_DIR": "/tmp/x-lab"})
    assert lab.localstack_port == 4999 and str(lab.state) == "/tmp/x-lab"
    assert lab.aws_env()["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4999"


@pytest.mark.parametrize("bad", ["abc", "80", "70000"])
def test_bad_port_is_a_clear_error(bad):
    with pytest.raises(L.LabError, match="CLOUDLAB_MOTO_PORT"):
        L.Lab.from_env("lab", {"CLOUDLAB_MOTO_PORT": bad})


def test_unknown_profile():
    with pytest.raises(L.LabError, match="unknown profile"):
        L.Lab.from_env("prod", {})


def test_aws_env_routes_moto_services_with_real_boto3_names():
    import botocore.session

    sess = botocore.session.get_session()
    ids = {str(sess.get_service_model(s).service_id).replace(" ", "_").upper() for s in sess.get_available_services()}
    env = L.Lab.from_env("lab", {}).aws_env()
    for service in L.MOTO_SERVICES:
        assert service in ids, f"{service} is not a boto3 service id: the variable would be ignored"
        assert env[f"AWS_ENDPOINT_URL_{service}"].startswith("http://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"] == "test"
    assert "127.0.0.1" in env["AWS_ENDPOINT_URL"]
    assert not env["AWS_SHARED_CREDENTIALS_FILE"].startswith(os.path.expanduser("~/.aws"))


def test_port_taken_gives_the_fix():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(L.LabError) as e:
            emulators.ensure_port_free(port, "LocalStack", "CLOUDLAB_LOCALSTACK_PORT")
    assert "already taken" in str(e.value) and "CLOUDLAB_LOCALSTACK_PORT" in str(e.value)


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path):
    lab = L.Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path)})
    code = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    pid = emulators.spawn(lab, "stubborn", [sys.executable, "-c", code], dict(os.environ))
    deadline = time.monotonic() + 10
    while "up" not in lab.logfile("stubborn").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    assert emulators.stop_one(lab, "stubborn", grace=0.5) == "stopped"
    assert time.monotonic() - t0 < 5
    assert not process.pid_alive(pid)
    assert emulators.stop_one(lab, "stubborn") == "not running"  # idempotent


def test_stale_pidfile_is_not_running(tmp_path):
    lab = L.Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path)})
    lab.run_dir.mkdir(parents=True)
    lab.pidfile("localstack").write_text("999999\n")
    assert emulators.read_pid(lab, "localstack") is None


def test_find_python_finds_a_313_for_localstack():
    # The machine this course is tested on has one; a learner without gets LabError with instructions.
    py = venvs.find_python(("3.13",))
    if py is None:
        pytest.skip("no Python 3.13 here")
    out = subprocess.run([py, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert out.stdout.strip() == "(3, 13)"


def test_cli_env_prints_exports(capsys):
    assert cli.main(["--profile", "test", "env"]) == 0
    out = capsys.readouterr().out
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in out


def test_cli_errors_are_one_line_not_tracebacks(capsys, monkeypatch):
    monkeypatch.setenv("CLOUDLAB_LOCALSTACK_PORT", "nope")
    assert cli.main(["status"]) == 2
    assert "ERROR" in capsys.readouterr().err


def test_localstack_keeps_its_s3_objects_in_the_lab_state(tmp_path):
    """Not in LocalStack's fixed /tmp/localstack-s3-storage, which every LocalStack on the machine shares."""
    lab = L.Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path)})
    cmd = emulators.localstack_command("/venv/bin/python", lab)
    assert cmd[:2] == ["/venv/bin/python", "-c"] and cmd[-1] == str(tmp_path / "localstack" / "s3-storage")
    assert "DEFAULT_S3_TMP_DIR = sys.argv[1]" in cmd[2] and "localstack.runtime.main import main" in cmd[2]
    compile(cmd[2], "launcher", "exec")


def test_each_lab_gives_localstack_its_own_plugin_cache(tmp_path, monkeypatch):
    """plux writes its entry-point cache in place under XDG_CACHE_HOME: labs starting at once must not share it."""
    lab = L.Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path), "CLOUDLAB_PORT_OFFSET": "7"})
    seen = {}

    class Started(Exception):
        pass

    def spawn(lab_, name, cmd, env):
        seen.update(env)
        raise Started

    monkeypatch.setattr(emulators, "read_pid", lambda *a: None)
    monkeypatch.setattr(emulators, "stop_one", lambda *a: "not running")
    monkeypatch.setattr(emulators, "ensure_port_free", lambda *a: None)
    monkeypatch.setattr(emulators.venvs, "venv_python", lambda *a: "/venv/bin/python")
    monkeypatch.setattr(emulators, "scratch_in_memory", lambda *a: None)
    monkeypatch.setattr(emulators, "spawn", spawn)
    with pytest.raises(Started):
        emulators.start_localstack(lab)
    assert seen["XDG_CACHE_HOME"] == str(tmp_path / "xdg-cache")


@pytest.mark.lab
def test_up_is_idempotent_when_healthy():
    lab = L.Lab.from_env()
    t0 = time.monotonic()
    assert emulators.start_localstack(lab) == "already running"
    assert emulators.start_moto(lab) == "already running"
    assert time.monotonic() - t0 < 5


def test_reset_wipes_state_but_keeps_progress_unless_asked(tmp_path, capsys):
    lab = L.Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path)})
    for sub in ("localstack", "terraform", "work"):
        (tmp_path / sub / "x").mkdir(parents=True)
    (tmp_path / "progress.json").write_text("{}")
    cli.reset(lab)
    assert not any((tmp_path / sub).exists() for sub in ("localstack", "terraform", "work"))
    assert (tmp_path / "progress.json").exists()
    cli.reset(lab, progress=True)
    assert not (tmp_path / "progress.json").exists()
    assert "wiped" in capsys.readouterr().out


def test_the_base_image_tarball_is_built_once_when_two_callers_race(tmp_path, monkeypatch):
    """Two shards of `make test` may ask for the local base image at once: one builds, the other waits."""
    import threading
    from pathlib import Path

    from cloudlab.lab import docker

    monkeypatch.setenv("CLOUDLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(docker.shutil, "which", lambda name: f"/usr/sbin/{name}")
    calls = []
    real_run = subprocess.run

    def fake_run(cmd, *a, **kw):
        if Path(cmd[0]).name == "debootstrap":
            calls.append(cmd)
            time.sleep(0.3)  # long enough for the other thread to arrive
            Path(cmd[-2]).mkdir(parents=True, exist_ok=True)
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return real_run(cmd, *a, **kw)  # tar

    monkeypatch.setattr(docker.subprocess, "run", fake_run)
    results = []
    threads = [threading.Thread(target=lambda: results.append(docker.base_tarball())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and len(results) == 2 and results[0] == results[1] and results[0].exists()


def test_apt_packages_lists_every_apt_tool(capsys):
    from cloudlab.lab import tools

    assert cli.main(["apt-packages"]) == 0
    listed = capsys.readouterr().out.split()
    for tool in tools.TOOLS.values():
        if tool.kind == "apt":
            assert set(tool.apt) <= set(listed), tool.name


def test_localstack_scratch_goes_to_ram_when_there_is_a_tmpfs(tmp_path):
    from cloudlab.lab import emulators

    lab = L.Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path / "state")})
    fsroot, shm = tmp_path / "localstack", tmp_path / "shm"
    fsroot.mkdir()
    assert emulators.scratch_in_memory(lab, fsroot, shm) is None  # no tmpfs: nothing changes
    assert not (fsroot / "tmp").exists()
    shm.mkdir()
    (fsroot / "tmp").mkdir()  # an older lab's scratch on disk
    target = emulators.scratch_in_memory(lab, fsroot, shm)
    assert target.parent == shm and (fsroot / "tmp").is_symlink() and (fsroot / "tmp").resolve() == target
    assert oct(target.stat().st_mode & 0o777) == "0o700", "the lab's private folder"
    (fsroot / "tmp" / "state").mkdir()
    assert (target / "state").is_dir()
    assert emulators.scratch_in_memory(lab, fsroot, shm) == target  # the next start: the same folder, emptied
    assert not (target / "state").exists() and (fsroot / "tmp").resolve() == target


def test_moto_health_does_not_wait_for_a_dump_of_all_its_state(free_port):
    """moto's /moto-api/data.json grows with every resource (megabytes after lesson 03); a health check on it
    timed out and restarted a healthy moto. The check asks for the small dashboard page instead."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cloudlab.lab import emulators

    class Moto(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/moto-api/data.json"):
                time.sleep(5)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port), Moto)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        lab = L.Lab.from_env("test", {"CLOUDLAB_MOTO_PORT": str(free_port)})
        t0 = time.monotonic()
        assert emulators.moto_healthy(lab) and time.monotonic() - t0 < 4  # data.json would answer after 5 s
    finally:
        server.shutdown()
        server.server_close()


def test_reset_finds_terraform_leftovers_but_never_walks_lab_state(tmp_path):
    """Another shard's dockerd deletes its overlay folders while a reset runs: a reset never walks .lab/."""
    (tmp_path / "lessons" / "x" / ".terraform" / "providers").mkdir(parents=True)
    (tmp_path / "lessons" / "x" / "terraform.tfstate").write_text("{}")
    (tmp_path / "lessons" / "x" / "terraform.tfstate.backup").write_text("{}")
    for hidden in (".lab/test-run/l09/docker/data", ".venv/lib", ".git/objects"):
        (tmp_path / hidden).mkdir(parents=True)
        (tmp_path / hidden / "terraform.tfstate").write_text("{}")
    found = sorted((kind, str(p.relative_to(tmp_path))) for kind, p in cli._terraform_leftovers(tmp_path))
    assert found == [
        ("dir", "lessons/x/.terraform"),
        ("file", "lessons/x/terraform.tfstate"),
        ("file", "lessons/x/terraform.tfstate.backup"),
    ]


def test_cpu_seconds_reads_a_running_process_and_nothing_else():
    import os

    from cloudlab.lab import process

    assert process.cpu_seconds(os.getpid()) >= 0
    assert process.cpu_seconds(None) is None and process.cpu_seconds(2**22 + 12345) is None
    assert process.stat_fields(os.getpid())[0] in "RS"  # the state, after a command name that may hold ") "
