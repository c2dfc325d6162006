"""haproxy on 127.0.0.1: a real load balancer with health checks, driven through its runtime API.

Serves lesson 08 (blue-green and canary releases by weights and server states) and lesson 09
(health checks, retries and redispatch, taking an instance out and back). A :class:`Balancer`
writes a configuration, checks it with ``haproxy -c``, runs haproxy in the foreground as a lesson
process (``cloudlab.procs``: reset and `make stop` stop it), and talks to its admin socket (the
"runtime API": ``show stat``, ``set server ... weight``/``state``), so every change is the real
command an operator would type (each call can print it).
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import net, procs
from .lab import Lab, tools


class HaproxyError(RuntimeError):
    """haproxy refused a configuration or a command; the message says which and why."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mHaproxyError\x1b[0m: {self}"]


@dataclass
class Server:
    """One backend server: an instance of the service on 127.0.0.1:port."""

    name: str
    port: int
    weight: int = 100
    check: bool = True
    backup: bool = False
    host: str = "127.0.0.1"
    disabled: bool = False  # starts in maintenance (a spare slot an autoscaler turns on with set_state)

    def line(self) -> str:
        opts = [f"weight {self.weight}"] + (["check"] if self.check else []) + (["backup"] if self.backup else [])
        opts += ["disabled"] if self.disabled else []
        return f"    server {self.name} {self.host}:{self.port} {' '.join(opts)}"


@dataclass
class Backend:
    """A pool of servers with an HTTP health check on ``health_path``."""

    name: str
    servers: list[Server] = field(default_factory=list)
    health_path: str = "/health"
    balance: str = "roundrobin"
    retries: int = 2
    redispatch: bool = True

    def lines(self, inter_ms: int, fall: int, rise: int) -> list[str]:
        out = [
            f"backend {self.name}",
            f"    balance {self.balance}",
            f"    option httpchk GET {self.health_path}",
            "    http-check expect status 200",
            f"    default-server inter {inter_ms}ms fall {fall} rise {rise}",
            f"    retries {self.retries}",
        ]
        if self.redispatch:
            out.append("    option redispatch")
        return out + [s.line() for s in self.servers]


