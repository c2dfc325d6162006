"""``python3 -m cloudlab.hub <command>``: the Makefile's ``hub*`` targets. Standard library only.

up        start JupyterHub (root) on 127.0.0.1, or on the room's address when exposed on purpose
down      stop every learner's server (their work is in their homes), the hub and its proxy
restart   restart only the hub process: the learners' servers and the proxy keep running
status    the hub, its proxy, every account and server; anything listening beyond loopback is a failure
accounts  create (or remove) workshop accounts; prints where the login cards are
Serves the workshop hub.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from .. import net
from ..lab import ROOT, LabError, process, tools, venvs
from . import INSTRUCTOR, Hub, say

EXPOSE_ACK = "plain-http-on-a-trusted-network"


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the hub runs as root: it starts each learner's server as that learner's own system user.\n"
            "  Run: sudo make hub   (on the workshop server; learners never get root or the hub's shell)"
        )


def hub_python(hub: Hub) -> str:
    return str(venvs.ensure_venv(hub.lab, "hub", why="(the workshop hub; once)"))


def admin_token(hub: Hub) -> str:
    """The token of the course's own admin service (``cloudlab-admin``): status, accounts, tests. 0600."""
    return _secret(hub, "admin-api-token")


def _secret(hub: Hub, name: str) -> str:
    path = hub.state / name
    if not path.exists():
        hub.state.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def api(hub: Hub, method: str, path: str, body=None, timeout: float = 10.0):
    r = net.request(
        method,
        f"{hub.api_url}{path}",
        body=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {admin_token(hub)}", "Content-Type": "application/json"},
        timeout=timeout,
    )
    return r.json(default=None)


def answering(hub: Hub) -> bool:
    try:
        net.get_json(f"{hub.api_url}/", timeout=2)
        return True
    except OSError:
        return False


def check_exposure(hub: Hub, environ=None) -> None:
    """Never an open hub by accident: a non-loopback address needs an explicit acknowledgement."""
    env = os.environ if environ is None else environ
    if process.is_loopback(hub.public_ip):
        return
    if env.get("CLOUDLAB_HUB_EXPOSE") != EXPOSE_ACK:
        raise LabError(
            f"refusing to listen on {hub.public_ip}: that exposes the hub beyond this machine, and logins would "
            "cross the room's network in plain HTTP.\n"
            "  For a room, keep the hub on 127.0.0.1 and put a TLS reverse proxy in front (docs/instructors/room.md,\n"
            "  'Open the room': Caddy or nginx on 443 with the room's certificate).\n"
            f"  Only on a network you trust: CLOUDLAB_HUB_EXPOSE={EXPOSE_ACK} make hub IP={hub.public_ip}"
        )


def proxy_up(hub: Hub) -> str:
    """configurable-http-proxy, on its own: the public port (127.0.0.1 unless exposed) and its API on 127.0.0.1."""
    pidfile = hub.state / "proxy.pid"
    if process.read_pidfile(pidfile):
        return "already running"
    chp = tools.install("configurable-http-proxy", hub.lab, why="(the hub's proxy; once)")
    api = f"http://127.0.0.1:{hub.ports['hub_api']}"
    cmd = [chp, "--ip", hub.public_ip, "--port", str(hub.ports["hub_public"]), "--api-ip", "127.0.0.1"]
    cmd += ["--api-port", str(hub.ports["hub_proxy_api"]), "--default-target", api]
    cmd += ["--error-target", f"{api}/hub/error"]
    env = dict(os.environ, CONFIGPROXY_AUTH_TOKEN=_secret(hub, "proxy-auth-token"))
    proc = process.spawn(cmd, hub.logfile("proxy"), env=env, cwd=hub.state, pidfile=pidfile, banner="starting proxy")
    deadline = time.monotonic() + 30
    while not net.port_in_use(hub.ports["hub_proxy_api"]):
        if proc.poll() is not None or time.monotonic() > deadline:
            log = hub.logfile("proxy")
            raise LabError(f"the proxy did not start; see {log}:\n{process.tail(log)}")
        time.sleep(0.1)
    return "started"


