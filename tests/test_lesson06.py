"""Lesson 06: the k8s toolkit, the lesson's chart and overlays, and every check against its wrong answers.

Fast tests need helm (the lab installs it from its pinned wheel), kubectl and kubernetes-validate;
06.2 starts the real order service against the lab's S3 (``lab``); 06.6 runs checkov.
Every wrong answer is one a learner would plausibly write; each must be rejected WITH a hint.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from checktest import rejected

from cloudlab import k8s, lesson06
from cloudlab.checks import REGISTRY
from cloudlab.lab import cluster as kind

# ------------------------------------------------------------------ the worked answers (as in the solution)
RESOURCES = {"resources": {"requests": {"cpu": "100m", "memory": "96Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}}
PROBES = {
    "probes": {
        "startup": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 2, "failureThreshold": 30},
        "liveness": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
        "readiness": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5, "failureThreshold": 2},
    }
}
SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "orders.labels" . | nindent 4 }}
spec:
  selector:
    {{- include "orders.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
"""
HPA = """
{{- if .Values.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .Release.Name }}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.target }}
{{- end }}
"""
HPA_VALUES = {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6, "target": 60}}
NETPOL = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .Release.Name }}-default-deny
  namespace: {{ .Release.Namespace }}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  podSelector:
    matchLabels:
      {{- include "orders.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    - ports:
        - {port: http, protocol: TCP}
  egress:
    - to:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: kube-system}
          podSelector:
            matchLabels: {k8s-app: kube-dns}
      ports:
        - {port: 53, protocol: UDP}
        - {port: 53, protocol: TCP}
    - to:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: l06-backing}
          podSelector:
            matchLabels: {app.kubernetes.io/name: backing}
      ports:
        - {port: {{ .Values.aws.backingPort }}, protocol: TCP}
