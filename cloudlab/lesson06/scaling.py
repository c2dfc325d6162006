"""Check 06.4: the autoscaler in the exercise chart, and the scaling formula worked by hand."""

from __future__ import annotations

from .. import k8s
from ..checks import check
from . import EX_NAMESPACE, HPA_SCENARIO, RELEASE
from .chartcheck import clashes, live, renders, twin


# ------------------------------------------------------------------ 06.4
@check(
    "06.4",
    "An autoscaler that can scale, and its formula by hand",
    hints=[
        "Add templates/hpa.yaml (autoscaling/v2 HorizontalPodAutoscaler) aimed at the chart's Deployment, and turn "
        "autoscaling on in values.yaml. Utilization is a share of the CPU *request*.",
        "scaleTargetRef: apiVersion apps/v1, kind Deployment, name {{ .Release.Name }}; minReplicas 2 or more; a cpu "
        "Resource metric of type Utilization. desired = ceil(current x utilization / target), except that within "
        "a 10 % tolerance (0.9 <= utilization / target <= 1.1) the controller keeps the current count; and it never "
        "goes below minReplicas or above maxReplicas.",
        "ratio = 90 / <your averageUtilization>; "
        "desired_replicas = 4 if abs(ratio - 1) <= 0.1 else math.ceil(4 * ratio), then "
        "min(max(desired_replicas, minReplicas), maxReplicas)",
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
    behavior = spec.get("behavior") if isinstance(spec.get("behavior"), dict) else {}
    off = [d for d in ("scaleUp", "scaleDown") if (behavior.get(d) or {}).get("selectPolicy") == "Disabled"]
    r.expect(
        not off,
        "it may scale both ways",
        f"behavior.{off[0] if off else ''}.selectPolicy is Disabled: the autoscaler never scales "
        + ("in, so the pods it adds in a peak are paid for ever after" if "scaleDown" in off else "out")
        + ". To calm a flapping autoscaler, lengthen stabilizationWindowSeconds instead",
    )
    clash = clashes(twin(r, m), m, {"HorizontalPodAutoscaler"})
    r.expect(
        not clash,
        "a second release in the namespace would get an autoscaler of its own name",
        f"a second release in the same namespace would create {', '.join(clash)} again (helm refuses it): name it "
        "from the release ({{ .Release.Name }})",
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
        bounded = isinstance(lo, int) and isinstance(hi, int) and lo <= hi
        raw = k8s.hpa_desired(current, util, target)
        want = k8s.hpa_desired(current, util, target, min_replicas=lo, max_replicas=hi) if bounded else raw
        within = abs(util / target - 1) <= 0.1
        held = f", held within minReplicas..maxReplicas ({lo}..{hi})" if want != raw else ""
        r.expect(
            got == want,
            f"desired_replicas = {got}: "
            + (
                f"{util} / {target} is within the 10 % tolerance, so the controller keeps {current}"
                if within
                else f"ceil({current} x {util} / {target}) = {raw}"
            )
            + held,
            f"desired_replicas is {got}; with your target of {target} % the controller computes {want} "
            + (
                f"({util} / {target} = {util / target:.2f} is within the 10 % tolerance: it does nothing)"
                if within
                else f"(ceil({current} x {util} / {target}) = {raw}: round UP, never down{held})"
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
