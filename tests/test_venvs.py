"""The course's environments: installed exactly as the lock files say, with uv or with pip, and the
Python 3.13 that LocalStack needs found (PATH, pyenv, uv) or explained."""

import json
import re
import subprocess

import pytest

from cloudlab.lab import Lab, LabError, venvs


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_versions(path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if m:
            out[norm(m.group(1))] = m.group(3)
    return out


def installed_versions(python) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    data = json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout)
    return {norm(k): v for k, v in data.items()}


IGNORED = {"pip", "setuptools", "wheel", "cloudlab"}  # the installer's own, and the course package itself


@pytest.mark.parametrize("name", sorted(venvs.VENVS))
def test_installed_versions_are_exactly_the_lock(name):
    lab = Lab.from_env()
    py = venvs.venv_python(lab, name)
    if not py.exists():
        pytest.skip(f"the {name} environment is not installed here (make setup ALL=1 installs it)")
    want = lock_versions(venvs.VENVS[name].lock)
    have = installed_versions(py)
    missing = {k: v for k, v in want.items() if have.get(k) != v}
    extra = {k: v for k, v in have.items() if k not in want and k not in IGNORED}
    assert not missing and not extra, (
        f"{name}: differs from {venvs.VENVS[name].lock.name}: missing/other {missing}, not in the lock {extra}"
    )


def test_every_requirement_is_pinned_in_its_lock():
    for spec in venvs.VENVS.values():
        lock = lock_versions(spec.lock)
        for req in spec.requirements:
            for name, version in lock_versions(req).items():
                assert lock.get(name) == version, f"{req.name}: {name}=={version} is not in {spec.lock.name}"


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A one-package environment (six, from the kernel's own lock) in a private venv folder."""
    req = tmp_path / "tiny-lock.txt"
    req.write_text("six==1.17.0\n")
    spec = venvs.VenvSpec("tiny", ("3.11", "3.12", "3.13"), (req,), (), req, "a test environment", core=False)
    monkeypatch.setitem(venvs.VENVS, "tiny", spec)
    real_installer = venvs.installer_dir(Lab.from_env())  # keep the one uv binary, fetched once
    monkeypatch.setattr(venvs, "installer_dir", lambda lab: real_installer)
    monkeypatch.setenv("CLOUDLAB_VENV_DIR", str(tmp_path / "venvs"))
    return Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path / "state")})


def test_uv_installs_exactly_the_pins_and_says_so(tiny, capsys):
    py = venvs.ensure_venv(tiny, "tiny")
    out = capsys.readouterr().out
    assert "uv 0." in out and "tiny ready" in out
    assert installed_versions(py).get("six") == "1.17.0"
    assert venvs.is_current(tiny, "tiny")
    t = venvs.ensure_venv(tiny, "tiny")  # the second time: nothing to do
    assert t == py and "installing" not in capsys.readouterr().out


def test_a_pin_removed_from_the_lock_is_removed_from_the_environment(tiny, capsys):
    py = venvs.ensure_venv(tiny, "tiny")
    lock = venvs.VENVS["tiny"].lock
    lock.write_text("idna==3.20\n")  # six's pin gone, another added (both from the kernel's own lock)
    assert not venvs.is_current(tiny, "tiny")
    venvs.ensure_venv(tiny, "tiny")
    have = installed_versions(py)
    assert "six" not in have and have.get("idna") == "3.20"
    assert "removed six (no longer in tiny-lock.txt)" in capsys.readouterr().out
    assert venvs.unpinned(venvs.VENVS["tiny"], py) == []


def test_pip_fallback_when_uv_cannot_be_had(tiny, capsys, monkeypatch):
    monkeypatch.setenv(venvs.INSTALLER_ENV, "pip")
    py = venvs.ensure_venv(tiny, "tiny")
    out = capsys.readouterr().out
    assert "with pip (uv unavailable)" in out
    assert installed_versions(py).get("six") == "1.17.0"


def test_python_from_uv_when_path_and_pyenv_have_none(tiny, monkeypatch):
    import sys

    asked = []
    monkeypatch.setattr(venvs, "find_python", lambda versions: None)
    monkeypatch.setattr(venvs, "uv_python_install", lambda v, uv: asked.append(v) or sys.executable)
    py = venvs.ensure_venv(tiny, "tiny")
    assert asked and py.exists()


def test_no_python_anywhere_is_a_clear_message(tiny, monkeypatch, tmp_path):
    monkeypatch.setattr(venvs, "find_python", lambda versions: None)
    monkeypatch.setattr(venvs, "uv_python_install", lambda v, uv: None)
    with pytest.raises(LabError, match="pyenv install 3.13") as e:
        venvs.ensure_venv(tiny, "localstack")
    assert "docker compose up" in str(e.value) and "uv python install 3.13" in str(e.value)


def test_uv_python_install_failure_is_quiet_and_quick(tmp_path):
    """Where uv cannot download a Python (no GitHub here), the search ends with None, not a hang."""
    lab = Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path)})
    uv = venvs.get_uv(lab)
    if uv is None:
        pytest.skip("uv is not available here")
    assert venvs.uv_python_install("3.99", uv, timeout=60) is None
