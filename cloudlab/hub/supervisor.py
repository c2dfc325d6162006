"""A learner's PID 1 on the hub (run as the learner by :mod:`cloudlab.hub.launch`): their lab and JupyterLab.

Inside the learner's own namespaces it

* relays ``127.0.0.1:<hub API port>`` to the hub (through ``hub-api.sock``), so JupyterLab can check logins;
* starts ``jupyterhub-singleuser`` (JupyterLab as JupyterHub's single-user server) on ``jupyter.sock``, opened
  on the learner's workspace (``~/workspace``, a copy of the notebooks made by :mod:`cloudlab.lab.workspace`);
* starts their lab at the same time (LocalStack and moto on the standard ports of their own loopback; state,
  progress and logs in ``~/.lab``), the same code as ``make lab``;
* reaps every process (PID 1's duty), records in ``~/.lab/hub-health.json`` what ended that nobody stopped
  (an emulator killed by the out-of-memory killer, a full disk: the roster shows it to the instructor) and
  restarts a crashed emulator (twice at most);
* on SIGTERM: stops JupyterLab (it saves nothing the browser has not saved already), the lab, then exits.

``--pod`` (Zero to JupyterHub, hub/k8s/values.yaml): the pod is the learner's namespaces, so no relays: JupyterLab
listens where KubeSpawner says, the hub's API is reached directly; the lab and the rest are the same.

When JupyterLab ends by itself (a crash), everything stops and JupyterHub shows the learner a "start my
server" button: their workspace and progress are files in their home, so the new server finds them.
Standard library only. Serves the workshop hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from ..lab import Lab, LabError, cli, emulators, jupyter, process, venvs, workspace
from . import relay
from .launch import pdeathsig, run_dir

RESTARTS = 2  # a crashed emulator comes back this often, then the roster shows it down


def health_file(lab: Lab) -> Path:
    return lab.state / "hub-health.json"


def note(lab: Lab, event: str) -> None:
    """Append one event (what ended, why) for the roster; never fails (a full disk is one of the events)."""
    path = health_file(lab)
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        data = {}
    events = (data.get("events") or [])[-19:]
    events.append({"at": time.strftime("%Y-%m-%d %H:%M:%S"), "event": event})
    data["events"] = events
    with contextlib.suppress(OSError):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    print(f"[hub] {event}", flush=True)


def why_ended(code: int | None) -> str:
    if code is None:
        return "ended"
    if code == -9 or code == 137:
        return "was killed (SIGKILL: most likely the out-of-memory killer; the roster shows the memory)"
    if code < 0:
        return f"ended by signal {-code}"
    return f"exited with code {code}"


def singleuser_command(lab: Lab, sock: Path | None, ws: Path) -> list[str]:
    kbin = venvs.venv_python(lab, "kernel").parent
    where = [f"--ServerApp.sock={sock}", "--ServerApp.sock_mode=0600"] if sock else []
    return [
        str(kbin / "jupyterhub-singleuser"),
        *where,
        f"--ServerApp.root_dir={ws}",
        f"--ContentsManager.hide_globs={jupyter.HIDDEN}",
        "--LabApp.news_url=",
    ]


def singleuser_env(lab: Lab, pod: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(lab.aws_env())
    env.update(jupyter.kernel_env(lab))
    if pod:
        return env
    # jupyterhub-singleuser reads its port from this URL; it listens on a Unix socket instead (jupyter_server
    # accepts a socket only with the default port): the path prefix is what matters.
    prefix = urlparse(env["JUPYTERHUB_SERVICE_URL"]).path
    env["JUPYTERHUB_SERVICE_URL"] = f"http://127.0.0.1:8888{prefix}"
    return env


def start_lab(lab: Lab) -> None:
    try:
        cli.up(lab)
    except LabError as e:
        note(lab, f"the lab did not start: {e}")
    except OSError as e:
        note(lab, f"the lab did not start: {e} (a full disk?)")


def watch_emulators(lab: Lab, restarts: dict[str, int]) -> None:
    """An emulator that died without being stopped: say why, start it again (a few times)."""
    for name in emulators.EMULATORS:
        pidfile = lab.pidfile(name)
        if not pidfile.exists() or process.read_pidfile(pidfile):
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().split()[0])
            note(lab, f"{name} {why_ended(_EXITED.pop(pid, None))}")
        pidfile.unlink(missing_ok=True)
        if restarts.get(name, 0) < RESTARTS:
            restarts[name] = restarts.get(name, 0) + 1
            threading.Thread(target=start_lab, args=(lab,), daemon=True).start()


_EXITED: dict[int, int] = {}


def reap() -> None:
    """PID 1 collects every ended process (orphans included) and keeps their exit codes."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _EXITED[pid] = os.waitstatus_to_exitcode(status)


def _hub_api_relay(rd: Path, api_port: int) -> None:
    async def main():
        listener = relay.tcp_listener(api_port)
        server = await relay.serve(listener, relay.unix_opener(rd / "hub-api.sock"))
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def pod_environment() -> None:
    """In a Kubernetes pod: the course's variables the launcher sets on the one-server hub."""
    home = Path.home()
    for k, v in dict(
        CLOUDLAB_HUB="1",
        CLOUDLAB_PROFILE="lab",
        CLOUDLAB_PORT_OFFSET="0",
        CLOUDLAB_STATE_DIR=str(home / ".lab"),
        CLOUDLAB_WORKSPACE=str(home / "workspace"),
    ).items():
        os.environ.setdefault(k, v)


def main(pod: bool = False) -> int:
    if pod:
        pod_environment()
    else:
        pdeathsig()  # the launcher's `unshare` ended: stop too
    lab = Lab.from_env()
    rd = run_dir(Path.home())
    rd.mkdir(parents=True, exist_ok=True)
    if not pod:
        api_port = urlparse(os.environ["JUPYTERHUB_API_URL"]).port
        threading.Thread(target=_hub_api_relay, args=(rd, api_port), daemon=True).start()
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        cli.write_env_files(lab)
        ws = workspace.root(lab)
        workspace.sync(ws)
        jupyter.settings(lab)
    except OSError as e:
        note(lab, f"could not prepare the workspace: {e} (a full disk?)")
        return 1
    sock = None if pod else rd / "jupyter.sock"
    if sock:
        sock.unlink(missing_ok=True)
    cmd, env = singleuser_command(lab, sock, ws), singleuser_env(lab, pod)
    server = process.spawn(cmd, lab.logfile("jupyter"), env=env, cwd=ws)
    lab.pidfile("jupyter").write_text(f"{server.pid}\n")
    threading.Thread(target=start_lab, args=(lab,), daemon=True).start()
    restarts: dict[str, int] = {}
    code = None
    while not stopping.is_set():
        reap()
        if server.pid in _EXITED:
            code = _EXITED.pop(server.pid)
            note(lab, f"JupyterLab {why_ended(code)}")
            break
        watch_emulators(lab, restarts)
        stopping.wait(0.5)
    process.stop_pid(server.pid, grace=5.0)
    lab.pidfile("jupyter").unlink(missing_ok=True)
    cli.stop_cloud(lab)
    reap()
    return 0 if code is None else 1


if __name__ == "__main__":
    sys.exit(main(pod=sys.argv[1:] == ["--pod"]))
