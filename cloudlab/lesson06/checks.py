"""Lesson 06's exercise checks. Each renders YOUR chart with the real helm, validates it with
kubernetes-validate (strict, Kubernetes 1.32, removed APIs fail), then tests what the objects mean.
When the course's cluster answers, it also installs the chart there and reads the live objects.
The same checks, offline and live."""

from __future__ import annotations

import secrets

from .. import aws, k8s
from ..checks import check
from . import (
    EX_NAMESPACE,
    HPA_SCENARIO,
    MEASURED_RSS_MIB,
    MEMORY_FLOOR_MIB,
    RELEASE,
    exercise_chart,
    live_backing,
    probe_paths,
    workdir,
)

_LIVE_DONE: dict[str, bool] = {}


def _render(r) -> k8s.Manifest:
    """Your chart's objects, valid, with one Deployment; else a [missing] line and stop."""
    chart = exercise_chart()
    try:
        m = k8s.helm_template(chart.path, RELEASE, EX_NAMESPACE, quiet=True)
    except k8s.RenderError as e:
        r.fail(f"helm could not render your chart ({chart.path}): {str(e).splitlines()[-1][:300]}")
    problems = k8s.validate(m)
    r.require(
        not problems,
        f"`helm template` renders {len(m)} objects, all valid for Kubernetes {k8s.K8S_VERSION} (strict)",
        "the rendered objects do not validate: "
        + "; ".join(f"{w}: {msg[:140]}" for w, msg in problems[:4])
        + (" ..." if len(problems) > 4 else ""),
    )
    deployments = m.all("Deployment")
    r.require(len(deployments) == 1, "one Deployment", f"{len(deployments)} Deployments rendered, expected exactly 1")
    return m


def _live(r, m) -> k8s.Cluster | None:
    """Live mode: install the chart (helm upgrade --install --wait) and expect it to roll out."""
    cluster = k8s.live()
    if cluster is None:
        return None
    if not _LIVE_DONE.get("backing"):
        live_backing(cluster)
        _LIVE_DONE["backing"] = True
    ok, out = cluster.helm_upgrade(RELEASE, exercise_chart().path, EX_NAMESPACE, quiet=True)
    r.expect(
        ok,
        "live: helm upgrade --install rolled out (every pod ready)",
        f"live: the release did not roll out: {out[-300:]}",
    )
    return cluster


# ------------------------------------------------------------------ 06.1
@check(
    "06.1",
    "Requests and limits, from the measured need",
    hints=[
        "Set `resources` in values.yaml: requests for cpu and memory, and a memory limit. The service "
        f"uses about {MEASURED_RSS_MIB} MiB.",
        "Memory is in bytes with binary suffixes: 96Mi, not 96m (m means thousandths). The limit must be "
        "at least the request.",
        'ex.update_values({"resources": {"requests": {"cpu": "100m", "memory": "96Mi"}, '
        '"limits": {"cpu": "500m", "memory": "128Mi"}}})',
    ],
)
def check_resources(r, ns):
    m = _render(r)
    c = k8s.container(m.get("Deployment"), "orders") or k8s.container(m.get("Deployment"))
    res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    cpu_req, mem_req = k8s.quantity(req.get("cpu")), k8s.mib(req.get("memory"))
    mem_lim, cpu_lim = k8s.mib(lim.get("memory")), k8s.quantity(lim.get("cpu"))
    r.expect(
        cpu_req is not None and 0.01 <= cpu_req <= 2,
        f"a CPU request of {req.get('cpu')} (the scheduler reserves it; the HPA measures against it)",
        f"the CPU request is {req.get('cpu')!r}: set one between 10m and 2 (cores)",
    )
    r.expect(
        mem_req is not None and mem_req >= MEMORY_FLOOR_MIB,
        f"a memory request of {req.get('memory')} covers the measured {MEASURED_RSS_MIB} MiB with headroom",
        f"the memory request is {req.get('memory')!r}"
        + (f" = {mem_req:.3g} MiB" if mem_req is not None else "")
        + f": below {MEMORY_FLOOR_MIB} MiB the node is overcommitted and the pod gets OOM-killed",
    )
    r.expect(
        mem_lim is not None and mem_req is not None and mem_lim >= mem_req and mem_lim <= 1024,
        f"a memory limit of {lim.get('memory')}, not below the request",
        f"the memory limit is {lim.get('memory')!r}: set one at or above the request (and under 1Gi: a limit far "
        "above what it uses lets one leaking pod starve its neighbours)",
    )
    r.expect(
        cpu_lim is None or (cpu_req is not None and cpu_lim >= cpu_req),
        "the CPU limit (if any) is not below the CPU request",
        f"the CPU limit {lim.get('cpu')!r} is below the request {req.get('cpu')!r}: the API server refuses that",
    )
    cluster = _live(r, m)
    if cluster is not None:
        pods = cluster.get("pods", namespace=EX_NAMESPACE)
        qos = {p.get("status", {}).get("qosClass") for p in pods}
        r.expect(qos and "BestEffort" not in qos, f"live: the pods' QoS is {qos}", f"live: QoS classes {qos}")


