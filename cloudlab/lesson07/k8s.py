"""Lesson 07's Kubernetes files and exercise 7's rendering; everything general is the toolkit :mod:`cloudlab.k8s`
(kustomize, validate, scan, RBAC's ``can``, ``secret_use``, ``encryption_problems``, the live cluster).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .. import k8s
from ..lab import ROOT

K8S = ROOT / "lessons" / "07_secrets-and-least-privilege" / "k8s"

PAIR_KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: payments
resources:
  - rbac.yaml
  - deployment.yaml
"""


def render_pair(rbac_yaml: str, deployment_yaml: str) -> k8s.Manifest:
    """The exercise's two YAML texts rendered by kustomize in namespace ``payments`` (a throw-away folder).

    Raises :class:`cloudlab.k8s.RenderError` saying which text is not YAML, or what kustomize said.
    """
    for label, text in (("RBAC_YAML", rbac_yaml), ("DEPLOYMENT_YAML", deployment_yaml)):
        try:
            k8s.load(text, strict=True)
        except k8s.RenderError as err:
            raise k8s.RenderError(f"{label}: {err}") from None
    with tempfile.TemporaryDirectory(prefix="l07-k8s-") as tmp:
        d = Path(tmp)
        (d / "kustomization.yaml").write_text(PAIR_KUSTOMIZATION)
        (d / "rbac.yaml").write_text(rbac_yaml)
        (d / "deployment.yaml").write_text(deployment_yaml)
        try:
            return k8s.kustomize(d, quiet=True)
        except k8s.RenderError as err:
            said = str(err).split("\n", 1)[-1].replace(str(d) + "/", "").replace(str(d), "the manifests")
            raise k8s.RenderError(f"kustomize could not render the manifests:\n{said}") from None
