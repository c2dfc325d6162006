"""``LabSpawner``: JupyterHub's local process spawner, starting each learner's server through
:mod:`cloudlab.hub.launch` (namespaces, a memory cgroup, then the learner's own uid).

Imported by JupyterHub (hub/jupyterhub_config.py), in the hub's environment. The hub runs as root, like
every JupyterHub that starts servers as other system users; the learner's server never does. Serves the
workshop hub.
"""

from __future__ import annotations

import os
import pwd

from jupyterhub.spawner import LocalProcessSpawner

from ..lab import ROOT
from . import Hub


class LabSpawner(LocalProcessSpawner):
    """One learner's server: their system user (``<prefix><name>``), their namespaces, their lab."""

    def _hub(self) -> Hub:
        return Hub.from_env()

    def make_preexec_fn(self, name):
        return None  # the launcher starts as root and drops to the learner itself, after the namespaces

    def user_env(self, env):
        pw = pwd.getpwnam(self._hub().sysuser(self.user.name))
        env.update(USER=pw.pw_name, HOME=pw.pw_dir, SHELL="/bin/bash", CLOUDLAB_HUB_SYSUSER=pw.pw_name)
        return env

    def get_env(self):
        env = super().get_env()
        env.update(self._hub().env())
        env["PYTHONPATH"] = str(ROOT)  # the launcher is course code run by the hub's Python
        for k in ("CLOUDLAB_VENV_DIR", "CLOUDLAB_KERNEL_VENV", "PATH"):
            if os.environ.get(k):
                env[k] = os.environ[k]
        return env
