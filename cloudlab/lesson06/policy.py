"""Lesson 06's exercise checks 06.5 (NetworkPolicies) and 06.6 (hardening and the policy scan), on the chart
rendered as a release and namespace it has never seen (:mod:`.chartcheck`)."""

from __future__ import annotations

import re

from .. import k8s
from ..checks import check
from . import EX_NAMESPACE, IMAGE_TAG, workdir
from .chartcheck import live, renders

# The findings this lab cannot meet, and so the only ones a skip is accepted for (the lesson explains both).
SKIPPABLE = {
    "CKV_K8S_15": "imagePullPolicy Always: kind loads images without a registry, so a pull would fail",
    "CKV_K8S_43": "an image digest: kind-loaded images have no registry digest",
}
FIX_DEFAULT = "checkov's guideline for it names the field"
FIX_HINTS = {
    "CKV_K8S_20": "securityContext.allowPrivilegeEscalation: false",
    "CKV_K8S_22": "securityContext.readOnlyRootFilesystem: true",
    "CKV_K8S_23": "runAsNonRoot: true with a numeric runAsUser",
    "CKV_K8S_28": "capabilities.drop: [ALL]",
    "CKV_K8S_37": "capabilities.drop: [ALL]",
    "CKV_K8S_30": "a container securityContext",
    "CKV_K8S_31": "seccompProfile: {type: RuntimeDefault}",
    "CKV_K8S_40": "runAsUser: 10001 (10000 or more)",
    "CKV_K8S_11": "resources.limits.cpu",
    "CKV_K8S_13": "resources.limits.memory",
    "CKV_K8S_8": "a livenessProbe",
    "CKV_K8S_9": "a readinessProbe",
    "CKV_K8S_38": "automountServiceAccountToken: false",
}