"""
HARDENING = {
    "image": {"tag": lesson06.IMAGE_TAG},
    "podSecurityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
    "annotations": {
        "checkov.io/skip1": "CKV_K8S_15=IfNotPresent on purpose: the tag is immutable and kind has no registry",
        "checkov.io/skip2": "CKV_K8S_43=the tag is a content hash; kind-loaded images have no registry digest",
    },
}


@pytest.fixture
def ex(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path / "state"))
    return lesson06.exercise_chart(fresh=True)


def solve(ex, upto: int = 6):
    """Apply the worked answers of tasks 1..upto to the exercise chart."""
    steps = [
        lambda: ex.update_values(RESOURCES),
        lambda: ex.update_values(PROBES),
        lambda: ex.write("templates/service.yaml", SERVICE),
        lambda: (ex.write("templates/hpa.yaml", HPA), ex.update_values(HPA_VALUES)),
        lambda: ex.write("templates/networkpolicy.yaml", NETPOL),
        lambda: ex.update_values(HARDENING),
    ]
    for step in steps[:upto]:
        step()
    return ex


# ------------------------------------------------------------------ toolkit
def test_quantities():
    assert k8s.quantity("128Mi") == 128 * 2**20
    assert k8s.quantity("500m") == 0.5
    assert k8s.quantity("1.5") == 1.5 and k8s.quantity(2) == 2.0
    assert k8s.quantity("1e3") == 1000
    assert k8s.quantity("12 parsecs") is None and k8s.quantity(None) is None and k8s.quantity(True) is None
    assert k8s.mib("96m") < 1e-6  # the classic: 96 thousandths of a byte


def test_selectors():
    assert k8s.selector_matches({"app": "x"}, {"app": "x", "b": "1"})
    assert not k8s.selector_matches({"app": "y"}, {"app": "x"})
    assert k8s.selector_matches({}, {"app": "x"})  # empty matches everything
    assert not k8s.selector_matches(None, {"app": "x"})
    expr = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}
    assert k8s.selector_matches(expr, {"tier": "web"}) and not k8s.selector_matches(expr, {"tier": "db"})
    assert k8s.selector_matches({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, {})


def test_hpa_formula_and_rollout_bounds():
    assert k8s.hpa_desired(4, 90, 60) == 6
    assert k8s.hpa_desired(4, 65, 60) == 4  # within the 10 % tolerance
    assert k8s.hpa_desired(3, 20, 60) == 1
    assert k8s.hpa_desired(6, 20, 70) == 2 and k8s.hpa_desired(6, 20, 70, min_replicas=3, max_replicas=10) == 3
    assert k8s.hpa_desired(8, 95, 70, min_replicas=3, max_replicas=10) == 10
    assert k8s.rollout_bounds(3, 1, 0) == (4, 3)
    assert k8s.rollout_bounds(10, "25%", "25%") == (13, 8)


@pytest.mark.parametrize(
    "image,ok",
    [
        ("cloudlab/orders:sha-0a6c7d1e2f30", True),
        ("cloudlab/orders@sha256:" + "a" * 64, True),
        ("registry.local:5000/orders:1.2.3", True),
        ("cloudlab/orders:latest", False),
        ("cloudlab/orders", False),
        ("registry.local:5000/orders", False),
        ("cloudlab/orders:main", False),
        ("cloudlab/orders@sha256:abc", False),
    ],
)
def test_image_immutability(image, ok):
    assert (k8s.image_problem(image) is None) is ok


def test_qos_classes():
    def dep(res):
        return {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a", "resources": res}]}}}}

    assert k8s.qos_class(dep({})) == "BestEffort"
    assert k8s.qos_class(dep({"requests": {"cpu": "1"}})) == "Burstable"
    assert k8s.qos_class(dep({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Guaranteed"


def test_validate_fails_removed_apis_and_unknown_fields():
    removed = k8s.validate(k8s.load(lesson06.REMOVED_API))
    assert removed and "removed in Kubernetes 1.25" in removed[0][1] and "policy/v1" in removed[0][1]
    hpa = {"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"}}
    assert "1.26" in k8s.validate([hpa])[0][1]
    typo = copy.deepcopy(k8s.load(lesson06.MESSY).get("Deployment"))
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert "livenesProbe" in k8s.validate([typo])[0][1]
    with pytest.raises(k8s.InvalidManifest, match="removed"):
        k8s.check_valid(k8s.load(lesson06.REMOVED_API), quiet=True)


def test_template_error_is_a_clear_render_error():
    with pytest.raises(k8s.RenderError, match="nil pointer"):
        k8s.helm_template(lesson06.BROKEN_CHART, quiet=True)


def test_netpol_semantics():
    deny = {"kind": "NetworkPolicy", "metadata": {"namespace": "a"}, "spec": {"podSelector": {}}}
    web = k8s.Endpoint("a", {"app": "web"}, {"http": 8080})
    other = k8s.Endpoint("b", {"app": "x"})
    assert k8s.allowed([], other, web, 8080)
    assert not k8s.allowed([deny], other, web, 8080)  # ingress isolated
    assert k8s.allowed([deny], web, other, 8080)  # egress not isolated (policyTypes defaults to Ingress)
    allow = {
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "a"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": "http"}]}]},
    }
    assert k8s.allowed([deny, allow], other, web, 8080) and k8s.allowed([deny, allow], other, web, "http")
    assert not k8s.allowed([deny, allow], other, web, 9090)
    only_same_ns = copy.deepcopy(allow)
    only_same_ns["spec"]["ingress"][0]["from"] = [{"podSelector": {}}]
    assert not k8s.allowed([deny, only_same_ns], other, web, 8080)
    assert k8s.allowed([deny, only_same_ns], k8s.Endpoint("a", {"app": "y"}), web, 8080)
    egress = {
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "a"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
        },
    }
    assert k8s.allowed([egress], web, k8s.Endpoint(ip="10.1.2.3"), 443)
    assert not k8s.allowed([egress], web, k8s.Endpoint(ip="203.0.113.1"), 443)


def test_lesson_chart_lints_renders_and_validates_in_every_env():
    ok, out = k8s.helm_lint(lesson06.CHART, quiet=True)
    assert ok, out
    for env in lesson06.ENVS:
        m = lesson06.render_env(env, quiet=True)
        assert k8s.validate(m) == [], env
        dep = m.get("Deployment")
        assert k8s.image_problem(k8s.container(dep)["image"]) is None
        assert k8s.selector_matches(m.get("Service")["spec"]["selector"], k8s.pod_labels(dep))
    prod, dev = lesson06.render_env("prod", quiet=True), lesson06.render_env("dev", quiet=True)
    assert prod.get("HorizontalPodAutoscaler") and prod.get("PodDisruptionBudget")
    assert dev.get("HorizontalPodAutoscaler") is None and dev.get("Deployment")["spec"]["replicas"] == 1
    assert any("minReplicas" in line for line in lesson06.diff_envs(lesson06.render_env("staging", quiet=True), prod))


def test_overlays_and_statefulset_validate():
    for env in lesson06.ENVS:
        assert k8s.validate(k8s.kustomize(lesson06.OVERLAYS / env, quiet=True)) == [], env
    assert k8s.validate(k8s.load(lesson06.STATEFULSET)) == []
    assert k8s.validate(k8s.load(lesson06.MESSY)) == []  # schema-valid, and still a mess: that is the point


def test_kind_config_pins_the_node_image_by_digest():
    """One Kubernetes version everywhere: the node image, the schemas, helm's --kube-version, the live job's kind
    and kubectl. The digest is the one kind v0.33.0's release notes list for v1.36.4."""
    ref = kind.node_image()
    assert ref.startswith(f"kindest/node:v{k8s.K8S_VERSION}.") and len(ref.split("@sha256:")[1]) == 64
    assert ref.endswith("@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed")
    assert kind.KIND_VERSION == "v0.33.0" and kind.KIND_VERSION in kind.KIND_CONFIG.read_text()
    workflow = (kind.ROOT / ".github" / "workflows" / "test.yml").read_text()
    assert f"version: {kind.KIND_VERSION}" in workflow and f"kubectl_version: v{k8s.K8S_VERSION}." in workflow
    assert kind.image_tag().startswith("sha-") and len(kind.image_tag()) == 16
    assert f"--kube-version {k8s.K8S_VERSION}" in lesson06.render_env("dev", quiet=True).command