# ------------------------------------------------------------------ 06.2
@check(
    "06.2",
    "Startup, liveness and readiness probes on the service's real endpoints",
    hints=[
        "Set `probes` in values.yaml with three httpGet probes (startup, liveness, readiness) on the port named http.",
        "Liveness asks 'is the process stuck?' (/health, no dependencies); readiness asks 'can it serve now?' "
        "(/ready, which checks the bucket). Never restart a pod because a dependency is slow.",
        'ex.update_values({"probes": {"startup": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 2, '
        '"failureThreshold": 30}, "liveness": {"httpGet": {"path": "/health", "port": "http"}, "failureThreshold": 3}, '
        '"readiness": {"httpGet": {"path": "/ready", "port": "http"}}}})',
    ],
)
def check_probes(r, ns):
    m = _render(r)
    c = k8s.container(m.get("Deployment"), "orders") or k8s.container(m.get("Deployment"))
    ports = k8s.container_ports(c)
    probes = {k: c.get(f"{k}Probe") for k in ("startup", "liveness", "readiness")}
    paths = {}
    for kind_, probe in probes.items():
        path, port = k8s.probe_target(probe)
        if not r.expect(
            path is not None,
            f"a {kind_} probe: GET {path} on port {port!r}",
            f"no httpGet {kind_} probe" if probe is None or path is None else "",
        ):
            continue
        paths[kind_] = path
        r.expect(
            port in ports and (not isinstance(port, int) or port == ports.get("http")),
            f"the {kind_} probe's port {port!r} is the container's port {ports.get(port)}",
            f"the {kind_} probe's port {port!r} is not a port of the container (it has {sorted(map(str, ports))}): "
            "use the named port http",
        )
    r.require(len(paths) == 3, "all three probes are there", "add the missing probes (see above)")
    live_fail = probes["liveness"].get("failureThreshold", 3) if isinstance(probes["liveness"], dict) else 0
    r.expect(
        isinstance(live_fail, int) and live_fail >= 2,
        f"liveness tolerates {live_fail} failures in a row (one slow moment does not restart the pod)",
        f"liveness failureThreshold is {live_fail!r}: one slow response would restart the pod (use 2 or more)",
    )
    budget = k8s.probe_budget(probes["startup"])
    r.expect(
        budget >= 20,
        f"the startup probe allows {budget:.0f} s to start (liveness waits until it passes)",
        f"the startup probe allows only {budget:.0f} s (failureThreshold x periodSeconds): a slow start on a busy "
        "node would be killed before it is up; allow 20 s or more",
    )
    bucket = f"l06-probe-{secrets.token_hex(4)}"
    s3 = aws.client("s3")
    seen = probe_paths(
        bucket, "http://127.0.0.1:1/none", sorted(set(paths.values())), lambda: s3.create_bucket(Bucket=bucket)
    )
    try:
        s3.delete_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - the bucket may not exist if the service never started
        pass
    down, up = seen["dependency down"], seen["dependency up"]
    lp, rp, sp = paths["liveness"], paths["readiness"], paths["startup"]
    r.expect(
        down.get(lp) == 200,
        f"liveness {lp} answers 200 even while the bucket is unreachable",
        f"liveness {lp} answers {down.get(lp)} while the bucket is unreachable: "
        + (
            "the service does not serve that path"
            if up.get(lp) == 404
            else "a slow or failing dependency would get every pod restarted"
        ),
    )
    r.expect(
        up.get(rp) == 200 and down.get(rp) == 503,
        f"readiness {rp} answers 200 with the bucket and 503 without (traffic stops, nothing restarts)",
        f"readiness {rp} answers {up.get(rp)} with the bucket and {down.get(rp)} without it: it must say 'not ready' "
        "while the service cannot serve orders (the service's /ready does)",
    )
    r.expect(
        up.get(sp) == 200,
        f"startup {sp} answers 200 once the process is up",
        f"startup {sp} answers {up.get(sp)}: the pod would never count as started",
    )
    cluster = _live(r, m)
    if cluster is not None:
        eps = cluster.ready_endpoints(RELEASE, EX_NAMESPACE)
        r.expect(eps, f"live: {len(eps)} ready pod(s) behind the Service", "live: no pod became ready")


