"""The per-learner settings, ONE copy for both rooms: the one-server hub (hub/jupyterhub_config.py reads them)
and Zero to JupyterHub on Kubernetes (hub/k8s/values.yaml states them; tests/test_hub.py holds the two equal).

Memory comes from measurement (benchmarks/hub_room.py; docs/instructors/room.md): the peak of a learner's
whole lab (JupyterLab, kernel, LocalStack, moto, lesson 04's Prometheus and Alertmanager) while lesson 01's
and lesson 04's exercise notebooks run. Standard library only. Serves the workshop hub.
"""

from __future__ import annotations

MIB = 1024 * 1024

# Measured peak of one learner's lab (benchmarks/hub_room.py --memory, 2026-12-06, a 2-core machine under load):
# the sum of the RSS of every process in their cgroup while lesson 01's and 04's worked exercises ran: 1314 MiB
# (the cgroup's own peak, which counts shared pages once: 1055 MiB). See docs/instructors/room.md.
PEAK_MIB = 1314
# The guarantee is the measured peak (what a node must have free per learner); the limit leaves room for a
# second kernel or a larger lesson before the kernel's out-of-memory killer stops a process (the roster
# reports that to the instructor).
MEM_GUARANTEE = "1400M"
MEM_LIMIT = "2G"
CPU_GUARANTEE = 0.25  # a learner mostly reads and types: 4 per core at rest
CPU_LIMIT = 1.0  # one check at a time never needs more than one core

START_TIMEOUT = 180  # seconds: a cold LocalStack on a busy node
HTTP_TIMEOUT = 120
DEFAULT_URL = "/lab/tree/notebooks/00_environment-check.ipynb"

# Culling: only servers idle for 8 hours (a workshop day with long breaks stays untouched: a server with a
# browser tab open is never idle), every 10 minutes; never users, never a server only because it is old.
CULL = {"enabled": True, "timeout": 8 * 3600, "every": 600, "maxAge": 0, "users": False}


def to_bytes(quantity: str) -> int:
    """``"2G"`` -> 2 GiB in bytes (JupyterHub's suffixes K, M, G, T are powers of 1024)."""
    units = {"K": 1024, "M": MIB, "G": 1024 * MIB, "T": 1024 * 1024 * MIB}
    q = quantity.strip()
    if q[-1:].upper() in units:
        return int(float(q[:-1]) * units[q[-1].upper()])
    return int(q)