@pytest.mark.parametrize(
    "client,server,warned",
    [("32", "36", True), ("35", "36", False), ("37", "36", False), ("36+", "38", True), ("", "", False)],
)
def test_kubectl_version_skew_is_named(monkeypatch, client, server, warned):
    import json
    import subprocess

    out = json.dumps({"clientVersion": {"minor": client}, "serverVersion": {"minor": server}}) if client else ""
    monkeypatch.setattr(kind, "_run", lambda cmd, timeout=30: subprocess.CompletedProcess(cmd, 0, out, ""))
    said = kind.version_skew()
    assert bool(said) is warned
    if warned:
        assert f"kubectl 1.{server.rstrip('+')}" in said and "one minor version" in said


def test_exercise_chart_lives_in_the_workspace_and_a_fresh_copy_keeps_the_old(tmp_path, monkeypatch):
    """Issue 19 item 9: the exercise said to open ex.path in the file browser, but it was in .lab/ (hidden, outside
    JupyterLab's root). It is in the workspace JupyterLab opens; starting afresh keeps the previous copy."""
    from cloudlab.lab import workspace

    monkeypatch.setenv("CLOUDLAB_PROFILE", "test")
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path / "state"))
    ex = lesson06.exercise_chart(fresh=True)
    root = workspace.root(lesson06.Lab.from_env())
    assert ex.path == root / "l06-chart" / "orders"
    assert not any(p.startswith(".") for p in ex.path.relative_to(root).parts)
    ex.update_values({"replicas": 7})
    again = lesson06.exercise_chart(fresh=True)
    kept = root / "l06-chart" / "orders.previous" / "values.yaml"
    assert again.values["replicas"] == 1 and "replicas: 7" in kept.read_text()


def test_diff_lines_name_what_changed():
    """Issue 19 item 9: a diff line was cut to nothing useful. Named list items are compared by name."""
    lines = lesson06.diff_envs(lesson06.render_env("dev", quiet=True), lesson06.render_env("prod", quiet=True))
    assert any("env[AWS_ENDPOINT_URL]: removed" in ln for ln in lines)
    assert any("env[ORDERS_QUEUE_URL].value" in ln and "https://sqs.us-east-1.amazonaws.com/" in ln for ln in lines)


def test_exercise_chart_renders_blank(ex):
    m = ex.render(quiet=True)
    assert k8s.validate(m) == [] and m.get("Deployment")
    with pytest.raises(ValueError):
        ex.write("../escape.yaml", "x")


def test_six_checks():
    assert sorted(k for k in REGISTRY if k.startswith("06.")) == [f"06.{i}" for i in range(1, 7)]


# ------------------------------------------------------------------ 06.1 resources
def test_resources_pass(ex):
    solve(ex, 1)
    lesson06.check_resources(ns={})