def up(hub: Hub) -> str:
    _require_root()
    check_exposure(hub)
    if process.read_pidfile(hub.pidfile()) and answering(hub):
        return f"already running at {hub.url}"
    if Path("/root") in hub.homes.parents:  # learners see root's home as a read-only copy of the interpreters only
        raise LabError(
            f"the learners' homes would be under /root ({hub.homes}), which no learner can enter.\n"
            "  Put the course elsewhere (e.g. /opt/cloud-mindset) or set CLOUDLAB_HUB_HOMES=/home/cloudlab"
        )
    for d, mode in ((hub.state, 0o700), (hub.homes, 0o711)):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, mode)
    py = hub_python(hub)
    venvs.ensure_venv(hub.lab, "kernel")
    say(f"proxy      {proxy_up(hub)}")
    env = dict(os.environ)
    env.update(hub.env())
    env["PYTHONPATH"] = str(ROOT)
    env["CLOUDLAB_HUB_ADMIN_TOKEN_FILE"] = str(hub.state / "admin-api-token")
    admin_token(hub)
    t0 = time.monotonic()
    proc = process.spawn(
        [py, "-m", "jupyterhub", "-f", str(hub.config)],
        hub.logfile(),
        env=env,
        cwd=hub.state,
        pidfile=hub.pidfile(),
        banner="starting jupyterhub",
    )
    deadline = time.monotonic() + 90
    while not answering(hub):
        if proc.poll() is not None:
            raise LabError(
                f"JupyterHub exited during start-up. Last lines of {hub.logfile()}:\n{process.tail(hub.logfile())}"
            )
        if time.monotonic() > deadline:
            raise LabError(f"JupyterHub did not answer within 90 s; see {hub.logfile()}")
        time.sleep(0.2)
    return f"started in {time.monotonic() - t0:.1f} s at {hub.url}"


def users(hub: Hub) -> list[dict]:
    """The hub's users; [] when it answers with something else (an error body on a struggling hub is a dict)."""
    got = api(hub, "GET", "/users") or []
    if isinstance(got, dict):
        got = got.get("items") or []
    return [u for u in got if isinstance(u, dict)]


def stop_servers(hub: Hub) -> list[str]:
    """Stop every running server, all at once (each stops its lab cleanly in a few seconds)."""
    from concurrent.futures import ThreadPoolExecutor

    running = [u["name"] for u in users(hub) if (u.get("servers") or {}).get("")]

    def stop(name):
        headers = {"Authorization": f"token {admin_token(hub)}"}
        net.request("DELETE", f"{hub.api_url}/users/{name}/server", headers=headers, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (api(hub, "GET", f"/users/{name}") or {}).get("servers"):
            time.sleep(0.3)

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(running)))) as pool:
        list(pool.map(stop, running))
    return running


def down(hub: Hub, servers: bool = True) -> None:
    if servers and answering(hub):
        stopped = stop_servers(hub)
        if stopped:
            say(f"servers stopped: {', '.join(stopped)} (their work stays in their homes)")
    say(f"jupyterhub {process.stop_pidfile(hub.pidfile(), grace=10)}")
    if servers:
        say(f"proxy      {process.stop_pidfile(hub.state / 'proxy.pid', grace=5)}")


def status(hub: Hub) -> int:
    pid = process.read_pidfile(hub.pidfile())
    ok = bool(pid) and answering(hub)
    where = f"{hub.url}  pid {pid}" if ok else ""
    print(f"  jupyterhub  {'running' if ok else 'stopped'}  {where}")
    exposed = []
    if pid:
        mine = process.descendants(pid)
        proxy = process.read_pidfile(hub.state / "proxy.pid")
        if proxy:
            mine |= process.descendants(proxy)
        exposed = [(ip, port) for ip, port, _ in process.listening(mine) if not process.is_loopback(ip)]
        for ip, port in exposed:
            print(f"  {'NOTE' if ip == hub.public_ip else 'WARNING'}: listening on {ip}:{port}")
    if ok:
        for u in users(hub):
            server = (u.get("servers") or {}).get("") or {}
            state = "ready" if server.get("ready") else ("starting" if server.get("pending") else "stopped")
            role = " (admin)" if u.get("admin") else ""
            print(f"  {u['name'] + role:<22} {state:<9} last activity {u.get('last_activity') or '-'}")
        print(f"  roster: {hub.url}/services/roster/ (the instructor, logged in)")
    bad = [e for e in exposed if e[0] != hub.public_ip]
    return 0 if ok and not bad else 1


def accounts(hub: Hub, argv: list[str]) -> int:
    _require_root()
    env = dict(os.environ, PYTHONPATH=str(ROOT), **hub.env())
    return subprocess.call([hub_python(hub), "-m", "cloudlab.hub.accounts", *argv], env=env)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m cloudlab.hub", description="The workshop hub.")
    ap.add_argument("--profile", choices=["lab", "test"], default=None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up")
    sub.add_parser("down")
    sub.add_parser("restart")
    sub.add_parser("status")
    a = sub.add_parser("accounts")
    a.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    try:
        hub = Hub.from_env(args.profile)
        if args.cmd == "up":
            say(f"jupyterhub {up(hub)}")
            say(f"log in as {INSTRUCTOR} (make hub-accounts makes the accounts and their login cards)")
            say(f"roster: {hub.url}/services/roster/   stop: make hub-stop")
        elif args.cmd == "down":
            _require_root()
            down(hub)
        elif args.cmd == "restart":
            _require_root()
            down(hub, servers=False)
            say(f"jupyterhub {up(hub)} (the learners' servers kept running)")
        elif args.cmd == "status":
            return status(hub)
        elif args.cmd == "accounts":
            return accounts(hub, args.rest)
    except LabError as e:
        print(f"[hub] ERROR: {e}", file=sys.stderr, flush=True)
        return 2
    return 0
