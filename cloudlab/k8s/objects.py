"""Questions about Kubernetes objects, answered without a cluster: selectors, ports, quantities, QoS,
probes, security contexts, images, the HPA formula and rollout arithmetic.

Every function takes plain dicts (rendered or read from a cluster) and never raises on a strange value:
it answers None, False or an empty list, so a check can turn the answer into plain words.
"""

from __future__ import annotations

import math
import re

from .render import meta

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
_QTY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|K|M|G|T|P|E)?\s*$")
MUTABLE_TAGS = {"latest", "main", "master", "stable", "dev", "develop", "edge", "nightly", "current", "prod"}


def dig(obj, *path, default=None):
    """``obj[path[0]][path[1]]...``, or ``default`` as soon as a step is missing or not a container."""
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return default
    return obj


def quantity(value) -> float | None:
    """A Kubernetes quantity in base units: '128Mi' -> 134217728.0, '500m' -> 0.5, 2 -> 2.0; None if unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = _QTY.match(str(value))
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""] if m else None


def mib(value) -> float | None:
    q = quantity(value)
    return None if q is None else q / 2**20


def pod_template(obj) -> dict:
    """The pod metadata+spec a workload creates (a Pod: itself); {} when there is none."""
    if not isinstance(obj, dict):
        return {}
    if obj.get("kind") == "Pod":
        return obj
    if obj.get("kind") == "CronJob":
        return dig(obj, "spec", "jobTemplate", "spec", "template", default={}) or {}
    t = dig(obj, "spec", "template", default={})
    return t if isinstance(t, dict) else {}


def pod_spec(obj) -> dict:
    s = pod_template(obj).get("spec")
    return s if isinstance(s, dict) else {}


def pod_labels(obj) -> dict:
    labels = meta(pod_template(obj)).get("labels")
    return labels if isinstance(labels, dict) else {}


def containers(obj) -> list[dict]:
    cs = pod_spec(obj).get("containers")
    return [c for c in cs if isinstance(c, dict)] if isinstance(cs, list) else []


def container(obj, name: str | None = None) -> dict:
    """The container called ``name`` (else the first), or {}."""
    cs = containers(obj)
    return next((c for c in cs if name is None or c.get("name") == name), {}) if cs else {}


def container_ports(c: dict) -> dict:
    """{name: number} of a container's named ports, plus {number: number} for every port."""
    out = {}
    for p in c.get("ports") or []:
        if isinstance(p, dict) and isinstance(p.get("containerPort"), int):
            out[p["containerPort"]] = p["containerPort"]
            if p.get("name"):
                out[p["name"]] = p["containerPort"]
    return out


def selector_matches(selector, labels) -> bool:
    """Does a label selector match these labels? Takes {matchLabels, matchExpressions} or a plain map
    (a Service's). An empty selector matches everything; a missing one (None) matches nothing."""
    if not isinstance(selector, dict) or not isinstance(labels, dict):
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        if not isinstance(e, dict):
            return False
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def qos_class(obj) -> str:
    """The pod's QoS class as the kubelet computes it: Guaranteed, Burstable or BestEffort."""
    cs = containers(obj)
    req_any = False
    guaranteed = bool(cs)
    for c in cs:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        req_any = req_any or bool(req) or bool(lim)
        for r in ("cpu", "memory"):
            want = req.get(r, lim.get(r))  # a request defaults to the limit
            if r not in lim or quantity(want) != quantity(lim.get(r)):
                guaranteed = False
    if guaranteed:
        return "Guaranteed"
    return "Burstable" if req_any else "BestEffort"


def probe_target(probe) -> tuple[str | None, object]:
    """(path, port) of an httpGet probe; (None, port) for tcpSocket/grpc; (None, None) for none/exec."""
    if not isinstance(probe, dict):
        return None, None
    if isinstance(probe.get("httpGet"), dict):
        return probe["httpGet"].get("path", "/"), probe["httpGet"].get("port")
    for k in ("tcpSocket", "grpc"):
        if isinstance(probe.get(k), dict):
            return None, probe[k].get("port")
    return None, None


def probe_budget(probe) -> float:
    """Seconds a probe tolerates failures before it acts: failureThreshold x periodSeconds (+ the delay)."""
    if not isinstance(probe, dict):
        return 0.0
    period = probe.get("periodSeconds", 10)
    failures = probe.get("failureThreshold", 3)
    delay = probe.get("initialDelaySeconds", 0)
    try:
        return float(failures) * float(period) + float(delay)
    except (TypeError, ValueError):
        return 0.0


def security(obj, c: dict) -> dict:
    """The effective security settings of container ``c``: its own securityContext over the pod's."""
    pod = pod_spec(obj).get("securityContext")
    own = c.get("securityContext") if isinstance(c, dict) else None
    pod, own = (pod if isinstance(pod, dict) else {}), (own if isinstance(own, dict) else {})
    keys = ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile")
    out = {k: pod[k] for k in keys if k in pod}
    out.update(own)
    return out


def split_image(image) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference; a registry port is not a tag."""
    ref = str(image or "")
    name, _, digest = ref.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest or None
    return name, None, digest or None


def image_problem(image) -> str | None:
    """Why an image reference is not immutable, or None when it is (a digest, or a specific tag)."""
    repo, tag, digest = split_image(image)
    if not repo:
        return "there is no image"
    if digest:
        return None if re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else f"the digest {digest!r} is malformed"
    if tag is None:
        return f"{image!r} has no tag, which means `latest`"
    if tag.lower() in MUTABLE_TAGS or "{{" in tag or "$" in tag:
        return f"{image!r} uses the moving tag {tag!r}: the same name can mean different code tomorrow"
    return None


def hpa_desired(
    current_replicas: int,
    current_utilization: float,
    target_utilization: float,
    tolerance=0.1,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
) -> int:
    """The HPA's formula: ceil(current x current/target), unchanged within the 10 % tolerance, then held within
    minReplicas..maxReplicas when given. (What it does not model: the scale-down stabilization window, 300 s by
    default, during which the controller keeps the highest recommendation it made.)"""
    ratio = current_utilization / target_utilization
    desired = current_replicas if abs(ratio - 1.0) <= tolerance else math.ceil(current_replicas * ratio)
    if min_replicas is not None:
        desired = max(desired, min_replicas)
    if max_replicas is not None:
        desired = min(desired, max_replicas)
    return desired


def rollout_bounds(replicas: int, max_surge, max_unavailable) -> tuple[int, int]:
    """(most pods at once, fewest available pods) during a rolling update. Percentages as the
    controller rounds them: surge up, unavailable down."""

    def resolve(v, up: bool) -> int:
        if isinstance(v, str) and v.endswith("%"):
            x = replicas * float(v[:-1]) / 100
            return math.ceil(x) if up else math.floor(x)
        return int(v)

    surge, unavailable = resolve(max_surge, True), resolve(max_unavailable, False)
    return replicas + surge, replicas - unavailable