@pytest.mark.parametrize(
    "resources,words",
    [
        ({}, ("CPU request",)),
        ({"requests": {"cpu": "100m", "memory": "96m"}, "limits": {"memory": "128m"}}, ("OOM",)),
        ({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "128Mi"}}, ("memory limit",)),
        ({"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}, ("below 64 MiB",)),
        ({"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}}, ("memory request",)),
        ({"requests": {"cpu": "1", "memory": "96Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}, ("CPU limit",)),
        ({"requests": {"cpu": "100m", "memory": "96Mi"}, "limits": {"memory": "8Gi"}}, ("neighbours",)),
        # issue 19: 128m is 0.128 bytes, and the limit line said [ok]
        ({"requests": {"cpu": "100m", "memory": "96Mi"}, "limits": {"memory": "128m"}}, ("thousandths", "128Mi")),
        # the limit, not the request, is where the kernel OOM-kills; a limit under the measured need
        ({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "60Mi"}}, ("OOM-kills",)),
        # more than asked: requests that reserve far more than the service uses
        ({"requests": {"cpu": "100m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}, ("reserves memory",)),
        ({"requests": {"cpu": "4", "memory": "96Mi"}, "limits": {"memory": "128Mi"}}, ("between 10m and 1",)),
    ],
)
def test_resources_wrong(ex, resources, words):
    ex.update_values({"resources": resources})
    rejected(lesson06.check_resources, None, *words)


def test_resources_request_message_says_what_a_low_request_does(ex):
    """Issue 20 item 11: a low request does not get the pod OOM-killed (the limit does that): it overcommits the
    node and makes the pod the first to be evicted under memory pressure."""
    ex.update_values({"resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}})
    msg = rejected(lesson06.check_resources, None, "evicts")
    request_line = next(ln for ln in msg.splitlines() if "memory request" in ln and "[missing]" in ln)
    assert "OOM" not in request_line


def test_resources_wrong_type_is_a_message_not_a_crash(ex):
    ex.update_values({"resources": {"requests": "lots"}})
    rejected(lesson06.check_resources, None, "do not validate")


# ------------------------------------------------------------------ 06.2 probes (starts the real service)
@pytest.mark.lab
def test_probes_pass(ex):
    solve(ex, 2)
    lesson06.check_probes(ns={})


def _probes(**changes):
    p = copy.deepcopy(PROBES)
    for kind_, probe in changes.items():
        if probe is None:
            p["probes"].pop(kind_)
        else:
            p["probes"][kind_] = probe
    return p


@pytest.mark.lab
@pytest.mark.parametrize(
    "probes,words",
    [
        # readiness identical to liveness, both on the dependency: a slow bucket restarts every pod
        (_probes(liveness={"httpGet": {"path": "/ready", "port": "http"}}), ("restarted",)),
        # readiness on /health: traffic goes to pods that cannot reach their bucket
        (_probes(readiness={"httpGet": {"path": "/health", "port": "http"}}), ("not ready",)),
        # a path the service does not serve
        (_probes(liveness={"httpGet": {"path": "/healthz", "port": "http"}}), ("does not serve",)),
        # the Service's port, not the container's
        (_probes(readiness={"httpGet": {"path": "/ready", "port": 80}}), ("named port http",)),
        # no startup probe and a trigger-happy liveness probe
        (
            _probes(startup=None, liveness={"httpGet": {"path": "/health", "port": "http"}, "failureThreshold": 1}),
            ("startup",),
        ),
        (
            _probes(
                startup={"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 1, "failureThreshold": 3}
            ),
            ("20 s",),
        ),
        # lifecycle and time: readiness so patient that a pod without its bucket keeps traffic for 10 minutes
        (
            _probes(
                readiness={"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 20, "failureThreshold": 30}
            ),
            ("600 s of failures", "React within 30 s"),
        ),
    ],
)
def test_probes_wrong(ex, probes, words):
    ex.update_values(probes)
    rejected(lesson06.check_probes, None, *words)


def test_probes_blank_fails_without_a_lab(ex):
    rejected(lesson06.check_probes, None, "no httpGet startup probe")


# ------------------------------------------------------------------ 06.3 service
def test_service_pass(ex):
    solve(ex, 3)
    lesson06.check_service(ns={})


SERVICE_WRONG = [
    # the starter: a label no pod has, and the Service's port as targetPort
    (None, ("but the pods carry", "targetPort is 80")),
    # a label only the Deployment object carries
    (
        SERVICE.replace('{{- include "orders.selectorLabels" . | nindent 4 }}', "app.kubernetes.io/part-of: cloudlab"),
        ("on the Deployment object",),
    ),
    # the right selector, a number instead of the port's name
    (SERVICE.replace("targetPort: http", "targetPort: 8080"), ("use the container port's name",)),
    # a name the container does not have
    (SERVICE.replace("targetPort: http", "targetPort: web"), ("'web'",)),
    # an empty selector: a Service without selector gets no endpoints at all
    (SERVICE.replace('{{- include "orders.selectorLabels" . | nindent 4 }}', "{}"), ("selects {}",)),
    # today's release hard-coded: right for `orders`, wrong for any other release (issue 21, pattern 1)
    (
        SERVICE.replace(
            '{{- include "orders.selectorLabels" . | nindent 4 }}',
            "app.kubernetes.io/name: orders\n    app.kubernetes.io/instance: orders",
        ),
        ("names the release 'orders'",),
    ),
    # too wide: every release of the chart in the namespace (issue 21, pattern 2)
    (
        SERVICE.replace('{{- include "orders.selectorLabels" . | nindent 4 }}', "app.kubernetes.io/name: orders"),
        ("another release of this chart", "instance label"),
    ),
    # a fixed namespace and a fixed name
    (SERVICE.replace("namespace: {{ .Release.Namespace }}", "namespace: l06-ex"), ("not a fixed namespace",)),
    (SERVICE.replace("name: {{ .Release.Name }}", "name: orders"), ("would both create Service/orders",)),
]


@pytest.mark.parametrize("text,words", SERVICE_WRONG)
def test_service_wrong(ex, text, words):
    if text is not None:
        ex.write("templates/service.yaml", text)
    rejected(lesson06.check_service, None, *words)


# ------------------------------------------------------------------ 06.4 HPA
def test_hpa_pass(ex):
    solve(ex, 4)
    lesson06.check_hpa(ns={"desired_replicas": 6})


@pytest.mark.parametrize(
    "hpa,values,ns,words",
    [
        (None, HPA_VALUES, {"desired_replicas": 6}, ("no HorizontalPodAutoscaler",)),
        (
            HPA,
            {**HPA_VALUES, "resources": {"requests": {"memory": "96Mi"}}},
            {"desired_replicas": 6},
            ("no CPU request",),
        ),
        (
            HPA.replace("name: {{ .Release.Name }}\n  minReplicas", "name: orders-deployment\n  minReplicas"),
            HPA_VALUES,
            {"desired_replicas": 6},
            ("scaleTargetRef",),
        ),
        (
            HPA.replace("autoscaling/v2", "autoscaling/v2beta2"),
            HPA_VALUES,
            {"desired_replicas": 6},
            ("removed in Kubernetes 1.26",),
        ),
        (HPA, HPA_VALUES, {"desired_replicas": 5}, ("round UP",)),  # int(4*90/60)... floor of 6.0 is fine; 5 is a guess
        (HPA, HPA_VALUES, {"desired_replicas": 6.0}, ("should be a int",)),
        (
            HPA,
            {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 6, "target": 60}},
            {"desired_replicas": 6},
            ("at least 2",),
        ),
        (
            HPA,
            {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6, "target": 70}},
            {"desired_replicas": 5},
            ("controller computes 6",),
        ),
        # the formula without the tolerance: 90/85 = 1.06 is within 10 %, the controller keeps 4
        (
            HPA,
            {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6, "target": 85}},
            {"desired_replicas": 5},
            ("within the 10 % tolerance", "computes 4"),
        ),
        # today's Deployment name hard-coded (issue 21, pattern 1)
        (
            HPA.replace("name: {{ .Release.Name }}\n  minReplicas", "name: orders\n  minReplicas"),
            HPA_VALUES,
            {"desired_replicas": 6},
            ("scaleTargetRef", "not 'orders'"),
        ),
    ],
)
def test_hpa_wrong(ex, hpa, values, ns, words):
    solve(ex, 1)
    if hpa is not None:
        ex.write("templates/hpa.yaml", hpa)
    if "resources" in values:  # replace, not merge: the CPU request is gone
        ex.write("values.yaml", yaml.safe_dump({**ex.values, **values}, sort_keys=False))
    else:
        ex.update_values(values)
    rejected(lesson06.check_hpa, ns, *words)


def test_hpa_tolerance_answer_passes(ex):
    solve(ex, 4)
    ex.update_values({"autoscaling": {"target": 85}})
    lesson06.check_hpa(ns={"desired_replicas": 4})


def test_hpa_replicas_fight(ex):
    solve(ex, 4)
    dep = ex.read("templates/deployment.yaml").replace("{{- if not (.Values.autoscaling).enabled }}", "{{- if true }}")
    ex.write("templates/deployment.yaml", dep)
    rejected(lesson06.check_hpa, {"desired_replicas": 6}, "still sets replicas")


# ------------------------------------------------------------------ 06.5 NetworkPolicy
def test_netpol_pass(ex):
    solve(ex, 5)
    lesson06.check_netpol(ns={})


BACKING = """    - to:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: l06-backing}
          podSelector:
            matchLabels: {app.kubernetes.io/name: backing}
      ports:
        - {port: {{ .Values.aws.backingPort }}, protocol: TCP}
"""
DNS_PEER = """    - to:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: kube-system}
          podSelector:
            matchLabels: {k8s-app: kube-dns}
      ports:"""
NETPOL_WRONG = [
    (None, ("no NetworkPolicy",)),
    # the allow policy's podSelector uses a label no pod has
    (NETPOL.replace('{{- include "orders.selectorLabels" . | nindent 6 }}', "app: orders"), ("selects nothing",)),
    # forgot DNS: every lookup of the backing service fails
    (NETPOL.replace("        - {port: 53, protocol: UDP}\n", ""), ("DNS lookups",)),
    # no default deny: the other pods of the namespace stay open
    (NETPOL.split("---")[1], ("podSelector: {}", "another pod of the namespace")),
    # Ingress only: the service can still call anything on the internet
    (NETPOL.replace("policyTypes: [Ingress, Egress]", "policyTypes: [Ingress]"), ("internet",)),
    # allow all egress
    (NETPOL.replace(BACKING, "    - {}\n"), ("internet",)),
    # the backing port to every address: an egress rule without `to:` (issue 20 item 10, issue 21 pattern 2)
    (
        NETPOL.replace(BACKING, "    - ports:\n        - {port: {{ .Values.aws.backingPort }}, protocol: TCP}\n"),
        ("port 5000 anywhere else",),
    ),
    # DNS to anywhere: a DNS rule without `to:`
    (NETPOL.replace(DNS_PEER, "    - ports:"), ("DNS to a server on the internet",)),
    # DNS over UDP only: large answers fall back to TCP
    (NETPOL.replace("        - {port: 53, protocol: TCP}\n", ""), ("DNS over TCP",)),
    # the pods of today's release only (issue 21, pattern 1)
    (
        NETPOL.replace(
            '{{- include "orders.selectorLabels" . | nindent 6 }}',
            "app.kubernetes.io/name: orders\n      app.kubernetes.io/instance: orders",
        ),
        ("selects nothing",),
    ),
]


@pytest.mark.parametrize("text,words", NETPOL_WRONG)
def test_netpol_wrong(ex, text, words):
    if text is not None:
        ex.write("templates/networkpolicy.yaml", text)
    rejected(lesson06.check_netpol, None, *words)


# ------------------------------------------------------------------ 06.6 hardening + checkov
def test_hardening_pass(ex):
    solve(ex, 6)
    lesson06.check_hardening(ns={})


def _harden(**changes):
    h = copy.deepcopy(HARDENING)
    for key, value in changes.items():
        h[key] = value
    return h


HARDEN_WRONG = [
    # runAsNonRoot with a root image and no user: the kubelet refuses to start it
    (_harden(podSecurityContext={"runAsNonRoot": True}), ("numeric runAsUser",)),
    (_harden(podSecurityContext={"runAsNonRoot": True, "runAsUser": 0}), ("user 0 is root",)),
    (_harden(image={"tag": "latest"}), ("moving tag",)),
    (
        _harden(securityContext={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["NET_RAW"]}}),
        ("drop [ALL]", "readOnlyRootFilesystem"),
    ),
    (
        _harden(annotations={"checkov.io/skip1": "CKV_K8S_15=ok", "checkov.io/skip2": "CKV_K8S_43=ok"}),
        ("without a real reason",),
    ),
    (_harden(annotations={}), ("CKV_K8S_15",)),
    # a version-like tag where the immutable one was asked (issue 21, pattern 4)
    (_harden(image={"tag": "1.4.2"}), ("version tag", "lesson06.IMAGE_TAG")),
    # an immutable-looking tag that is not the image make cluster built
    (_harden(image={"tag": "sha-0a6c7d1e2f30"}), ("not the image `make cluster` built",)),
    # root group, and a capability added back
    (_harden(podSecurityContext={**HARDENING["podSecurityContext"], "runAsGroup": 0}), ("root group",)),
    (
        _harden(
            securityContext={**HARDENING["securityContext"], "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}
        ),
        ("add none back",),
    ),
    # silencing instead of fixing: the seccomp profile is one line, skipped with a reason (issue 21, pattern 3)
    (
        _harden(
            podSecurityContext={"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001},
            annotations={
                **HARDENING["annotations"],
                "checkov.io/skip3": "CKV_K8S_31=the runtime's default profile is fine for us",
            },
        ),
        ("skipped although the chart can fix it", "CKV_K8S_31", "seccompProfile"),
    ),
]


@pytest.mark.parametrize("values,words", HARDEN_WRONG)
def test_hardening_wrong(ex, values, words):
    solve(ex, 5)
    v = {**ex.values, **values}  # replace each key: a nested merge would keep the fields a wrong answer leaves out
    v["image"] = {**ex.values["image"], **values.get("image", {})}  # the repository stays
    if values.get("annotations") == {}:
        v.pop("annotations", None)
    ex.write("values.yaml", yaml.safe_dump(v, sort_keys=False))
    rejected(lesson06.check_hardening, None, *words)


def test_blank_exercise_fails_every_offline_check_with_a_hint(ex):
    for fn, ns in [
        (lesson06.check_resources, {}),
        (lesson06.check_service, {}),
        (lesson06.check_hpa, {}),
        (lesson06.check_netpol, {}),
        (lesson06.check_hardening, {}),
    ]:
        rejected(fn, ns)


def test_a_chart_with_a_template_error_is_a_message(ex):
    ex.write("templates/broken.yaml", "{{ .Values.nope.deeper }}\n")
    rejected(lesson06.check_service, None, "helm could not render")


def test_offline_mode_is_announced_once(capsys, monkeypatch):
    import sys

    live_mod = sys.modules["cloudlab.k8s.live"]
    monkeypatch.setattr(live_mod, "_ANNOUNCED", {})
    monkeypatch.setattr(kind, "cluster_status", lambda timeout=3: (False, "no cluster"))
    assert k8s.mode() == "offline" and k8s.mode() == "offline"
    assert capsys.readouterr().out.count("OFFLINE mode") == 1
    assert k8s.skip_unless_live("roll back", "kubectl rollout undo deployment/orders") is None
    assert "would run: kubectl rollout undo" in capsys.readouterr().out


def test_required_cluster_is_an_error(monkeypatch):
    monkeypatch.setattr(kind, "cluster_status", lambda timeout=3: (False, "no cluster"))
    monkeypatch.setenv("CLOUDLAB_REQUIRE_CLUSTER", "1")
    with pytest.raises(k8s.NoCluster, match="make cluster"):
        k8s.live()


def test_cluster_commands_explain_missing_tools(monkeypatch):
    from cloudlab.lab import LabError

    monkeypatch.setattr(kind, "kind_status", lambda: (False, "kind is not installed"))
    with pytest.raises(LabError, match="brew install kind"):
        kind.up()
    monkeypatch.setattr(kind, "kind_status", lambda: (True, "kind v0.27.0"))
    monkeypatch.setattr(kind, "docker_status", lambda: (False, "no engine answers (Docker stopped?)"))
    with pytest.raises(LabError, match="start Docker"):
        kind.up()


def test_checkov_scans_manifests_under_a_hidden_folder(tmp_path):
    """The lab's work folder is inside .lab/: checkov's kubernetes runner would skip it silently."""
    from cloudlab import scanners

    folder = tmp_path / ".lab" / "scan"
    k8s.load(lesson06.MESSY).write(folder / "messy.yaml")
    rep = scanners.checkov(folder, framework="kubernetes", quiet=True)
    assert rep["resources"] > 0 and "CKV_K8S_8" in {f[0] for f in rep["failed"]}, rep
    assert rep["command"].startswith("cd ")
