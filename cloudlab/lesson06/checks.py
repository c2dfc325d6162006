"""Lesson 06's exercise checks 06.1-06.4 (06.5 and 06.6 are in ``policy``). Each renders YOUR chart twice with the
real helm (``chartcheck``: as the notebook does, and as a release and namespace it has never seen), validates it,
then tests what the objects mean. When the course's cluster answers, it also installs the chart there and reads the
live objects. The same checks, offline and live."""

from __future__ import annotations

import re
import secrets

from .. import aws, k8s
from ..checks import check
from . import EX_NAMESPACE, HPA_SCENARIO, MEASURED_RSS_MIB, MEMORY_FLOOR_MIB, RELEASE, probe_paths
from .chartcheck import live, render, renders

MEMORY_REQUEST_MAX_MIB = 256  # about 5x the measured need: more reserves memory the node then lacks for others
READINESS_REACTION_MAX_S = 30  # a pod that cannot serve leaves the Service within this (period x threshold)


# ------------------------------------------------------------------ 06.1
def _memory(r, what: str, value) -> float | None:
    """MiB of a memory quantity; a value in thousandths of a byte (``128m``) is a [missing] line of its own."""
    mib = k8s.mib(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9.]+m\s*", value):
        r.expect(
            False,
            "",
            f"the memory {what} is {value!r}: `m` means thousandths, so that is {k8s.quantity(value):g} bytes, not "
            f"megabytes. Write {value.strip()[:-1]}Mi (mebibytes)",
        )
        return None
    return mib


