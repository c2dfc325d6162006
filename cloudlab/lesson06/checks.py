"""Lesson 06's exercise checks 06.1-06.4 (06.5 and 06.6 are in ``policy``). Each renders YOUR chart twice with the
real helm (``chartcheck``: as the notebook does, and as a release and namespace it has never seen), validates it,
then tests what the objects mean. When the course's cluster answers, it also installs the chart there and reads the
live objects. The same checks, offline and live."""

from __future__ import annotations

import re
import secrets

from .. import aws, k8s
from ..checks import check
from . import EX_NAMESPACE, MEASURED_RSS_MIB, MEMORY_FLOOR_MIB, RELEASE, probe_paths
from .chartcheck import clashes, live, renders, twin

MEMORY_REQUEST_MAX_MIB = 256  # about 5x the measured need: more reserves memory the node then lacks for others
MEMORY_LIMIT_MAX_MIB = 512  # about 10x the measured need: above it one leaking pod takes what its neighbours need
READINESS_REACTION_MAX_S = 30  # a pod that cannot serve leaves the Service within this (period x threshold)
LIVENESS_REACTION_MAX_S = 300  # a stuck process is restarted within this


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
        "Memory is in bytes with binary suffixes: 96Mi, not 96m (m means thousandths) nor 96 (bytes). The limit "
        f"must be at least the request and leave headroom above the measured need; keep the request under "
        f"{MEMORY_REQUEST_MAX_MIB} MiB and the limit under {MEMORY_LIMIT_MAX_MIB} MiB.",
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
        mem_lim is not None
        and mem_req is not None
        and mem_lim >= mem_req
        and MEMORY_FLOOR_MIB <= mem_lim <= MEMORY_LIMIT_MAX_MIB,
        f"a memory limit of {lim.get('memory')}, not below the request (the kernel OOM-kills the container there)",
        f"the memory limit is {lim.get('memory')!r}: the kernel OOM-kills the container when it uses more, so set one "
        f"at or above the request and the measured {MEASURED_RSS_MIB} MiB plus headroom (and at most "
        f"{MEMORY_LIMIT_MAX_MIB}Mi, about ten times the need: a limit far above what it uses lets one leaking pod "
        "take the memory its neighbours were promised)",
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
def _acts_after(probe) -> float:
    """Seconds of failures before a probe acts: failureThreshold x the longer of periodSeconds and timeoutSeconds (the
    kubelet waits for a probe to time out before the next one), plus initialDelaySeconds."""
    if not isinstance(probe, dict):
        return 0.0
    try:
        every = max(float(probe.get("periodSeconds", 10)), float(probe.get("timeoutSeconds", 1)))
        return float(probe.get("failureThreshold", 3)) * every + float(probe.get("initialDelaySeconds", 0))
    except (TypeError, ValueError):
        return 0.0


