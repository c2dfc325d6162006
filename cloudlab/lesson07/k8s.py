"""Lesson 07's Kubernetes files and exercise 7's questions about them; everything general is the toolkit
:mod:`cloudlab.k8s` (kustomize, validate, scan, RBAC's ``can``, ``secret_use``, ``encryption_problems``, the live
cluster). Here: the exercise's rendering (in the task's namespace, and in a second one), who may do what (both
ServiceAccounts of the lesson), whether a pod gets an API token, who can read a mounted Secret's file, and the
checkov skips written in the manifests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .. import k8s
from ..lab import ROOT
from ..tables import Table

K8S = ROOT / "lessons" / "07_secrets-and-least-privilege" / "k8s"
NAMESPACE = "payments"
OTHER_NAMESPACE = "payments-staging"  # the same files deployed a second time: an input the answer has not seen
SERVICE_SA = "payments"
SYNC_SA = "payments-db-sync"
SECRET = "payments-db"  # pragma: allowlist secret (a Secret's name)

PAIR_KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
resources:
  - rbac.yaml
  - deployment.yaml
"""

# (label, verb, resource, name): what the lesson asks of each ServiceAccount
QUESTIONS = [
    ("get the Secret payments-db", "get", "secrets", SECRET),
    ("patch the Secret payments-db", "patch", "secrets", SECRET),
    ("get another Secret", "get", "secrets", "other-secret"),
    ("list Secrets (every Secret's data)", "list", "secrets", None),
    ("watch Secrets", "watch", "secrets", None),
    ("create Secrets", "create", "secrets", None),
    ("update payments-db", "update", "secrets", SECRET),
    ("delete payments-db", "delete", "secrets", SECRET),
    ("get ConfigMaps", "get", "configmaps", "any"),
    ("create Pods", "create", "pods", None),
]


def render_pair(rbac_yaml: str, deployment_yaml: str, namespace: str = NAMESPACE) -> k8s.Manifest:
    """The exercise's two YAML texts rendered by kustomize in ``namespace`` (a throw-away folder).

    Raises :class:`cloudlab.k8s.RenderError` saying which text is not YAML, or what kustomize said.
    """
    for label, text in (("RBAC_YAML", rbac_yaml), ("DEPLOYMENT_YAML", deployment_yaml)):
        try:
            k8s.load(text, strict=True)
        except k8s.RenderError as err:
            raise k8s.RenderError(f"{label}: {err}") from None
    with tempfile.TemporaryDirectory(prefix="l07-k8s-") as tmp:
        d = Path(tmp)
        (d / "kustomization.yaml").write_text(PAIR_KUSTOMIZATION.format(namespace=namespace))
        (d / "rbac.yaml").write_text(rbac_yaml)
        (d / "deployment.yaml").write_text(deployment_yaml)
        try:
            return k8s.kustomize(d, quiet=True)
        except k8s.RenderError as err:
            said = str(err).split("\n", 1)[-1].replace(str(d) + "/", "").replace(str(d), "the manifests")
            raise k8s.RenderError(f"kustomize could not render the manifests:\n{said}") from None


def allowed(objs, sa: str, namespace: str = NAMESPACE) -> list[str]:
    """The labels of :data:`QUESTIONS` that ServiceAccount ``namespace/sa`` may do (RBAC, as ``kubectl auth can-i``)."""
    return [label for label, verb, res, name in QUESTIONS if k8s.can(objs, sa, namespace, verb, res, name)]


def rbac_table(objs, namespace: str = NAMESPACE, accounts=(SERVICE_SA, SYNC_SA)) -> str:
    """What each ServiceAccount may do, as a table (the questions the check asks)."""
    rows = [
        (label, *("yes" if k8s.can(objs, sa, namespace, verb, res, name) else "no" for sa in accounts))
        for label, verb, res, name in QUESTIONS
    ]
    return Table(("may it ...", *accounts), rows, indent=2).text()


def _meta(obj) -> dict:
    return k8s.meta(obj) if isinstance(obj, dict) else {}


def cluster_wide(objs, sa: str, namespace: str = NAMESPACE) -> list[str]:
    """ClusterRoleBindings that bind ServiceAccount ``namespace/sa``: what they grant holds in EVERY namespace."""
    out = []
    for b in objs:
        if not isinstance(b, dict) or b.get("kind") != "ClusterRoleBinding":
            continue
        subjects = b.get("subjects") if isinstance(b.get("subjects"), list) else []
        if any(
            isinstance(s, dict) and s.get("kind") == "ServiceAccount" and s.get("name") == sa
            and s.get("namespace") == namespace
            for s in subjects
        ):  # fmt: skip
            out.append(str(_meta(b).get("name")))
    return out