@check(
    "06.1",
    "Requests and limits, from the measured need",
    hints=[
        "Set `resources` in values.yaml: requests for cpu and memory, and a memory limit. The service "
        f"uses about {MEASURED_RSS_MIB} MiB.",
        "Memory is in bytes with binary suffixes: 96Mi, not 96m (m means thousandths). The limit must be "
        f"at least the request and leave headroom above the measured need; keep the request under "
        f"{MEMORY_REQUEST_MAX_MIB} MiB.",
        'ex.update_values({"resources": {"requests": {"cpu": "100m", "memory": "96Mi"}, '
        '"limits": {"cpu": "500m", "memory": "128Mi"}}})',
    ],
)
def check_resources(r, ns):
    _, m = renders(r)
    c = k8s.container(m.get("Deployment"), "orders") or k8s.container(m.get("Deployment"))
    res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    cpu_req, cpu_lim = k8s.quantity(req.get("cpu")), k8s.quantity(lim.get("cpu"))
    mem_req, mem_lim = _memory(r, "request", req.get("memory")), _memory(r, "limit", lim.get("memory"))
    r.expect(
        cpu_req is not None and 0.01 <= cpu_req <= 1,
        f"a CPU request of {req.get('cpu')} (the scheduler reserves it; the HPA measures against it)",
        f"the CPU request is {req.get('cpu')!r}: set one between 10m and 1 (core); more reserves CPU the service "
        "does not use",
    )
    r.expect(
        mem_req is not None and MEMORY_FLOOR_MIB <= mem_req <= MEMORY_REQUEST_MAX_MIB,
        f"a memory request of {req.get('memory')} covers the measured {MEASURED_RSS_MIB} MiB with headroom",
        f"the memory request is {req.get('memory')!r}"
        + (f" = {mem_req:.3g} MiB" if mem_req is not None else "")
        + (
            f": more than {MEMORY_REQUEST_MAX_MIB} MiB reserves memory the service never uses (the node cannot give "
            "it to anyone else)"
            if mem_req is not None and mem_req > MEMORY_REQUEST_MAX_MIB
            else f": below {MEMORY_FLOOR_MIB} MiB (the measured {MEASURED_RSS_MIB} MiB plus headroom) the scheduler "
            "packs the node as if the pod needed less than it uses, and under memory pressure the kubelet evicts "
            "pods that use more than their request first"
        ),
    )
    r.expect(
        mem_lim is not None and mem_req is not None and mem_lim >= mem_req and MEMORY_FLOOR_MIB <= mem_lim <= 1024,
        f"a memory limit of {lim.get('memory')}, not below the request (the kernel OOM-kills the container there)",
        f"the memory limit is {lim.get('memory')!r}: the kernel OOM-kills the container when it uses more, so set one "
        f"at or above the request and the measured {MEASURED_RSS_MIB} MiB plus headroom (and under 1Gi: a limit far "
        "above what it uses lets one leaking pod starve its neighbours)",
    )
    r.expect(
        cpu_lim is None or (cpu_req is not None and cpu_lim >= cpu_req),
        "no CPU limit (no throttling)"
        if cpu_lim is None
        else f"a CPU limit of {lim.get('cpu')}, not below the request (above it the container is throttled)",
        f"the CPU limit {lim.get('cpu')!r} is below the request {req.get('cpu')!r}: the API server refuses that",
    )
    cluster = live(r, m)
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
        "(/ready, which checks the bucket) and must react within 30 s. Never restart a pod because a dependency is "
        "slow.",
        'ex.update_values({"probes": {"startup": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 2, '
        '"failureThreshold": 30}, "liveness": {"httpGet": {"path": "/health", "port": "http"}, "failureThreshold": 3}, '
        '"readiness": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5, "failureThreshold": 2}}})',
    ],
)
def check_probes(r, ns):
    live_m, m = renders(r)
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
    reaction = k8s.probe_budget(probes["readiness"])
    r.expect(
        reaction <= READINESS_REACTION_MAX_S,
        f"readiness takes a pod out of traffic within {reaction:.0f} s of its bucket becoming unreachable",
        f"readiness needs {reaction:.0f} s of failures (failureThreshold x periodSeconds) before the pod leaves the "
        f"Service: for that long every request to it fails. React within {READINESS_REACTION_MAX_S} s",
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
    cluster = live(r, live_m)
    if cluster is not None:
        eps = cluster.ready_endpoints(RELEASE, EX_NAMESPACE)
        r.expect(eps, f"live: {len(eps)} ready pod(s) behind the Service", "live: no pod became ready")


# ------------------------------------------------------------------ 06.3
def _names(objs) -> set:
    return {(o.get("kind"), k8s.meta(o).get("name")) for o in objs}


@check(
    "06.3",
    "The Service reaches the pods",
    hints=[
        "Compare templates/service.yaml's selector with the labels of the pod template in templates/deployment.yaml "
        "(`ex.render()` shows both).",
        "Select on the pods' own labels for THIS release (the chart's `orders.selectorLabels` helper: name and "
        "instance), and point targetPort at the container port by its name. Nothing may name today's release.",
        'In templates/service.yaml: `selector:` then `{{- include "orders.selectorLabels" . | nindent 4 }}`, and '
        "`targetPort: http`.",
    ],
)
def check_service(r, ns):
    live_m, m = renders(r)
    dep = m.get("Deployment")
    svc = m.get("Service")
    r.require(svc is not None, "a Service is rendered", "no Service in the chart's output")
    spec = svc.get("spec") if isinstance(svc.get("spec"), dict) else {}
    sel = spec.get("selector")
    pod_labels = k8s.pod_labels(dep)
    dep_labels = k8s.meta(dep).get("labels") or {}
    today = isinstance(sel, dict) and RELEASE in {str(v) for v in sel.values()}
    r.expect(
        isinstance(sel, dict) and sel and k8s.selector_matches(sel, pod_labels),
        f"the Service's selector {sel} matches the pods' labels (rendered as another release too)",
        f"the Service selects {sel}, but the pods carry {pod_labels}"
        + (
            f": the selector names the release {RELEASE!r}, so installed as any other release it reaches nothing "
            "(use the release's own labels)"
            if today
            else ": that label is on the Deployment object, not on its pods"
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
    # A second release of the same chart in the same namespace (a canary, a second tenant): its pods are not ours.
    namespace = k8s.meta(svc).get("namespace")
    twin = render(r, f"twin-{secrets.token_hex(3)}", namespace)
    twin_pods = k8s.pod_labels(twin.get("Deployment"))
    r.expect(
        not (isinstance(sel, dict) and sel and k8s.selector_matches(sel, twin_pods)),
        "it does not select the pods of another release of the chart in the same namespace",
        f"the selector {sel} also matches the pods of another release of this chart in the same namespace "
        f"({twin_pods}): half the requests would go to the other release. Select on the instance label too",
    )
    clash = _names(twin) & _names(m)
    r.expect(
        not clash,
        "two releases in one namespace get objects of their own names",
        f"two releases in one namespace would both create {', '.join(f'{k}/{n}' for k, n in sorted(clash)[:3])}: "
        "name objects from the release ({{ .Release.Name }})",
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
    cluster = live(r, live_m)
    if cluster is not None:
        name = k8s.meta(live_m.get("Service") or {}).get("name")
        eps = cluster.ready_endpoints(name, EX_NAMESPACE)
        r.expect(eps, f"live: the Service has {len(eps)} ready endpoint(s)", "live: the Service has no ready endpoints")


# ------------------------------------------------------------------ 06.4
@check(
    "06.4",
    "An autoscaler that can scale, and its formula by hand",
    hints=[
        "Add templates/hpa.yaml (autoscaling/v2 HorizontalPodAutoscaler) aimed at the chart's Deployment, and turn "
        "autoscaling on in values.yaml. Utilization is a share of the CPU *request*.",
        "scaleTargetRef: apiVersion apps/v1, kind Deployment, name {{ .Release.Name }}; minReplicas 2 or more; a cpu "
        "Resource metric of type Utilization. desired = ceil(current x utilization / target), except that within "
        "a 10 % tolerance (0.9 <= utilization / target <= 1.1) the controller keeps the current count.",
        "ratio = 90 / <your averageUtilization>; "
        "desired_replicas = 4 if abs(ratio - 1) <= 0.1 else math.ceil(4 * ratio)",
    ],
)
def check_hpa(r, ns):
    live_m, m = renders(r)
    dep = m.get("Deployment")
    hpas = m.all("HorizontalPodAutoscaler")
    r.require(hpas, "a HorizontalPodAutoscaler is rendered", "no HorizontalPodAutoscaler in the chart's output")
    hpa = hpas[0]
    spec = hpa.get("spec") if isinstance(hpa.get("spec"), dict) else {}
    ref = spec.get("scaleTargetRef") or {}
    name = k8s.meta(dep).get("name")
    r.expect(
        ref.get("kind") == "Deployment" and ref.get("name") == name and ref.get("apiVersion") == "apps/v1",
        f"it scales Deployment/{name} (apps/v1), whatever the release is called",
        f"scaleTargetRef is {ref}: the rendered Deployment is apps/v1 Deployment/{name}"
        + (
            f" (rendered as release {name}: name the target from the release, not {RELEASE!r})"
            if ref.get("name") == RELEASE
            else ""
        ),
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
        current, util = HPA_SCENARIO["replicas"], HPA_SCENARIO["cpu_utilization"]
        want = k8s.hpa_desired(current, util, target)
        within = abs(util / target - 1) <= 0.1
        r.expect(
            got == want,
            f"desired_replicas = {got}: "
            + (
                f"{util} / {target} is within the 10 % tolerance, so the controller keeps {current}"
                if within
                else f"ceil({current} x {util} / {target})"
            ),
            f"desired_replicas is {got}; with your target of {target} % the controller computes {want} "
            + (
                f"({util} / {target} = {util / target:.2f} is within the 10 % tolerance: it does nothing)"
                if within
                else "(round UP: ceil, never down)"
            ),
        )
    cluster = live(r, live_m)
    if cluster is not None:
        live_hpa = cluster.get("hpa", k8s.meta(live_m.get("HorizontalPodAutoscaler") or {}).get("name"), EX_NAMESPACE)
        conds = {c.get("type"): c.get("status") for c in ((live_hpa or {}).get("status") or {}).get("conditions") or []}
        r.expect(
            conds.get("AbleToScale") == "True",
            "live: the controller found its target (AbleToScale)",
            f"live: conditions {conds}",
        )
