"""Kubernetes Secrets, offline: how a workload's pods get them, and whether the API server encrypts them at rest.

Serves lesson 07 (secrets on Kubernetes). ``secret_use`` reads a workload's pod template (a Deployment,
StatefulSet, Job, CronJob or Pod); ``encryption_problems`` reads a kube-apiserver
``EncryptionConfiguration`` (the file given with ``--encryption-provider-config``). Neither raises on a
strange value.
"""

from __future__ import annotations

import yaml

from .objects import pod_spec

DEFAULT_MODE = 0o644  # a Secret volume's defaultMode when none is given


def _dicts(value) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def secret_use(obj) -> dict:
    """How the pods of ``obj`` get Secrets: ``{'env': [(container, variable, secret)], 'volumes': {volume:
    secret}, 'mounts': [(container, volume, path, readOnly)], 'modes': {volume: defaultMode}}``.
    ``envFrom`` a Secret shows as the variable ``(envFrom)``; init containers count too."""
    spec = pod_spec(obj)
    vols = {v.get("name"): v["secret"] for v in _dicts(spec.get("volumes")) if isinstance(v.get("secret"), dict)}
    out = {
        "env": [],
        "volumes": {n: s.get("secretName") for n, s in vols.items()},
        "modes": {n: s.get("defaultMode", DEFAULT_MODE) for n, s in vols.items()},
        "mounts": [],
    }
    for c in _dicts(spec.get("containers")) + _dicts(spec.get("initContainers")):
        for e in _dicts(c.get("env")):
            source = e.get("valueFrom")
            ref = source.get("secretKeyRef") if isinstance(source, dict) else None
            if isinstance(ref, dict):
                out["env"].append((c.get("name"), e.get("name"), ref.get("name")))
        for ef in _dicts(c.get("envFrom")):
            if isinstance(ef.get("secretRef"), dict):
                out["env"].append((c.get("name"), "(envFrom)", ef["secretRef"].get("name")))
        for m in _dicts(c.get("volumeMounts")):
            if m.get("name") in vols:
                out["mounts"].append((c.get("name"), m.get("name"), m.get("mountPath"), bool(m.get("readOnly"))))
    return out


def encryption_problems(doc) -> list[str]:
    """What is wrong with a kube-apiserver EncryptionConfiguration for Secrets ([] = it encrypts them).

    ``doc``: the YAML text or the parsed mapping. The first provider of the entry for ``secrets`` encrypts
    new writes (``identity`` there means plain text); KMS should be the v2 API on a Unix socket.
    """
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
    entry = next((r for r in _dicts(doc.get("resources")) if "secrets" in (r.get("resources") or [])), None)
    if entry is None:
        return probs + ["no entry covers `secrets`: they are stored in plain text"]
    providers = entry.get("providers") if isinstance(entry.get("providers"), list) else []
    if not providers:
        return probs + ["`secrets` has no providers"]
    first_provider = providers[0] if isinstance(providers[0], dict) else {}
    first = next(iter(first_provider), "")
    if first == "identity":
        probs.append("the first provider is identity: new Secrets are written to etcd in plain text (it must be last)")
    elif first == "kms":
        kms = first_provider["kms"] if isinstance(first_provider["kms"], dict) else {}
        if kms.get("apiVersion") != "v2":
            probs.append("use the KMS v2 API (kms.apiVersion: v2; v1 is deprecated)")
        if not str(kms.get("endpoint", "")).startswith("unix://"):
            probs.append("the KMS plugin's endpoint is a Unix socket (unix:///...)")
    elif first not in ("aescbc", "aesgcm", "secretbox"):
        probs.append(f"unknown provider {first!r}")
    return probs
