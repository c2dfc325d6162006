"""JupyterLab on 127.0.0.1, started by `make lab`. Serves every lesson.

It opens the learner's workspace (:mod:`cloudlab.lab.workspace`), keeps one token (so a browser
tab's URL stays valid across restarts), and starts kernels with the course's IPython startup file
(:mod:`cloudlab.kernel`: short messages instead of traceback walls). `make stop` leaves it running;
`make stop-all` stops it, but first says which notebooks are still open.
"""

from __future__ import annotations

import json
import os
import secrets

from .. import net
from . import Lab, emulators, process, venvs, workspace

HIDDEN = "['__pycache__', '*.pyc', '*.egg-info', '.ipynb_checkpoints', '.*']"
# Jupyter Server's own culler (MappingKernelManager, documented in its config reference): a kernel idle for an
# hour with no browser tab connected is shut down (checked every 5 minutes). Ten lessons left open in one
# session held 19 kernels and 2.4 GiB; a kernel with an open tab is never culled (cull_connected False), and
# neither is one that is busy. A culled notebook keeps its saved file; re-run it from its setup cell.
CULL = {"cull_idle_timeout": 3600, "cull_interval": 300, "cull_connected": False, "cull_busy": False}


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


def kernel_env(lab: Lab) -> dict[str, str]:
    """Where JupyterLab and its kernels find the course's settings and IPython startup file."""
    from ..kernel import startup_file

    ipy = lab.state / "ipython"
    startup_file(ipy)
    return {
        "JUPYTER_CONFIG_DIR": str(lab.state / "jupyter-config"),
        "IPYTHONDIR": str(ipy),
        "JUPYTERLAB_SETTINGS_DIR": str(lab.state / "jupyter-settings"),
    }


def settings(lab: Lab) -> None:
    """No news pop-up, no update check: a learner's first screen is the course. And the server's settings
    (:data:`CULL`) in the lab's Jupyter config folder, read by `make lab`'s server and the Docker path's."""
    d = lab.state / "jupyter-settings" / "@jupyterlab" / "apputils-extension"
    d.mkdir(parents=True, exist_ok=True)
    f = d / "notification.jupyterlab-settings"
    if not f.exists():
        f.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}, indent=1))
    cfg = lab.state / "jupyter-config"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "jupyter_server_config.json").write_text(json.dumps({"MappingKernelManager": CULL}, indent=1) + "\n")


def open_notebooks(lab: Lab) -> list[str]:
    """Notebooks with a running kernel (JupyterLab's sessions), or [] when JupyterLab does not answer."""
    try:
        sessions = net.get_json(f"http://127.0.0.1:{lab.jupyter_port}/api/sessions?token={token(lab)}")
    except OSError:
        return []
    return sorted(s.get("path", "?") for s in sessions or [] if isinstance(s, dict))


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
    ws = workspace.root(lab)
    workspace.sync(ws)
    settings(lab)
    env = dict(os.environ)
    env.update(lab.aws_env())
    env.update(kernel_env(lab))
    cmd = [
        kpy, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={lab.jupyter_port}",
        f"--IdentityProvider.token={token(lab)}", f"--ServerApp.root_dir={ws}",
        f"--ContentsManager.hide_globs={HIDDEN}", "--LabApp.news_url=",
    ]  # fmt: skip
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
