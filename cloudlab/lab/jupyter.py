"""JupyterLab on 127.0.0.1, started by `make lab`. Serves every lesson."""

from __future__ import annotations

import os
import secrets

from .. import net
from . import ROOT, Lab, emulators, process, venvs


def token_file(lab: Lab):
    return lab.run_dir / "jupyter.token"


def token(lab: Lab) -> str:
    tf = token_file(lab)
    return tf.read_text().strip() if tf.exists() else ""


def url(lab: Lab) -> str:
    return f"http://127.0.0.1:{lab.jupyter_port}/lab?token={token(lab)}"


def answering(lab: Lab) -> bool:
    try:
        net.get_json(f"http://127.0.0.1:{lab.jupyter_port}/api/status?token={token(lab)}")
        return True
    except OSError:
        return False


def spawn(lab: Lab) -> int | None:
    """Start JupyterLab without waiting (it boots while the emulators start). None: already running."""
    kpy = venvs.ensure_venv(lab, "kernel")
    if emulators.read_pid(lab, "jupyter"):
        return None
    emulators.ensure_port_free(lab.jupyter_port, "JupyterLab", "CLOUDLAB_JUPYTER_PORT")
    lab.run_dir.mkdir(parents=True, exist_ok=True)
    if not token(lab):  # the same token across restarts: an open browser tab keeps working
        token_file(lab).write_text(secrets.token_hex(16) + "\n")
        os.chmod(token_file(lab), 0o600)
    env = dict(os.environ)
    env.update(lab.aws_env())
    env["JUPYTER_CONFIG_DIR"] = str(lab.state / "jupyter-config")
    cmd = [
        kpy,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={lab.jupyter_port}",
        f"--IdentityProvider.token={token(lab)}",
        f"--ServerApp.root_dir={ROOT}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return emulators.spawn(lab, "jupyter", cmd, env)


def start(lab: Lab, pid: int | None = None) -> str:
    pid = pid if pid is not None else spawn(lab)
    if pid is not None:
        emulators.wait_healthy(answering, pid, "jupyter", lab, timeout=60)
    return url(lab)


def stop(lab: Lab) -> str:
    return process.stop_pidfile(lab.pidfile("jupyter"))
