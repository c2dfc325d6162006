"""Render manifests with the real tools (helm, kubectl kustomize), load them, validate and scan them offline.

Every function prints the real command it runs (``quiet=True`` silences that), so a learner can repeat
it in a terminal. Validation is kubernetes-validate's strict schemas for the course's Kubernetes version,
plus what it only warns about: an API version that Kubernetes removed fails here (a cluster would refuse it).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import yaml

from .. import scanners
from ..lab import tools

# The Kubernetes version of the course: the kind node image (lessons/06_kubernetes/kind/cluster.yaml), the
# schemas every manifest is validated against, and helm's .Capabilities.KubeVersion. 1.36 is supported upstream
# until 2027-06-28 (kubernetes.io/releases). The machine's kubectl may be older (this one is 1.32): offline the course
# uses it only client-side (`kubectl kustomize`), where no API server means no version skew; live, `make cluster` and
# k8s.mode() compare it with the cluster's version and say when it is outside kubectl's one-minor skew policy.
K8S_VERSION = "1.36"

# (apiVersion, kind) -> (the release that removed it, what to write instead). From the Kubernetes
# deprecation guide; kubernetes-validate has no schema for these and only WARNs, so the course fails them.
REMOVED_APIS = {
    ("extensions/v1beta1", "Deployment"): ("1.16", "apps/v1"),
    ("apps/v1beta1", "Deployment"): ("1.16", "apps/v1"),
    ("apps/v1beta2", "Deployment"): ("1.16", "apps/v1"),
    ("extensions/v1beta1", "DaemonSet"): ("1.16", "apps/v1"),
    ("apps/v1beta2", "StatefulSet"): ("1.16", "apps/v1"),
    ("apps/v1beta1", "StatefulSet"): ("1.16", "apps/v1"),
    ("extensions/v1beta1", "NetworkPolicy"): ("1.16", "networking.k8s.io/v1"),
    ("extensions/v1beta1", "Ingress"): ("1.22", "networking.k8s.io/v1"),
    ("networking.k8s.io/v1beta1", "Ingress"): ("1.22", "networking.k8s.io/v1"),
    ("networking.k8s.io/v1beta1", "IngressClass"): ("1.22", "networking.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "Role"): ("1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "RoleBinding"): ("1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"): ("1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"): ("1.22", "rbac.authorization.k8s.io/v1"),
    ("batch/v1beta1", "CronJob"): ("1.25", "batch/v1"),
    ("policy/v1beta1", "PodDisruptionBudget"): ("1.25", "policy/v1"),
    ("policy/v1beta1", "PodSecurityPolicy"): ("1.25", "Pod Security admission (namespace labels)"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): ("1.25", "autoscaling/v2"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): ("1.26", "autoscaling/v2"),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema"): ("1.29", "flowcontrol.apiserver.k8s.io/v1"),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema"): ("1.32", "flowcontrol.apiserver.k8s.io/v1"),
}


class K8sError(RuntimeError):
    """A render or validation step failed; the message says which tool said what, and what to do."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class RenderError(K8sError):
    """helm or kustomize could not render (a template error, a missing value, a bad path)."""


class InvalidManifest(K8sError):
    """An object does not validate (schema, removed API); ``.problems`` lists (object, message)."""

    def __init__(self, message: str, problems=()):
        super().__init__(message)
        self.problems = list(problems)


def shown(cmd) -> str:
    """A command as a learner would type it (the lab's helm is just `helm`)."""
    words = [Path(str(c)).name if i == 0 else str(c) for i, c in enumerate(cmd)]
    return " ".join(shlex.quote(w) for w in words)