# ------------------------------------------------------------------ 06.3
@check(
    "06.3",
    "The Service reaches the pods",
    hints=[
        "Compare templates/service.yaml's selector with the labels of the pod template in templates/deployment.yaml "
        "(`ex.render()` shows both).",
        "Select on the pods' own labels (the chart's `orders.selectorLabels` helper), and point targetPort at the "
        "container port by its name.",
        'In templates/service.yaml: `selector:` then `{{- include "orders.selectorLabels" . | nindent 4 }}`, and '
        "`targetPort: http`.",
    ],
)
def check_service(r, ns):
    m = _render(r)
    dep = m.get("Deployment")
    svc = m.get("Service")
    r.require(svc is not None, "a Service is rendered", "no Service in the chart's output")
    spec = svc.get("spec") if isinstance(svc.get("spec"), dict) else {}
    sel = spec.get("selector")
    pod_labels = k8s.pod_labels(dep)
    dep_labels = k8s.meta(dep).get("labels") or {}
    r.expect(
        isinstance(sel, dict) and sel and k8s.selector_matches(sel, pod_labels),
        f"the Service's selector {sel} matches the pods' labels",
        f"the Service selects {sel}, but the pods carry {pod_labels}"
        + (
            ": that label is on the Deployment object, not on its pods"
            if isinstance(sel, dict) and sel and k8s.selector_matches(sel, {**dep_labels, **pod_labels})
            else ""
        ),
    )
    others = [o for o in m.all("Deployment") + m.all("StatefulSet") if o is not dep]
    r.expect(
        not any(k8s.selector_matches(sel, k8s.pod_labels(o)) for o in others),
        "it selects no other workload's pods",
        "the selector also matches another workload's pods",
    )
    c = k8s.container(dep, "orders") or k8s.container(dep)
    named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or [] if isinstance(p, dict)}
    svc_ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    r.require(svc_ports, "the Service has a port", "the Service has no ports")
    for p in svc_ports:
        tp = p.get("targetPort", p.get("port"))
        r.expect(
            isinstance(tp, str) and tp in named,
            f"port {p.get('port')} -> targetPort {tp!r}, the container's named port ({named.get(tp)})",
            f"targetPort is {tp!r}: "
            + (
                f"the container listens on {sorted(v for v in named.values() if v)}; "
                if isinstance(tp, int) and tp not in named.values()
                else ""
            )
            + f"use the container port's name ({', '.join(map(str, named)) or 'name it'}), so it follows the container",
        )
    cluster = _live(r, m)
    if cluster is not None:
        eps = cluster.ready_endpoints(k8s.meta(svc).get("name"), EX_NAMESPACE)
        r.expect(eps, f"live: the Service has {len(eps)} ready endpoint(s)", "live: the Service has no ready endpoints")


