"""Item 14 of issue 19: the lab's JupyterLab shuts down kernels left idle with no tab open (Jupyter Server's own
culler, MappingKernelManager), in `make lab` and on the Docker path (both read the lab's Jupyter config folder)."""

import json
import time

import pytest

from cloudlab import net
from cloudlab.lab import Lab, jupyter


def mini_lab(tmp_path) -> Lab:
    env = {"CLOUDLAB_STATE_DIR": str(tmp_path / "state"), "CLOUDLAB_JUPYTER_PORT": str(net.free_port())}
    return Lab.from_env("test", env)


def test_the_culler_settings_are_jupyter_servers_own(tmp_path):
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager

    lab = mini_lab(tmp_path)
    jupyter.settings(lab)
    cfg = json.loads((lab.state / "jupyter-config" / "jupyter_server_config.json").read_text())
    traits = MappingKernelManager.class_traits(config=True)
    assert set(cfg["MappingKernelManager"]) <= set(traits), "every name is a configurable trait of the server"
    assert cfg["MappingKernelManager"]["cull_idle_timeout"] > 0, "culling is on"
    assert cfg["MappingKernelManager"]["cull_connected"] is False, "a kernel with an open tab is never culled"
    assert jupyter.kernel_env(lab)["JUPYTER_CONFIG_DIR"] == str(lab.state / "jupyter-config")


@pytest.mark.lab
@pytest.mark.timeout(150)
def test_a_real_jupyterlab_shuts_down_an_idle_kernel_nobody_is_connected_to(tmp_path, monkeypatch):
    lab = mini_lab(tmp_path)
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(lab.state))
    monkeypatch.setattr(jupyter, "CULL", dict(jupyter.CULL, cull_idle_timeout=3, cull_interval=1))
    try:
        jupyter.start(lab)
        base = f"http://127.0.0.1:{lab.jupyter_port}/api/kernels?token={jupyter.token(lab)}"
        made = net.request("POST", base, {"name": "python3"})
        assert made.status == 201, made.body[:300]
        kid = json.loads(made.body)["id"]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and kid in {k["id"] for k in net.get_json(base)}:
            time.sleep(1)
        assert kid not in {k["id"] for k in net.get_json(base)}, "the idle kernel was not culled"
        log = lab.logfile("jupyter").read_text()
        assert "Culling" in log and "inactivity" in log, log[-1500:]
    finally:
        jupyter.stop(lab)