# ------------------------------------------------------------------ 06.5
def _flows(dep, namespace: str, svc_port_name_map):
    pod = k8s.Endpoint(namespace, k8s.pod_labels(dep), svc_port_name_map)
    other = k8s.Endpoint(namespace, {"app": "debug"}, {})
    ingress_ctl = k8s.Endpoint("ingress", {"app": "ingress-controller"}, {})
    dns = k8s.Endpoint("kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
    backing = k8s.Endpoint("l06-backing", {"app.kubernetes.io/name": "backing"}, {"http": 5000})
    outside = k8s.Endpoint(ip="203.0.113.10")
    must = [
        ("traffic from another namespace (the ingress controller) to the http port", ingress_ctl, pod, "http", "TCP"),
        ("DNS lookups (kube-dns, 53/UDP)", pod, dns, 53, "UDP"),
        ("DNS over TCP (kube-dns, 53/TCP: answers too large for UDP)", pod, dns, 53, "TCP"),
        ("the backing services (S3/SQS stand-in in l06-backing, 5000/TCP)", pod, backing, 5000, "TCP"),
    ]
    must_not = [
        ("the service calling an address on the internet (203.0.113.10:443)", pod, outside, 443, "TCP"),
        (
            "the service calling port 5000 anywhere else (203.0.113.10:5000): an egress rule without `to:` allows "
            "every address on its ports",
            pod,
            outside,
            5000,
            "TCP",
        ),
        (
            "DNS to a server on the internet (203.0.113.10:53/UDP): a DNS rule without `to:` lets anything leave "
            "as DNS",
            pod,
            outside,
            53,
            "UDP",
        ),
        ("another pod of the namespace reaching the backing services", other, backing, 5000, "TCP"),
        ("anyone reaching the pods on a port other than http (9090)", ingress_ctl, pod, 9090, "TCP"),
    ]
    return must, must_not


@check(
    "06.5",
    "Default deny, plus exactly what the service needs",
    hints=[
        "Write templates/networkpolicy.yaml with two NetworkPolicies: one that selects every pod (podSelector: {}) "
        "with policyTypes Ingress and Egress and no rules, and one for the order service's pods.",
        "The allow policy's podSelector uses the pods' labels (orders.selectorLabels). It allows ingress on port http, "
        "egress to kube-dns on 53 (UDP and TCP) and egress on port 5000 (aws.backingPort) to the backing pods only: "
        "every egress rule needs a `to:` (namespaceSelector + podSelector), or it allows every address.",
        "Compare with the lesson's chart: lessons/06_kubernetes/chart/orders/templates/networkpolicy.yaml "
        "(its values.yaml has the backing services' `to:`).",
    ],
)
def check_netpol(r, ns):
    live_m, m = renders(r)
    dep = m.get("Deployment")
    namespace = k8s.meta(dep).get("namespace")
    policies = m.all("NetworkPolicy")
    r.require(policies, f"{len(policies)} NetworkPolicies rendered", "no NetworkPolicy in the chart's output")
    pod_labels = k8s.pod_labels(dep)
    pod = k8s.Endpoint(namespace, pod_labels)
    for p in policies:
        sel = (p.get("spec") or {}).get("podSelector")
        r.expect(
            k8s.selected_pods(p, [pod]) or sel == {},
            f"{k8s.meta(p).get('name')} selects the order service's pods",
            f"{k8s.meta(p).get('name')} selects {sel}, which matches no pod of the chart (pods carry {pod_labels}): "
            "a policy that selects nothing protects nothing",
        )
    deny = [p for p in policies if (p.get("spec") or {}).get("podSelector") == {}]
    r.expect(
        any(set(k8s.policy_types(p)) == {"Ingress", "Egress"} for p in deny),
        "a default-deny policy isolates every pod of the namespace, both directions",
        "no policy with podSelector: {} and policyTypes [Ingress, Egress]: pods the allow rules do not name "
        "are wide open",
    )
    ports = k8s.container_ports(k8s.container(dep, "orders") or k8s.container(dep))
    must, must_not = _flows(dep, namespace, {k: v for k, v in ports.items() if isinstance(k, str)})
    for what, src, dst, port, proto in must:
        r.expect(
            k8s.allowed(policies, src, dst, port, proto),
            f"allowed: {what}",
            f"blocked, but the service needs it: {what}",
        )
    for what, src, dst, port, proto in must_not:
        r.expect(not k8s.allowed(policies, src, dst, port, proto), f"blocked: {what}", f"still allowed: {what}")
    cluster = live(r, live_m)
    if cluster is not None:
        labels = k8s.pod_labels(live_m.get("Deployment"))
        out = cluster.can_connect(EX_NAMESPACE, "https://kubernetes.default.svc:443/", labels, timeout=4)
        r.expect(not out, "live: a pod with the service's labels cannot reach the API server", "live: it still can")


# ------------------------------------------------------------------ 06.6
def _image_problem(image) -> str | None:
    """What the task asks: a digest, or the source-hash tag `make cluster` built (a version tag can be re-pushed)."""
    problem = k8s.image_problem(image)
    if problem:
        return problem
    _, tag, digest = k8s.split_image(image)
    if digest or tag == IMAGE_TAG:
        return None
    return (
        f"{image!r}: the tag {tag!r} is not the image `make cluster` built ({IMAGE_TAG}); "
        + (
            "a version tag such as this one can be pushed again with other content unless the registry enforces "
            "tag immutability, "
            if re.fullmatch(r"v?\d+(\.\d+)*([-.].*)?", str(tag))
            else ""
        )
        + "use lesson06.IMAGE_TAG (or pin a digest, image@sha256:...)"
    )


@check(
    "06.6",
    "Hardened, immutable, and the policy scan agrees",
    hints=[
        "Set podSecurityContext and securityContext in values.yaml, and the image `make cluster` builds "
        "(lesson06.IMAGE_TAG). Then scan: scanners.checkov(<folder with the rendered chart>, framework='kubernetes').",
        "runAsNonRoot needs a numeric runAsUser the kubelet can check (not 0); drop ALL capabilities, no privilege "
        "escalation, a read-only root filesystem (the chart mounts /tmp). Only CKV_K8S_15 and CKV_K8S_43 cannot be "
        "met in this lab: a skip with a reason in `annotations` for those two, a fix for everything else.",
        'ex.update_values({"image": {"tag": lesson06.IMAGE_TAG}, "podSecurityContext": {"runAsNonRoot": True, '
        '"runAsUser": 10001, "runAsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}, "securityContext": '
        '{"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}, '
        '"annotations": {"checkov.io/skip1": "CKV_K8S_15=<why>", "checkov.io/skip2": "CKV_K8S_43=<why>"}})',
    ],
)
def check_hardening(r, ns):
    live_m, m = renders(r)
    dep = m.get("Deployment")
    ok_before = len(r.wrong)
    for c in k8s.containers(dep):
        sec = k8s.security(dep, c)
        user, group = sec.get("runAsUser"), sec.get("runAsGroup")
        r.expect(
            sec.get("runAsNonRoot") is True and isinstance(user, int) and not isinstance(user, bool) and user > 0,
            f"{c.get('name')} runs as user {user}, and runAsNonRoot lets the kubelet enforce it",
            f"{c.get('name')}: runAsNonRoot={sec.get('runAsNonRoot')!r}, runAsUser={user!r}: "
            + (
                "user 0 is root, so the kubelet refuses to start it (CreateContainerConfigError)"
                if user == 0
                else "set runAsNonRoot: true AND a numeric runAsUser: with a root image (or a USER given by name) the "
                "kubelet cannot prove non-root and refuses to start the pod"
            ),
        )
        if group == 0:
            r.expect(
                False,
                "",
                f"{c.get('name')}: runAsGroup is 0, the root group: whatever the image leaves writable for its group "
                "becomes writable for the service. Use the service's own group (10001)",
            )
        caps = (sec.get("capabilities") or {}).get("drop") or []
        added = (sec.get("capabilities") or {}).get("add") or []
        r.expect(
            sec.get("allowPrivilegeEscalation") is False
            and "ALL" in caps
            and not added
            and sec.get("privileged") is not True,
            f"{c.get('name')}: no privilege escalation, every capability dropped",
            f"{c.get('name')}: allowPrivilegeEscalation={sec.get('allowPrivilegeEscalation')!r}, drop={caps}"
            + (f", add={added}" if added else "")
            + ": set allowPrivilegeEscalation: false and drop [ALL] (and add none back)",
        )
        r.expect(
            sec.get("readOnlyRootFilesystem") is True,
            f"{c.get('name')}: read-only root filesystem",
            f"{c.get('name')}: readOnlyRootFilesystem is {sec.get('readOnlyRootFilesystem')!r}: make it true",
        )
        problem = _image_problem(c.get("image"))
        r.expect(
            problem is None,
            f"{c.get('name')}: the immutable image {c.get('image')} (what `make cluster` built)",
            f"{c.get('name')}: {problem}",
        )
    if len(r.wrong) > ok_before:
        r.fail("fix the lines above first; then this check also runs checkov on the rendered chart")
    rep = k8s.scan({"rendered": m}, workdir() / "ex-scan", lesson="06", quiet=True)
    r.expect(
        rep["passed"] > 0 and not rep["failed"],
        f"checkov: {rep['passed']} passed, 0 failed ({len(rep['skipped'])} skipped)",
        f"checkov still fails {len(rep['failed'])}: " + ", ".join(sorted({f[0] for f in rep["failed"]})[:8]),
    )
    weak = sorted({s[0] for s in rep["skipped"] if len((s[2] or "").strip()) < 10})
    r.expect(not weak, "every skip names a reason", f"skips without a real reason: {', '.join(weak)}")
    silenced = sorted({s[0] for s in rep["skipped"] if s[0] not in SKIPPABLE})
    r.expect(
        not silenced,
        "skips only for what this lab cannot meet: " + (", ".join(sorted({s[0] for s in rep["skipped"]})) or "none"),
        "skipped although the chart can fix it: "
        + "; ".join(f"{cid} ({FIX_HINTS.get(cid, FIX_DEFAULT)})" for cid in silenced)
        + f". A skip is for what this lab cannot meet ({', '.join(SKIPPABLE)}), not for a one-line fix",
    )
    live(r, live_m, pin_image=False)