# ------------------------------------------------------------------ 06.4
@check(
    "06.4",
    "An autoscaler that can scale, and its formula by hand",
    hints=[
        "Add templates/hpa.yaml (autoscaling/v2 HorizontalPodAutoscaler) aimed at the chart's Deployment, and turn "
        "autoscaling on in values.yaml. Utilization is a share of the CPU *request*.",
        "scaleTargetRef: apiVersion apps/v1, kind Deployment, name {{ .Release.Name }}; minReplicas 2 or more; a cpu "
        "Resource metric of type Utilization. desired = ceil(current x utilization / target).",
        "desired_replicas = math.ceil(4 * 90 / <your averageUtilization>)",
    ],
)
def check_hpa(r, ns):
    m = _render(r)
    dep = m.get("Deployment")
    hpas = m.all("HorizontalPodAutoscaler")
    r.require(hpas, "a HorizontalPodAutoscaler is rendered", "no HorizontalPodAutoscaler in the chart's output")
    hpa = hpas[0]
    spec = hpa.get("spec") if isinstance(hpa.get("spec"), dict) else {}
    ref = spec.get("scaleTargetRef") or {}
    name = k8s.meta(dep).get("name")
    r.expect(
        ref.get("kind") == "Deployment" and ref.get("name") == name and ref.get("apiVersion") == "apps/v1",
        f"it scales Deployment/{name} (apps/v1)",
        f"scaleTargetRef is {ref}: the rendered Deployment is apps/v1 Deployment/{name}",
    )
    lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas")
    r.expect(
        isinstance(lo, int) and isinstance(hi, int) and 2 <= lo < hi,
        f"{lo} to {hi} replicas (never a single pod)",
        f"minReplicas={lo!r} maxReplicas={hi!r}: keep at least 2 and leave room to grow",
    )
    target = None
    for metric in spec.get("metrics") or []:
        res = metric.get("resource") if isinstance(metric, dict) else None
        if (
            isinstance(res, dict)
            and res.get("name") == "cpu"
            and (res.get("target") or {}).get("type") == "Utilization"
        ):
            target = (res.get("target") or {}).get("averageUtilization")
    r.expect(
        isinstance(target, int) and 30 <= target <= 90,
        f"it targets {target} % of the CPU request",
        f"no cpu Utilization target between 30 and 90 % (found {target!r})",
    )
    missing = [
        c.get("name")
        for c in k8s.containers(dep)
        if k8s.quantity(((c.get("resources") or {}).get("requests") or {}).get("cpu")) is None
    ]
    r.expect(
        not missing,
        "every container has a CPU request (utilization is measured against it)",
        f"container(s) {missing} have no CPU request: the HPA cannot compute a utilization and never scales",
    )
    r.expect(
        "replicas" not in (dep.get("spec") or {}),
        "the Deployment leaves replicas to the autoscaler",
        "the Deployment still sets replicas: every helm upgrade would reset the autoscaler's choice",
    )
    got = r.need(ns, "desired_replicas", int)
    if isinstance(target, int) and target > 0:
        want = k8s.hpa_desired(HPA_SCENARIO["replicas"], HPA_SCENARIO["cpu_utilization"], target)
        r.expect(
            got == want,
            f"desired_replicas = {got}: ceil({HPA_SCENARIO['replicas']} x {HPA_SCENARIO['cpu_utilization']} "
            f"/ {target})",
            f"desired_replicas is {got}; with your target of {target} % the controller computes {want} "
            "(round UP: ceil, never down)",
        )
    cluster = _live(r, m)
    if cluster is not None:
        live_hpa = cluster.get("hpa", k8s.meta(hpa).get("name"), EX_NAMESPACE) or {}
        conds = {c.get("type"): c.get("status") for c in (live_hpa.get("status") or {}).get("conditions") or []}
        r.expect(
            conds.get("AbleToScale") == "True",
            "live: the controller found its target (AbleToScale)",
            f"live: conditions {conds}",
        )


