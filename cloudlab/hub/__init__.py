"""The workshop room: JupyterHub on one server, a lab per learner, and the instructor's roster.

Standard library only here (like :mod:`cloudlab.lab`), so ``python3 -m cloudlab.hub ...`` runs before any
environment exists; the parts that need JupyterHub run in the hub's own environment (``.lab/venvs/hub``)
or, for the learner's server and the roster, in the course kernel's (which has ``jupyterhub`` for
``jupyterhub-singleuser``). Serves the instructors (docs/instructors/room.md), no lesson. The parts:

=====================  ==============================================================================
``hub``                :class:`Hub` (ports, folders, the learners' system users), the settings
``hub.settings``       the per-learner settings shared by the one-server hub and Zero to JupyterHub
``hub.accounts``       workshop accounts from seats or a list: system users, bcrypt hashes, login cards
``hub.spawner``        ``LabSpawner``: JupyterHub's local process spawner, through ``hub.launch``
``hub.launch``         root: private mount, network and PID namespaces, a memory cgroup, then the learner
``hub.supervisor``     the learner's PID 1: their lab (LocalStack, moto) and jupyterhub-singleuser
``hub.relay``          byte relays between the host's loopback and the learner's (Unix sockets)
``hub.cgroups``        a memory cgroup per learner (limit, peak, out-of-memory kills)
``hub.roster``         the instructor's roster: a hub-managed service, admin only
``hub.cli``            up / down / status / accounts / cards (the Makefile's ``hub*`` targets)
=====================  ==============================================================================

Isolation (why, and what was measured: docs/instructors/room.md): each learner is a system user of their
own (home 0700), and their whole server runs in namespaces of its own: a network namespace (their
LocalStack, moto and lesson services on the standard ports of a loopback nobody else reaches, so two
learners can never collide on a port), a PID namespace (they see and signal only their own processes) and
a mount namespace (a private /tmp and /dev/shm; root's home replaced by the interpreters the course runs).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..lab import PROFILES, ROOT, Lab, LabError

# The hub's own ports on the host's 127.0.0.1 (shifted like the lab's: CLOUDLAB_PORT_OFFSET and the profile's
# offset). JupyterHub's defaults: the public proxy 8000, its API 8001, the hub 8081; the roster beside them.
# A learner's lab never uses host ports: it runs on the standard ports inside its own network namespace.
HUB_PORTS = {"hub_public": 8000, "hub_proxy_api": 8001, "hub_api": 8081, "hub_roster": 8082}
NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")  # a learner's name on the hub (seat01, ada-l)
INSTRUCTOR = "instructor"


def say(msg: str) -> None:
    print(f"[hub] {msg}", flush=True)


@dataclass
class Hub:
    """One hub: its ports, its private state (database, cookie secret, logs), the learners' homes.

    ``prefix`` makes the system user of a hub name (``seat01`` -> ``cl-seat01``); test hubs use their own
    prefix, so they never touch the accounts of a real room on the same machine.
    """

    lab: Lab
    ports: dict = field(default_factory=dict)
    state: Path = Path()
    homes: Path = Path()
    prefix: str = "cl-"
    public_ip: str = "127.0.0.1"

    @classmethod
    def from_env(cls, profile: str | None = None, environ=None) -> Hub:
        env = os.environ if environ is None else environ
        lab = Lab.from_env(profile, env)
        offset = PROFILES[lab.profile]["offset"] + int(env.get("CLOUDLAB_PORT_OFFSET") or 0)
        ports = {}
        for name, default in HUB_PORTS.items():
            raw = env.get(f"CLOUDLAB_{name.upper()}_PORT")
            ports[name] = int(raw) if raw else default + offset
        state = Path(env.get("CLOUDLAB_HUB_STATE") or lab.state / "hub")
        homes = Path(env.get("CLOUDLAB_HUB_HOMES") or lab.state / "hub-homes")
        default_prefix = "cl-" if lab.profile == "lab" else f"clt{offset}-"
        prefix = env.get("CLOUDLAB_HUB_PREFIX") or default_prefix
        if not re.fullmatch(r"[a-z][a-z0-9]{0,9}-", prefix):
            raise LabError(f"CLOUDLAB_HUB_PREFIX={prefix!r}: use a few lowercase letters or digits and a dash")
        public_ip = env.get("CLOUDLAB_HUB_IP") or "127.0.0.1"
        return cls(lab, ports, state.resolve(), homes.resolve(), prefix, public_ip)

    # ------------------------------------------------------------------ names
    def sysuser(self, name: str) -> str:
        """The system user of hub user ``name``."""
        return f"{self.prefix}{name}"

    def home(self, name: str) -> Path:
        return self.homes / self.sysuser(name)

    # ------------------------------------------------------------------ paths
    @property
    def db(self) -> Path:
        return self.state / "jupyterhub.sqlite"

    @property
    def config(self) -> Path:
        return ROOT / "hub" / "jupyterhub_config.py"

    @property
    def cards(self) -> Path:
        return self.state / "login-cards.html"

    def pidfile(self, name: str = "jupyterhub") -> Path:
        return self.state / f"{name}.pid"

    def logfile(self, name: str = "jupyterhub") -> Path:
        return self.state / f"{name}.log"

    @property
    def url(self) -> str:
        return f"http://{self.public_ip}:{self.ports['hub_public']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['hub_api']}/hub/api"

    def env(self) -> dict[str, str]:
        """What the hub's process (and its config file) reads."""
        return {
            "CLOUDLAB_HUB_STATE": str(self.state),
            "CLOUDLAB_HUB_HOMES": str(self.homes),
            "CLOUDLAB_HUB_PREFIX": self.prefix,
            "CLOUDLAB_HUB_IP": self.public_ip,
            **{f"CLOUDLAB_{k.upper()}_PORT": str(v) for k, v in self.ports.items()},
        }
