"""The README says what the lab does, word for word where a test can tell."""

import re

from cloudlab.lab import ROOT

README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
SOURCE = "\n".join(p.read_text() for p in (ROOT / "cloudlab").rglob("*.py"))


def section(title: str) -> str:
    return README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_every_make_command_the_readme_names_exists():
    targets = set(re.findall(r"(?m)^([a-z][a-z-]*):", MAKEFILE))
    named = set(re.findall(r"`(?:sudo )?make ([a-z][a-z-]*)", README))
    assert named, "the README names no make command?"
    assert named <= targets, f"the README names make targets that do not exist: {named - targets}"


def real_messages(tmp_path, monkeypatch, capsys) -> dict[str, str]:
    """The text the lab really prints for each situation the README's troubleshooting names."""
    import os
    import socket

    import pytest

    from cloudlab import kernel
    from cloudlab.lab import Lab, LabError, cli, emulators, jupyter, venvs

    lab = Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path)})
    out = {}

    def err(fn, *a, **kw):
        with pytest.raises(LabError) as e:
            fn(*a, **kw)
        return str(e.value)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out["port"] = err(emulators.ensure_port_free, port, "LocalStack", "CLOUDLAB_LOCALSTACK_PORT").replace(
            str(port), "4566"
        )
        from cloudlab.observability import prom

        with pytest.raises(prom.StackError) as e:
            prom.start_server("l99-prom", ["true"], f"http://127.0.0.1:{port}", "Prometheus")
        out["prometheus port"] = str(e.value).replace(str(port), "9090")
    out["python"] = str(venvs.missing_python_error(venvs.VENVS["localstack"]))
    out["down"] = kernel.emulator_message(Exception())
    out["healthy"] = err(emulators.wait_healthy, lambda lab: False, os.getpid(), "localstack", lab, 0.001).replace(
        "within 0 s", "within 90 s"
    )
    with cli.locked(lab, "make lab"):
        out["lock"] = err(lambda: cli.locked(lab, "make stop", wait=0.2).__enter__()) + capsys.readouterr().out
    monkeypatch.setattr(jupyter, "open_notebooks", lambda lab: ["notebooks/01_x.ipynb"])
    monkeypatch.setattr(emulators, "read_pid", lambda lab, name: 1)
    out["stop-all"] = err(cli.down, lab, everything=True)
    from cloudlab.containers import engine

    def no_engine(lab, quiet=True):
        raise engine.labdocker.EngineMissing("no Docker engine answers")

    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(engine.labdocker, "ensure", no_engine)
    monkeypatch.setattr(engine, "skip_cells_without_engine", lambda: None)
    capsys.readouterr()
    assert engine.connect() is None
    out["docker"] = capsys.readouterr().out
    from botocore.exceptions import ClientError  # a resource lost in a restart of the local cloud

    emulators.started_file(lab, "localstack").parent.mkdir(parents=True, exist_ok=True)
    emulators.started_file(lab, "localstack").write_text("2000000000\n")
    monkeypatch.setattr(kernel, "_SETUP_AT", [1.0])
    out["gone"] = kernel.restart_message(ClientError({"Error": {"Code": "NoSuchBucket", "Message": ""}}, "GetObject"))
    monkeypatch.setattr(emulators, "read_pid", lambda lab, name: None)
    cli.status(Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path / "down"), "CLOUDLAB_PORT_OFFSET": "3500"}))
    out["status"] = capsys.readouterr().out
    return out


def test_troubleshooting_quotes_the_messages_the_lab_really_prints(tmp_path, monkeypatch, capsys):
    real = "\n".join(real_messages(tmp_path, monkeypatch, capsys).values())
    quoted = re.findall(r"(?m)^\*\*`([^`]+)`", section("Troubleshooting"))
    assert len(quoted) >= 8
    for message in quoted:
        if message in ("RealAWSRefused", "ToolMissing"):
            assert f"class {message}" in SOURCE
        elif message == "is not defined":
            assert "is not defined in this kernel" in SOURCE
        else:
            assert message in real, f"README quotes {message!r}, but the lab prints nothing like it"


def test_variables_the_readme_names_are_read_by_the_lab():
    for var in set(re.findall(r"\b(CLOUDLAB_[A-Z_]+)\b", README)):
        assert var in SOURCE or var.removeprefix("CLOUDLAB_").removesuffix("_PORT").lower() in SOURCE, var


def test_stop_and_update_behave_as_described():
    help_lines = {m.group(1): m.group(2) for m in re.finditer(r"(?m)^([a-z-]+):.*## (.*)$", MAKEFILE)}
    assert "JupyterLab keeps running" in help_lines["stop"]
    assert "refuses while notebooks are open" in help_lines["stop-all"]
    assert "without losing your edits" in help_lines["update"]
