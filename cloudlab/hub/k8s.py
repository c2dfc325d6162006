"""The room on Kubernetes (Zero to JupyterHub), validated offline the way lesson 06 validates its charts.

No cluster can run here, and the chart itself cannot be fetched (no registry), so what is checked is:

* ``hub/k8s/values.yaml`` merged over the chart's own defaults and validated against the chart's own
  ``values.schema.json`` (both vendored from jupyterhub/zero-to-jupyterhub-k8s, BSD-3-Clause: hub/k8s/vendor/);
* its per-learner figures against :mod:`cloudlab.hub.settings` (the one-server hub's, measured);
* the learner's pod as KubeSpawner creates it from those values (written here from the values: image, command,
  resources, security context, volume) and ``hub/k8s/namespace.yaml``: strict Kubernetes schemas
  (:func:`cloudlab.k8s.render.validate`) and checkov's Kubernetes rules (:func:`cloudlab.k8s.render.scan`).

Serves the workshop hub (docs/instructors/room.md).
"""

from __future__ import annotations

import copy
import json

import yaml

from ..lab import ROOT
from . import settings

K8S = ROOT / "hub" / "k8s"
VENDOR = K8S / "vendor"


def values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


def merge(base: dict, over: dict) -> dict:
    """Helm's merge of a values file over the chart's defaults: maps merge, everything else replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def schema_problems(vals: dict | None = None) -> list[str]:
    """What the chart's values.schema.json says about our values merged over its defaults ([] = valid)."""
    import jsonschema

    schema = json.loads((VENDOR / "values.schema.json").read_text())
    merged = merge(yaml.safe_load((VENDOR / "values.yaml").read_text()), values() if vals is None else vals)
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in validator.iter_errors(merged)
    )


def settings_problems(vals: dict | None = None) -> list[str]:
    """Where the Kubernetes values differ from the one-server hub's per-learner settings."""
    v = values() if vals is None else vals
    su, cull = v.get("singleuser", {}), v.get("cull", {})
    want = {
        "singleuser.memory.guarantee": (su.get("memory", {}).get("guarantee"), settings.MEM_GUARANTEE),
        "singleuser.memory.limit": (su.get("memory", {}).get("limit"), settings.MEM_LIMIT),
        "singleuser.cpu.guarantee": (su.get("cpu", {}).get("guarantee"), settings.CPU_GUARANTEE),
        "singleuser.cpu.limit": (su.get("cpu", {}).get("limit"), settings.CPU_LIMIT),
        "singleuser.startTimeout": (su.get("startTimeout"), settings.START_TIMEOUT),
        "singleuser.defaultUrl": (su.get("defaultUrl"), settings.DEFAULT_URL),
        **{f"cull.{k}": (cull.get(k), settings.CULL[k]) for k in settings.CULL},
    }
    return [f"{k} is {got!r}, the one-server hub uses {exp!r}" for k, (got, exp) in want.items() if got != exp]


def _quantity(value) -> str:
    """JupyterHub's byte suffixes (powers of 1024) as a Kubernetes quantity (KubeSpawner does the same)."""
    return f"{settings.to_bytes(str(value))}"


def learner_pod(vals: dict | None = None, name: str = "jupyter-seat01") -> dict:
    """The learner's pod as KubeSpawner builds it from the values (the fields they set; what a cluster would get)."""
    v = values() if vals is None else vals
    su = v["singleuser"]
    cmd = v["hub"]["config"]["KubeSpawner"]["cmd"]
    container = {
        "name": "notebook",
        "image": f"{su['image']['name']}:{su['image']['tag']}",
        "imagePullPolicy": su["image"]["pullPolicy"],
        "args": [str(c) for c in cmd],
        "ports": [{"name": "notebook-port", "containerPort": 8888}],
        "resources": {
            "requests": {"memory": _quantity(su["memory"]["guarantee"]), "cpu": str(su["cpu"]["guarantee"])},
            "limits": {"memory": _quantity(su["memory"]["limit"]), "cpu": str(su["cpu"]["limit"])},
        },
        "securityContext": {
            "runAsUser": su["uid"],
            "runAsGroup": su["fsGid"],
            "allowPrivilegeEscalation": su["allowPrivilegeEscalation"],
            **v["hub"]["config"]["KubeSpawner"].get("container_security_context", {}),
        },
        "volumeMounts": [
            {"name": "home", "mountPath": su["storage"]["homeMountPath"]},
            *su["storage"].get("extraVolumeMounts", []),
        ],
        "livenessProbe": {"httpGet": {"path": "/user/seat01/api", "port": 8888}, "periodSeconds": 30},
        "readinessProbe": {"httpGet": {"path": "/user/seat01/api", "port": 8888}, "periodSeconds": 10},
    }
    pod_cfg = su.get("extraPodConfig", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "cloudlab-room",
            "labels": {
                "component": "singleuser-server",
                "hub.jupyter.org/username": "seat01",
                "hub.jupyter.org/network-access-hub": "true",
            },
            "annotations": dict(su.get("extraAnnotations", {})),
        },
        "spec": {
            "automountServiceAccountToken": pod_cfg.get("automountServiceAccountToken", True),
            "securityContext": {**pod_cfg.get("securityContext", {}), "fsGroup": su["fsGid"]},
            "containers": [container],
            "volumes": [
                {"name": "home", "persistentVolumeClaim": {"claimName": "claim-seat01"}},
                *su["storage"].get("extraVolumes", []),
            ],
        },
    }


def objects() -> list[dict]:
    """What this repository ships for the cluster besides the values: the namespace and the learner's pod."""
    docs = []
    for f in ("namespace.yaml", "learner-isolation.yaml"):
        docs += [d for d in yaml.safe_load_all((K8S / f).read_text()) if d]
    return docs + [learner_pod()]


def learners_per_node(node_gib: float, node_cpus: float, reserved_gib: float = 1.5, reserved_cpu: float = 0.3) -> int:
    """How many learners' guarantees fit a node (after what the kubelet and system pods keep)."""
    mem = settings.to_bytes(settings.MEM_GUARANTEE)
    by_mem = int((node_gib - reserved_gib) * (1 << 30) // mem)
    by_cpu = int((node_cpus - reserved_cpu) // settings.CPU_GUARANTEE)
    return max(0, min(by_mem, by_cpu))
