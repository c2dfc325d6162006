"""Item 0 of issue 19: a docker CLI without an engine is not "docker". The lab needs an engine that answers, or a
dockerd it can start; `make setup ALL=1` (and, as root, the first lesson that needs an engine) installs Debian's
docker.io where it can. The machine here may or may not have docker.io: every test builds its own PATH and lab."""

import os
import socket
import threading

import pytest

from cloudlab.lab import Lab, LabError, docker, tools, venvs


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """A PATH with a docker CLI and nothing else (no dockerd), no engine anywhere, a lab of its own."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    cli = bindir / "docker"
    cli.write_text("#!/bin/sh\necho 'Docker version 28.2.2, build e6534b4'\n")
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(docker, "DEFAULT_SOCKET", str(tmp_path / "no-engine.sock"))
    lab = Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path / "state")})
    return lab, bindir


def add_dockerd(bindir):
    d = bindir / "dockerd"
    d.write_text("#!/bin/sh\nexit 1\n")
    d.chmod(0o755)


def test_a_cli_without_an_engine_or_dockerd_is_not_docker(bare):
    lab, bindir = bare
    assert tools._find(tools.TOOLS["docker"], lab) == str(bindir / "docker"), "the CLI itself is found"
    assert tools.which("docker", lab) is None
    ok, detail = tools.version("docker", lab)
    assert not ok and "no Docker engine answers" in detail and "dockerd" in detail


def test_setup_all_installs_docker_io_when_only_the_cli_is_here(bare, monkeypatch):
    lab, bindir = bare
    asked = []
    monkeypatch.setattr(venvs, "setup", lambda *a, **k: None)
    monkeypatch.setattr(tools, "can_apt", lambda: True)
    monkeypatch.setattr(tools, "apt_install", lambda pkgs: asked.extend(pkgs))
    tools.setup_all(lab, lessons={"05"})
    assert "docker.io" in asked, asked
    asked.clear()
    add_dockerd(bindir)  # after docker.io: dockerd is here, the lab can start its own engine
    assert tools.which("docker", lab) == str(bindir / "docker")
    tools.setup_all(lab, lessons={"05"})
    assert "docker.io" not in asked, asked


def test_apt_packages_missing_names_docker_io(bare, capsys, monkeypatch):
    from cloudlab.lab import cli

    lab, _ = bare
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(lab.state))
    assert cli.main(["--profile", "test", "apt-packages", "--missing"]) == 0
    assert "docker.io" in capsys.readouterr().out.split()


def test_an_engine_that_answers_is_docker_without_any_dockerd(bare, tmp_path, monkeypatch):
    """Docker Desktop (macOS) or a learner's engine: no dockerd on PATH, but the engine answers."""
    lab, bindir = bare
    sock_path = str(tmp_path / "engine.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(4)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    threading.Thread(target=serve, daemon=True).start()
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{sock_path}")
        assert tools.which("docker", lab) == str(bindir / "docker")
        assert tools.version("docker", lab) == (True, "Docker version 28.2.2, build e6534b4")
    finally:
        srv.close()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the lab starts an engine only as root")
def test_the_first_lesson_that_needs_an_engine_installs_docker_io_as_root(bare, monkeypatch):
    lab, _ = bare
    asked = []

    def fake_apt(pkgs):
        asked.extend(pkgs)
        raise LabError("E: Unable to locate package docker.io (no network in this test)")

    monkeypatch.setattr(tools, "can_apt", lambda: True)
    monkeypatch.setattr(tools, "apt_install", fake_apt)
    with pytest.raises(docker.EngineMissing, match="installing Debian's docker.io"):
        docker.start(lab)
    assert asked == ["docker.io"]
    # without apt (not root, or another system): the fix, and nothing installed
    asked.clear()
    monkeypatch.setattr(tools, "can_apt", lambda: False)
    with pytest.raises(docker.EngineMissing, match="apt-get install docker.io"):
        docker.start(lab)
    assert asked == []
