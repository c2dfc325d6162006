"""Lesson 07's Kubernetes part, offline: render with kustomize, validate strictly, and ask the rendered
RBAC objects "can this ServiceAccount do that?" the way the API server's RBAC authorizer would.

Kept small and in one place on purpose: lesson 06's shared toolkit ``cloudlab.k8s`` is being written at
the same time; after both merge, ``render``/``validate``/``cluster_answers`` belong there, and ``can`` and
``secret_use`` are candidates for it too. Live on a cluster (kind) when one answers; here it is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from ..lab import ROOT

K8S = ROOT / "lessons" / "07_secrets-and-least-privilege" / "k8s"
K8S_VERSION = "1.32.0"  # the kubectl on these machines


class ManifestError(ValueError):
    """Manifests that do not render or validate; the message says where."""

    def _render_traceback_(self):
        return [f"\x1b[31mManifestError\x1b[0m: {self}"]


def kustomize(path, quiet: bool = False) -> list[dict]:
    """``kubectl kustomize <path>``: the objects it renders (raises ManifestError with kustomize's message)."""
    exe = shutil.which("kubectl")
    if exe is None:
        raise ManifestError("kubectl is not installed: see https://kubernetes.io/docs/tasks/tools/")
    if not quiet:
        print(f"$ kubectl kustomize {Path(path).relative_to(ROOT) if Path(path).is_relative_to(ROOT) else path}")
    out = subprocess.run([exe, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise ManifestError(f"kustomize could not render {path}:\n{out.stderr.strip()[-800:]}")
    return parse(out.stdout)


PAIR_KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: payments
resources:
  - rbac.yaml
  - deployment.yaml
"""


def render_pair(rbac_yaml: str, deployment_yaml: str) -> list[dict]:
    """The exercise's two YAML texts rendered by kustomize in namespace ``payments`` (a throw-away folder)."""
    import tempfile

    for label, text in (("RBAC_YAML", rbac_yaml), ("DEPLOYMENT_YAML", deployment_yaml)):
        try:
            parse(text)
        except ManifestError as err:
            raise ManifestError(f"{label}: {err}") from None
    with tempfile.TemporaryDirectory(prefix="l07-k8s-") as tmp:
        d = Path(tmp)
        (d / "kustomization.yaml").write_text(PAIR_KUSTOMIZATION)
        (d / "rbac.yaml").write_text(rbac_yaml)
        (d / "deployment.yaml").write_text(deployment_yaml)
        try:
            return kustomize(d, quiet=True)
        except ManifestError as err:
            raise ManifestError(str(err).replace(str(d) + "/", "").replace(str(d), "the manifests")) from None


def parse(text: str) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as e:
        raise ManifestError(f"not valid YAML: {e}") from None
    bad = [d for d in docs if not isinstance(d, dict) or "kind" not in d]
    if bad:
        raise ManifestError(f"every document needs a kind (found {str(bad[0])[:80]!r})")
    return docs


def validate(objs: list[dict]) -> list[str]:
    """Strict schema validation (kubernetes-validate, Kubernetes 1.32): unknown fields are errors. [] = valid."""
    import kubernetes_validate

    problems = []
    for o in objs:
        try:
            kubernetes_validate.validate(o, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            name = f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}"
            problems.append(f"{name}: {e.message} (at {'.'.join(str(p) for p in e.path) or 'top level'})")
        except Exception as e:  # an unknown kind/apiVersion
            problems.append(f"{o.get('kind')}: {e}")
    return problems


def dump(objs: list[dict], path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return path


def checkov(named: dict[str, list[dict]]) -> dict:
    """checkov's Kubernetes rules over rendered objects (``{file stem: objects}``), from a scratch folder:
    checkov skips folders whose path has a hidden part, such as the lab's ``.lab``."""
    import tempfile

    from .. import scanners

    with tempfile.TemporaryDirectory(prefix="l07-k8s-scan-") as tmp:
        for stem, objs in named.items():
            dump(objs, Path(tmp) / f"{stem}.yaml")
        return scanners.checkov(tmp, framework="kubernetes", lesson="07")


# ------------------------------------------------------------------ RBAC, as the authorizer reads it
def _match(values, want) -> bool:
    values = values or []
    return "*" in values or want in values


def can(
    objs: list[dict], sa: str, namespace: str, verb: str, resource: str, name: str | None = None, group: str = ""
) -> bool:
    """May ServiceAccount ``namespace/sa`` do ``verb`` on ``resource`` (named ``name``) in ``namespace``,
    according to the Roles, ClusterRoles and their bindings in ``objs``? RBAC only adds: any rule that
    matches allows. A rule with resourceNames never allows list/watch-all or create (no name to match)."""
    roles = {
        (o["kind"], (_meta(o).get("namespace") if o["kind"] == "Role" else None), _meta(o).get("name")): o
        for o in objs
        if o.get("kind") in ("Role", "ClusterRole")
    }
    for b in objs:
        if b.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        bns = _meta(b).get("namespace")
        if b["kind"] == "RoleBinding" and bns != namespace:
            continue
        subjects = b.get("subjects") or []
        if not any(
            s.get("kind") == "ServiceAccount" and s.get("name") == sa and s.get("namespace", bns) == namespace
            for s in subjects
        ):
            continue
        ref = b.get("roleRef") or {}
        role = roles.get((ref.get("kind"), bns if ref.get("kind") == "Role" else None, ref.get("name")))
        for rule in (role or {}).get("rules") or []:
            if not (_match(rule.get("apiGroups"), group) and _match(rule.get("resources"), resource)):
                continue
            if not _match(rule.get("verbs"), verb):
                continue
            names = rule.get("resourceNames")
            if names and (name is None or name not in names):
                continue
            return True
    return False


def find(objs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind and (name is None or _meta(o).get("name") == name)]


def _meta(o: dict) -> dict:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def pod_spec(deployment: dict) -> dict:
    return ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}


def secret_use(deployment: dict) -> dict:
    """How a Deployment's pods get Secrets: ``{'env': [(container, var, secret)], 'volumes': {volume: secret},
    'mounts': [(container, volume, path, readOnly)], 'modes': {volume: defaultMode}}``."""
    spec = pod_spec(deployment)
    vols = {v["name"]: v["secret"] for v in spec.get("volumes") or [] if "secret" in v}
    out = {
        "env": [],
        "volumes": {n: s.get("secretName") for n, s in vols.items()},
        "modes": {n: s.get("defaultMode", 0o644) for n, s in vols.items()},
        "mounts": [],
    }
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                out["env"].append((c["name"], e["name"], ref.get("name")))
        for ef in c.get("envFrom") or []:
            if "secretRef" in ef:
                out["env"].append((c["name"], "(envFrom)", ef["secretRef"].get("name")))
        for m in c.get("volumeMounts") or []:
            if m["name"] in vols:
                out["mounts"].append((c["name"], m["name"], m["mountPath"], bool(m.get("readOnly"))))
    return out


# ------------------------------------------------------------------ encryption at rest
def encryption_problems(doc) -> list[str]:
    """What is wrong with a kube-apiserver EncryptionConfiguration for Secrets ([] = it encrypts them)."""
    if isinstance(doc, str):
        try:
            doc = yaml.safe_load(doc)
        except yaml.YAMLError as e:
            return [f"not valid YAML: {e}"]
    if not isinstance(doc, dict):
        return ["an EncryptionConfiguration is a YAML mapping"]
    probs = []
    if doc.get("apiVersion") != "apiserver.config.k8s.io/v1" or doc.get("kind") != "EncryptionConfiguration":
        probs.append("apiVersion/kind must be apiserver.config.k8s.io/v1 / EncryptionConfiguration")
    entry = next((r for r in doc.get("resources") or [] if "secrets" in (r.get("resources") or [])), None)
    if entry is None:
        return probs + ["no entry covers `secrets`: they are stored in plain text"]
    providers = entry.get("providers") or []
    if not providers:
        return probs + ["`secrets` has no providers"]
    first = next(iter(providers[0]), "")
    if first == "identity":
        probs.append("the first provider is identity: new Secrets are written to etcd in plain text (it must be last)")
    elif first == "kms":
        kms = providers[0]["kms"] or {}
        if kms.get("apiVersion") != "v2":
            probs.append("use the KMS v2 API (kms.apiVersion: v2; v1 is deprecated)")
        if not str(kms.get("endpoint", "")).startswith("unix://"):
            probs.append("the KMS plugin's endpoint is a Unix socket (unix:///...)")
    elif first not in ("aescbc", "aesgcm", "secretbox"):
        probs.append(f"unknown provider {first!r}")
    return probs


# ------------------------------------------------------------------ live
def cluster_answers() -> tuple[bool, str]:
    """Does a Kubernetes API server answer kubectl's current context? (kind on a learner's machine)"""
    exe = shutil.which("kubectl")
    if exe is None:
        return False, "kubectl is not installed"
    try:
        out = subprocess.run(
            [exe, "version", "-o", "json", "--request-timeout=3s"], capture_output=True, text=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        return False, "kubectl timed out"
    try:
        server = json.loads(out.stdout or "{}").get("serverVersion")
    except ValueError:
        server = None
    if not server:
        return False, "no cluster answers kubectl (create one with `kind create cluster`)"
    return True, f"Kubernetes {server.get('gitVersion')}"