def run(cmd, quiet: bool = False, timeout: float = 60.0, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run a command (printing it first unless ``quiet``); the result, whatever its exit code."""
    if not quiet:
        print(f"$ {shown(cmd)}")
    try:
        return subprocess.run(
            [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, input=stdin, check=False
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"{shown(cmd)} did not finish within {timeout:.0f} s")


class Manifest(list):
    """The objects of one render (a list of dicts), with the YAML text and the command that made it."""

    def __init__(self, objects=(), text: str = "", command: str = ""):
        super().__init__(o for o in objects if isinstance(o, dict))
        self.text = text
        self.command = command

    def all(self, kind: str) -> list[dict]:
        return [o for o in self if o.get("kind") == kind]

    def get(self, kind: str, name: str | None = None) -> dict | None:
        """The first object of ``kind`` (named ``name`` if given), or None."""
        return next((o for o in self.all(kind) if name is None or meta(o).get("name") == name), None)

    def kinds(self) -> list[str]:
        return [f"{o.get('kind')}/{meta(o).get('name')}" for o in self]

    def write(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text or yaml.safe_dump_all(list(self), sort_keys=False))
        return path

    def __repr__(self):
        return f"Manifest({len(self)} objects: {', '.join(self.kinds())})"


def meta(obj) -> dict:
    m = obj.get("metadata") if isinstance(obj, dict) else None
    return m if isinstance(m, dict) else {}


def load(source, command: str = "", strict: bool = False) -> Manifest:
    """Objects from YAML text or a file (several documents; empty ones skipped); a List is unpacked.

    ``strict`` (for YAML a learner typed): a document that is not a mapping with a ``kind`` is a
    :class:`RenderError`, not skipped.
    """
    text = Path(source).read_text() if isinstance(source, Path) else str(source)
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise RenderError(f"not valid YAML: {e}") from None
    if strict:
        bad = [d for d in docs if d and (not isinstance(d, dict) or "kind" not in d)]
        if bad:
            raise RenderError(f"every document needs a kind (found {str(bad[0])[:80]!r})")
    objects = []
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "List":
            objects += [i for i in d.get("items") or [] if isinstance(i, dict)]
        elif isinstance(d, dict):
            objects.append(d)
    return Manifest(objects, text, command)


def helm_exe() -> str:
    return tools.require("helm", "06")


def helm_template(
    chart,
    release: str = "orders",
    namespace: str = "default",
    values=(),
    set_values: dict | None = None,
    quiet: bool = False,
) -> Manifest:
    """``helm template`` the chart: the objects it would install (no cluster needed)."""
    cmd = [helm_exe(), "template", release, str(chart), "--namespace", namespace, "--kube-version", K8S_VERSION]
    for f in values:
        cmd += ["-f", str(f)]
    for k, v in (set_values or {}).items():
        cmd += ["--set", f"{k}={v}"]
    out = run(cmd, quiet=quiet)
    if out.returncode != 0:
        raise RenderError(f"`{shown(cmd)}` failed:\n{out.stderr.strip()[-1500:]}")
    return load(out.stdout, shown(cmd))


def helm_lint(chart, values=(), strict: bool = True, quiet: bool = False) -> tuple[bool, str]:
    """``helm lint --strict``: (passed, what it said)."""
    cmd = [helm_exe(), "lint", str(chart), "--kube-version", K8S_VERSION] + (["--strict"] if strict else [])
    for f in values:
        cmd += ["-f", str(f)]
    out = run(cmd, quiet=quiet)
    return out.returncode == 0, (out.stdout + out.stderr).strip()


def kustomize(path, quiet: bool = False) -> Manifest:
    """``kubectl kustomize`` an overlay: the objects it would apply (offline)."""
    kubectl = tools.require("kubectl", "06")
    cmd = [kubectl, "kustomize", str(path)]
    out = run(cmd, quiet=quiet)
    if out.returncode != 0:
        raise RenderError(f"`{shown(cmd)}` failed:\n{out.stderr.strip()[-1500:]}")
    return load(out.stdout, shown(cmd))


def validate(objects, version: str = K8S_VERSION, strict: bool = True) -> list[tuple[str, str]]:
    """Every problem of every object: [(\"Kind/name\", message)]; empty means all valid.

    kubernetes-validate's strict schemas (unknown fields are errors), run in this process (the CLI
    is ``kubernetes-validate --strict -k <version> FILE``); a removed API is an error, not a warning.
    """
    from kubernetes_validate import utils as kv

    problems = []
    for obj in objects:
        if not isinstance(obj, dict):
            problems.append(("?", f"not an object: {obj!r:.60}"))
            continue
        api, kind = obj.get("apiVersion"), obj.get("kind")
        where = f"{kind}/{meta(obj).get('name', '?')}"
        if not api or not kind or not isinstance(api, str) or not isinstance(kind, str):
            problems.append((where, "apiVersion and kind are required (two strings)"))
            continue
        if (api, kind) in REMOVED_APIS:
            gone, instead = REMOVED_APIS[(api, kind)]
            problems.append((where, f"{api} {kind} was removed in Kubernetes {gone}: use {instead}"))
            continue
        try:
            kv.validate(obj, version, strict)
        except kv.SchemaNotFoundError:
            problems.append((where, f"Kubernetes {version} has no {kind} in {api} (a typo, or an API it removed)"))
        except kv.ValidationError as e:
            at = ".".join(str(p) for p in e.path) or "(top level)"
            problems.append((where, f"{at}: {e.message}"))
        except Exception as e:  # whatever else the validator trips on is a problem of this object, not a crash
            problems.append((where, f"kubernetes-validate could not check it: {type(e).__name__}: {e}"))
    return problems


def check_valid(objects, version: str = K8S_VERSION, quiet: bool = False, source: str = "") -> int:
    """Validate and say so; raise :class:`InvalidManifest` listing every problem. Returns the object count."""
    if not quiet:
        print(f"$ kubernetes-validate --strict -k {version}.0 {source or '<rendered objects>'}  (in-process)")
    problems = validate(objects, version)
    if problems:
        lines = "\n".join(f"  - {w}: {m}" for w, m in problems)
        raise InvalidManifest(f"{len(problems)} problem(s) against Kubernetes {version}:\n{lines}", problems)
    if not quiet:
        print(f"{len(objects)} objects valid against Kubernetes {version} (strict schemas, no removed APIs)")
    return len(objects)


def scan(named: dict, folder, lesson: str = "", quiet: bool = False) -> dict:
    """checkov's Kubernetes rules over rendered objects, in one run: ``{file stem: objects}`` written as
    ``<folder>/<stem>.yaml``. A folder that holds other manifests is refused (:class:`K8sError`): checkov
    would scan them too, and nothing here deletes a file it did not write.

    The scan is :func:`cloudlab.scanners.checkov` (``framework="kubernetes"``); it also handles a folder
    under a hidden one such as the lab's ``.lab/``, which checkov alone would silently skip.
    Returns its report (``failed``, ``passed``, ``skipped``, ``resources``, ``command``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{stem}.yaml" for stem in named}
    others = sorted(
        rel.as_posix()
        for rel in (p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
        if rel.suffix in (".yaml", ".yml", ".json")
        and not any(part.startswith(".") for part in rel.parts)
        and rel.as_posix() not in wanted
    )
    if others:
        raise K8sError(
            f"{folder} also holds {', '.join(others[:5])}: checkov would scan those too. "
            "Give the scan a folder of its own."
        )
    for stem, objects in named.items():
        m = objects if isinstance(objects, Manifest) else Manifest(objects)
        m.write(folder / f"{stem}.yaml")
    return scanners.checkov(folder, framework="kubernetes", quiet=quiet, lesson=lesson)