class Balancer:
    """haproxy with one HTTP frontend on 127.0.0.1 and one or more backends.

    ``name`` is a lesson process name (``l08-lb``); the frontend sends traffic to ``default``
    unless a ``use_backend`` rule says otherwise (``rules``: raw haproxy lines for the frontend).
    ``maps``: haproxy map files ({name: {key: value}}) a rule can read, written as ``<map:NAME>``
    (``use_backend %[str(live),map(<map:active>,blue)]``); :meth:`set_map` changes one entry at
    run time, atomically (blue-green: one command moves all new requests to the other backend).
    """

    def __init__(
        self,
        name: str,
        backends: list[Backend],
        default: str | None = None,
        port: int | None = None,
        rules: list[str] | None = None,
        check_inter_ms: int = 300,
        fall: int = 2,
        rise: int = 2,
        timeout_connect_ms: int = 500,
        timeout_server_ms: int = 5000,
        quiet: bool = False,
        maps: dict[str, dict[str, str]] | None = None,
    ):
        if not backends:
            raise HaproxyError("a balancer needs at least one backend")
        self.name, self.backends = name, backends
        self.default = default or backends[0].name
        self.port = port or net.free_port()
        self.rules = list(rules or [])
        self.inter, self.fall, self.rise = check_inter_ms, fall, rise
        self.timeout_connect_ms, self.timeout_server_ms = timeout_connect_ms, timeout_server_ms
        self.quiet = quiet
        self.maps = {k: dict(v) for k, v in (maps or {}).items()}
        self.dir = Lab.from_env().work_dir(name[1:3] if name[:1] == "l" and name[1:3].isdigit() else "00") / name
        self.dir.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- configuration
    @property
    def socket_path(self) -> Path:
        return self.dir / "admin.sock"

    @property
    def config_path(self) -> Path:
        return self.dir / "haproxy.cfg"

    def map_path(self, name: str) -> Path:
        return self.dir / f"{name}.map"

    def _rule(self, rule: str) -> str:
        for name in self.maps:
            rule = rule.replace(f"<map:{name}>", str(self.map_path(name)))
        return rule

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [
            "global",
            f"    stats socket {self.socket_path} mode 600 level admin",
            "    log stdout format raw local0",
            "",
            "defaults",
            "    mode http",
            "    log global",
            "    option httplog",
            f"    timeout connect {self.timeout_connect_ms}ms",
            "    timeout client 30s",
            f"    timeout server {self.timeout_server_ms}ms",
            "    timeout check 1s",
            "",
            "frontend web",
            f"    bind 127.0.0.1:{self.port}",
            *[f"    {self._rule(r)}" for r in self.rules],
            f"    default_backend {self.default}",
            "",
        ]
        for b in self.backends:
            lines += b.lines(self.inter, self.fall, self.rise) + [""]
        return "\n".join(lines)

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text)

    # ---------------------------------------------------------------- process
    def start(self, timeout: float = 10.0) -> Balancer:
        """Write and check the configuration, then (re)start haproxy; returns self."""
        exe = tools.require("haproxy")
        for name, entries in self.maps.items():
            self.map_path(name).write_text("".join(f"{k} {v}\n" for k, v in entries.items()))
        self.config_path.write_text(self.config_text())
        check = subprocess.run([exe, "-c", "-f", str(self.config_path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise HaproxyError(
                f"haproxy rejected the configuration {self.config_path}:\n"
                f"{(check.stdout + check.stderr).strip()[-1500:]}"
            )
        if net.port_in_use(self.port):
            procs.stop(self.name)
            if net.port_in_use(self.port):
                raise HaproxyError(
                    f"port {self.port} is already taken: `ss -ltnp 'sport = :{self.port}'` shows by "
                    f"whom; stop it, or give the balancer another port"
                )
        self.socket_path.unlink(missing_ok=True)
        self._say(f"$ haproxy -db -f {self.config_path}")
        proc = procs.start(self.name, [exe, "-db", "-f", str(self.config_path)], python=False, cwd=str(self.dir))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket_path.exists() and net.port_in_use(self.port):
                return self
            if not proc.alive():
                raise HaproxyError(f"haproxy exited at start:\n{proc.output()[-1500:]}")
            time.sleep(0.05)
        raise HaproxyError(f"haproxy did not open port {self.port} within {timeout:.0f} s:\n{proc.output()[-800:]}")

    def stop(self) -> None:
        procs.stop(self.name)

    # ---------------------------------------------------------------- runtime API
    def command(self, line: str, show: bool | None = None) -> str:
        """Send one runtime API command to the admin socket and return haproxy's answer.

        The same as ``echo "<line>" | socat stdio <socket>`` on a server.
        """
        if show if show is not None else not self.quiet:
            print(f'$ echo "{line}" | socat stdio {self.socket_path}')
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(str(self.socket_path))
                s.sendall(line.encode() + b"\n")
                chunks = []
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
        except OSError as e:
            raise HaproxyError(
                f"haproxy's admin socket does not answer ({e}): is it running? Start the balancer again (`.start()`)."
            ) from None
        answer = b"".join(chunks).decode(errors="replace")
        low = answer.lower()
        if low.startswith(("unknown command", "no such", "require", "invalid")) or "permission denied" in low:
            raise HaproxyError(f"haproxy refused `{line}`: {answer.strip()}")
        return answer

    def frontend(self) -> dict:
        """The frontend's row of ``show stat`` (``req_tot``: requests so far, ``req_rate``: per second now)."""
        for row in self.stats():
            if row["svname"] == "FRONTEND":
                return row
        raise HaproxyError("haproxy reported no frontend")

    def stats(self) -> list[dict]:
        """``show stat``: one row per frontend, backend and server (haproxy's CSV, as dicts)."""
        text = self.command("show stat", show=False).lstrip("# ")
        return [dict(row) for row in csv.DictReader(io.StringIO(text)) if row.get("pxname")]

    def server(self, backend: str, server: str) -> dict:
        for row in self.stats():
            if row["pxname"] == backend and row["svname"] == server:
                return row
        raise HaproxyError(
            f"no server {backend}/{server}; known: {sorted(r['pxname'] + '/' + r['svname'] for r in self.stats())}"
        )

    def server_url(self, backend: str, server: str) -> str:
        """``http://<address>:<port>`` of a server, as haproxy has it (``show stat``'s ``addr``): the place to
        ask the server itself, past the balancer (haproxy's own view of it lags its health checks)."""
        addr = self.server(backend, server).get("addr") or ""
        if not addr:
            for b in self.backends:
                for s in b.servers if b.name == backend else []:
                    if s.name == server:
                        addr = f"{s.host}:{s.port}"
        if not addr:
            raise HaproxyError(f"haproxy reports no address for {backend}/{server}")
        return f"http://{addr}"

    def status(self, backend: str, server: str) -> str:
        """UP, DOWN, MAINT, DRAIN, NOLB ... as haproxy reports it (``UP 1/2`` becomes ``UP``)."""
        return self.server(backend, server)["status"].split()[0]

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        if not 0 <= int(weight) <= 256:
            raise HaproxyError(f"a weight is 0-256, not {weight}")
        self.command(f"set server {backend}/{server} weight {int(weight)}")

    def set_state(self, backend: str, server: str, state: str) -> None:
        """ready (takes traffic), drain (finishes what it has, gets no new), maint (out)."""
        if state not in ("ready", "drain", "maint"):
            raise HaproxyError(f"state is ready, drain or maint, not {state!r}")
        self.command(f"set server {backend}/{server} state {state}")

    def set_map(self, name: str, key: str, value: str) -> None:
        """Change one entry of a map file in the running haproxy (``set map``): takes effect at once."""
        if name not in self.maps:
            raise HaproxyError(f"no map {name!r}; this balancer has {sorted(self.maps) or 'none'}")
        self.command(f"set map {self.map_path(name)} {key} {value}")

    def show_map(self, name: str) -> dict[str, str]:
        """The entries haproxy holds in memory for a map (``show map``), as {key: value}."""
        if name not in self.maps:
            raise HaproxyError(f"no map {name!r}; this balancer has {sorted(self.maps) or 'none'}")
        out = {}
        for line in self.command(f"show map {self.map_path(name)}", show=False).splitlines():
            parts = line.split()
            if len(parts) == 3:  # "<ref id> <key> <value>"
                out[parts[1]] = parts[2]
        return out

    def wait_status(self, backend: str, server: str, want: str = "UP", timeout: float = 10.0) -> float:
        """Wait until haproxy's health checks report ``want`` for the server; returns the seconds waited."""
        t0 = time.monotonic()
        last = "?"
        while time.monotonic() - t0 < timeout:
            last = self.status(backend, server)
            if last == want:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise HaproxyError(f"{backend}/{server} is {last}, not {want}, after {timeout:.0f} s of health checks")


def available() -> bool:
    return shutil.which("haproxy") is not None