@check(
    "06.2",
    "Startup, liveness and readiness probes on the service's real endpoints",
    hints=[
        "Set `probes` in values.yaml with three httpGet probes (startup, liveness, readiness) on the port named http.",
        "Liveness asks 'is the process stuck?' (/health, no dependencies; restart within 5 minutes); readiness asks "
        "'can it serve now?' (/ready, which checks the bucket) and must react within 30 s. Startup, like liveness, "
        "restarts the container when it fails: never restart a pod because a dependency is slow.",
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
            port == "http",
            f"the {kind_} probe's port is the container's port named http ({ports.get('http')})",
            f"the {kind_} probe's port is {port!r}, "
            + (
                "the container's port by its number: the task names the port http; by name, the probe follows the "
                "container if its port changes"
                if isinstance(port, int) and port == ports.get("http")
                else f"not a port of the container (it has {sorted(map(str, ports))}): use the named port http"
            ),
        )
        get = probe.get("httpGet") or {}
        r.expect(
            str(get.get("scheme", "HTTP")).upper() == "HTTP" and "host" not in get,
            f"the kubelet calls the pod itself over plain HTTP ({kind_})",
            f"the {kind_} probe "
            + (
                f"sets host {get.get('host')!r}: the kubelet then calls that address (its own node for 127.0.0.1), "
                "not the pod; leave host out"
                if "host" in get
                else f"uses scheme {get.get('scheme')!r}: the service speaks plain HTTP, so every probe would fail"
            ),
        )
    r.require(len(paths) == 3, "all three probes are there", "add the missing probes (see above)")
    live_fail = probes["liveness"].get("failureThreshold", 3) if isinstance(probes["liveness"], dict) else 0
    r.expect(
        isinstance(live_fail, int) and live_fail >= 2,
        f"liveness tolerates {live_fail} failures in a row (one slow moment does not restart the pod)",
        f"liveness failureThreshold is {live_fail!r}: one slow response would restart the pod (use 2 or more)",
    )
    stuck = _acts_after(probes["liveness"])
    r.expect(
        stuck <= LIVENESS_REACTION_MAX_S,
        f"a stuck process is restarted within {stuck:.0f} s",
        f"liveness restarts a stuck process only after {stuck:.0f} s of failures (failureThreshold x the longer of "
        f"periodSeconds and timeoutSeconds): all that time the pod holds its share of capacity and serves nothing. "
        f"Restart within {LIVENESS_REACTION_MAX_S} s",
    )
    budget = k8s.probe_budget(probes["startup"])
    r.expect(
        budget >= 20,
        f"the startup probe allows {budget:.0f} s to start (liveness waits until it passes)",
        f"the startup probe allows only {budget:.0f} s (failureThreshold x periodSeconds): a slow start on a busy "
        "node would be killed before it is up; allow 20 s or more",
    )
    reaction = _acts_after(probes["readiness"])
    r.expect(
        reaction <= READINESS_REACTION_MAX_S,
        f"readiness takes a pod out of traffic within {reaction:.0f} s of its bucket becoming unreachable",
        f"readiness needs {reaction:.0f} s of failures (failureThreshold x the longer of periodSeconds and "
        "timeoutSeconds: a probe that waits for a slow bucket delays the next one) before the pod leaves the "
        f"Service: for that long every request to it fails. React within {READINESS_REACTION_MAX_S} s",
    )
    if r.wrong:
        r.fail("fix the lines above first; then this check starts the service and calls your probe paths")
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
    said_down = {p: c or "nothing (no answer)" for p, c in down.items()}  # _status: 0 when nothing answered
    said_up = {p: c or "nothing (no answer)" for p, c in up.items()}
    lp, rp, sp = paths["liveness"], paths["readiness"], paths["startup"]
    r.expect(
        down.get(lp) == 200,
        f"liveness {lp} answers 200 even while the bucket is unreachable",
        f"liveness {lp} answers {said_down.get(lp)} while the bucket is unreachable: "
        + (
            "the service does not serve that path"
            if up.get(lp) == 404
            else "a slow or failing dependency would get every pod restarted"
        ),
    )
    r.expect(
        up.get(rp) == 200 and down.get(rp) == 503,
        f"readiness {rp} answers 200 with the bucket and 503 without (traffic stops, nothing restarts)",
        f"readiness {rp} answers {said_up.get(rp)} with the bucket and {said_down.get(rp)} without it: "
        "it must say 'not ready' while the service cannot serve orders (the service's /ready does)",
    )
    r.expect(
        up.get(sp) == 200 and down.get(sp) == 200,
        f"startup {sp} answers 200 once the process is up, with or without its bucket",
        f"startup {sp} answers {said_up.get(sp)}: the pod would never count as started"
        if up.get(sp) != 200
        else f"startup {sp} answers {said_down.get(sp)} while the bucket is unreachable: "
        "a failing startup probe restarts the container (like liveness), so a pod that starts while its bucket is "
        "slow is restarted again and again. "
        "Starting is about the process, not its dependencies",
    )
    cluster = live(r, live_m)
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
    other = twin(r, m)
    twin_pods = k8s.pod_labels(other.get("Deployment"))
    r.expect(
        not (isinstance(sel, dict) and sel and k8s.selector_matches(sel, twin_pods)),
        "it does not select the pods of another release of the chart in the same namespace",
        f"the selector {sel} also matches the pods of another release of this chart in the same namespace "
        f"({twin_pods}): half the requests would go to the other release. Select on the instance label too",
    )
    clash = clashes(other, m)
    r.expect(
        not clash,
        "two releases in one namespace get objects of their own names",
        f"two releases in one namespace would both create {', '.join(clash[:3])}: "
        "name objects from the release ({{ .Release.Name }})",
    )
    kind_ = spec.get("type", "ClusterIP")
    r.expect(
        kind_ == "ClusterIP" and not spec.get("externalIPs"),
        "a ClusterIP Service: it reaches the pods from inside the cluster only (outside traffic comes through the "
        "Ingress)",
        f"type {kind_}"
        + (f" with externalIPs {spec.get('externalIPs')}" if spec.get("externalIPs") else "")
        + ": "
        + {
            "LoadBalancer": "on a cloud this creates a load balancer with a public address (billed by the hour, open "
            "to the internet)",
            "NodePort": "this opens a port on every node of the cluster",
            "ExternalName": "this is a DNS alias to a name outside the cluster, not the pods",
        }.get(kind_, "it is reachable from outside the cluster")
        + ". The task asks only for a Service that reaches its pods: leave type out (ClusterIP); outside traffic "
        "comes through the Ingress",
    )
    r.expect(
        not spec.get("publishNotReadyAddresses"),
        "only ready pods get traffic",
        "publishNotReadyAddresses: true sends traffic to pods that are not ready, which is what readiness exists to "
        "stop (it is for a StatefulSet's peers finding each other): leave it out",
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