# ------------------------------------------------------------------ 06.5
def _flows(dep, svc_port_name_map):
    pod = k8s.Endpoint(EX_NAMESPACE, k8s.pod_labels(dep), svc_port_name_map)
    other = k8s.Endpoint(EX_NAMESPACE, {"app": "debug"}, {})
    ingress_ctl = k8s.Endpoint("ingress", {"app": "ingress-controller"}, {})
    dns = k8s.Endpoint("kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
    backing = k8s.Endpoint("l06-backing", {"app.kubernetes.io/name": "backing"}, {"http": 5000})
    outside = k8s.Endpoint(ip="203.0.113.10")
    must = [
        ("traffic from another namespace (the ingress controller) to the http port", ingress_ctl, pod, "http", "TCP"),
        ("DNS lookups (kube-dns, 53/UDP)", pod, dns, 53, "UDP"),
        ("the backing services (S3/SQS stand-in, 5000/TCP)", pod, backing, 5000, "TCP"),
    ]
    must_not = [
        ("the service calling an address on the internet (203.0.113.10:443)", pod, outside, 443, "TCP"),
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
        "egress to kube-dns on 53 (UDP and TCP) and egress on port 5000 (aws.backingPort) to the backing services.",
        "Compare with the lesson's chart: lessons/06_kubernetes/chart/orders/templates/networkpolicy.yaml.",
    ],
)
def check_netpol(r, ns):
    m = _render(r)
    dep = m.get("Deployment")
    policies = m.all("NetworkPolicy")
    r.require(policies, f"{len(policies)} NetworkPolicies rendered", "no NetworkPolicy in the chart's output")
    pod_labels = k8s.pod_labels(dep)
    pod = k8s.Endpoint(EX_NAMESPACE, pod_labels)
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
    must, must_not = _flows(dep, {k: v for k, v in ports.items() if isinstance(k, str)})
    for what, src, dst, port, proto in must:
        r.expect(
            k8s.allowed(policies, src, dst, port, proto),
            f"allowed: {what}",
            f"blocked, but the service needs it: {what}",
        )
    for what, src, dst, port, proto in must_not:
        r.expect(not k8s.allowed(policies, src, dst, port, proto), f"blocked: {what}", f"still allowed: {what}")
    cluster = _live(r, m)
    if cluster is not None:
        labels = {k: v for k, v in pod_labels.items()}
        out = cluster.can_connect(EX_NAMESPACE, "https://kubernetes.default.svc:443/", labels, timeout=4)
        r.expect(not out, "live: a pod with the service's labels cannot reach the API server", "live: it still can")


# ------------------------------------------------------------------ 06.6
@check(
    "06.6",
    "Hardened, immutable, and the policy scan agrees",
    hints=[
        "Set podSecurityContext and securityContext in values.yaml, and an immutable image tag "
        "(lesson06.IMAGE_TAG). Then scan: scanners.checkov(<folder with the rendered chart>, framework='kubernetes').",
        "runAsNonRoot needs a numeric runAsUser the kubelet can check (not 0); drop ALL capabilities, no privilege "
        "escalation, a read-only root filesystem (the chart mounts /tmp). A check that cannot be met here gets a "
        "skip with a reason in `annotations`.",
        'ex.update_values({"image": {"tag": lesson06.IMAGE_TAG}, "podSecurityContext": {"runAsNonRoot": True, '
        '"runAsUser": 10001, "runAsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}, "securityContext": '
        '{"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}, '
        '"annotations": {"checkov.io/skip1": "CKV_K8S_15=<why>", "checkov.io/skip2": "CKV_K8S_43=<why>"}})',
    ],
)
def check_hardening(r, ns):
    m = _render(r)
    dep = m.get("Deployment")
    ok_before = len(r.wrong)
    for c in k8s.containers(dep):
        sec = k8s.security(dep, c)
        user = sec.get("runAsUser")
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
        caps = (sec.get("capabilities") or {}).get("drop") or []
        r.expect(
            sec.get("allowPrivilegeEscalation") is False and "ALL" in caps and sec.get("privileged") is not True,
            f"{c.get('name')}: no privilege escalation, every capability dropped",
            f"{c.get('name')}: allowPrivilegeEscalation={sec.get('allowPrivilegeEscalation')!r}, drop={caps}: "
            "set allowPrivilegeEscalation: false and drop [ALL]",
        )
        r.expect(
            sec.get("readOnlyRootFilesystem") is True,
            f"{c.get('name')}: read-only root filesystem",
            f"{c.get('name')}: readOnlyRootFilesystem is {sec.get('readOnlyRootFilesystem')!r}: make it true",
        )
        problem = k8s.image_problem(c.get("image"))
        r.expect(problem is None, f"{c.get('name')}: immutable image {c.get('image')}", f"{c.get('name')}: {problem}")
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
    _live(r, m)