def foreign_subjects(objs, namespace: str) -> list[str]:
    """RoleBindings in ``namespace`` that name a ServiceAccount of ANOTHER namespace: ``binding -> ns/sa``."""
    out = []
    for b in objs:
        if not isinstance(b, dict) or b.get("kind") != "RoleBinding" or _meta(b).get("namespace") != namespace:
            continue
        for s in b.get("subjects") if isinstance(b.get("subjects"), list) else []:
            if isinstance(s, dict) and s.get("kind") == "ServiceAccount" and s.get("namespace", namespace) != namespace:
                out.append(f"{_meta(b).get('name')} -> {s.get('namespace')}/{s.get('name')}")
    return out


def token_mounted(objs, workload) -> bool:
    """Do the pods of ``workload`` get an API token? The pod's ``automountServiceAccountToken`` wins, then its
    ServiceAccount's; Kubernetes mounts one when neither says false."""
    spec = k8s.pod_spec(workload)
    if isinstance(spec.get("automountServiceAccountToken"), bool):
        return spec["automountServiceAccountToken"]
    sa = objs.get("ServiceAccount", spec.get("serviceAccountName") or "default") if hasattr(objs, "get") else None
    if isinstance(sa, dict) and isinstance(sa.get("automountServiceAccountToken"), bool):
        return sa["automountServiceAccountToken"]
    return True


def secret_file_access(workload, volume: str, key: str = "password") -> dict:
    """Who can read the file ``key`` of the Secret volume ``volume`` in the pods of ``workload``.

    The kubelet writes the file owned by root (UID 0) with the volume's mode (``items[].mode``, else
    ``defaultMode``, else 0644). With ``fsGroup`` it also gives the file that group and adds group read (a Secret
    volume is read-only: mode | 0440). The container's user comes from ``runAsUser`` (the container's, else the
    pod's; None: the image's USER, unknown here); ``fsGroup`` is one of its groups. Returns ``{'mode', 'uid',
    'fs_group', 'readable', 'others'}``: the mode the file ends up with, whether that UID can read it, and
    whether any other user can (``others``)."""
    spec = k8s.pod_spec(workload)
    pod_sc = spec.get("securityContext") if isinstance(spec.get("securityContext"), dict) else {}
    vols = [v for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("name") == volume]
    src = vols[0].get("secret") if vols and isinstance(vols[0].get("secret"), dict) else {}
    mode = src.get("defaultMode", k8s.secrets.DEFAULT_MODE)
    for item in src.get("items") or []:
        if isinstance(item, dict) and item.get("key") == key and isinstance(item.get("mode"), int):
            mode = item["mode"]
    mode = mode if isinstance(mode, int) else k8s.secrets.DEFAULT_MODE
    fs_group = pod_sc.get("fsGroup") if isinstance(pod_sc.get("fsGroup"), int) else None
    if fs_group is not None:
        mode |= 0o440
    uid = None
    for c in spec.get("containers") or []:
        csc = c.get("securityContext") if isinstance(c, dict) and isinstance(c.get("securityContext"), dict) else {}
        uid = csc.get("runAsUser", pod_sc.get("runAsUser"))
        break
    uid = uid if isinstance(uid, int) else None
    if uid == 0:
        readable = bool(mode & 0o400)
    elif uid is None:
        readable = False
    else:
        readable = bool(mode & 0o004) or (fs_group is not None and bool(mode & 0o040))
    return {"mode": mode, "uid": uid, "fs_group": fs_group, "readable": readable, "others": bool(mode & 0o007)}


def checkov_skips(objs) -> list[tuple[str, str, str]]:
    """Every checkov skip written in the manifests' annotations (``checkov.io/skipN: ID=reason``): (object, id, why)."""
    out = []
    for o in objs:
        notes = _meta(o).get("annotations")
        for k, v in (notes if isinstance(notes, dict) else {}).items():
            if str(k).startswith("checkov.io/skip"):
                cid, _, why = str(v).partition("=")
                out.append((f"{o.get('kind')}/{_meta(o).get('name')}", cid.strip(), why.strip()))
    return out
