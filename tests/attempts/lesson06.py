"""Lesson 06: a plausible wrong answer per task, run before the solution in the same kernel.

Each writes the same files (or values keys) as the solution, so the right answer that follows replaces it."""

ATTEMPTS = {
    # Memory in thousandths of a byte: `m` where `Mi` was meant (it validates, and means 0.128 bytes).
    "06.1": """
ex.update_values(
    {"resources": {"requests": {"cpu": "100m", "memory": "96m"}, "limits": {"cpu": "500m", "memory": "128m"}}}
)
""",
    # Liveness on the dependency check: a slow bucket would restart every pod.
    "06.2": """
ex.update_values({"probes": {
    "startup": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 2, "failureThreshold": 30},
    "liveness": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
    "readiness": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5, "failureThreshold": 2},
}})
""",
    # Today's release hard-coded in the selector: right for `orders`, reaches nothing as any other release.
    "06.3": """
ex.write("templates/service.yaml", '''
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "orders.labels" . | nindent 4 }}
spec:
  selector:
    app.kubernetes.io/name: orders
    app.kubernetes.io/instance: orders
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
''')
""",
    # The Deployment's name typed in, and the formula without the HPA's tolerance (90/85 is within 10 %).
    "06.4": """
ex.write("templates/hpa.yaml", '''
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
    name: orders
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
''')
ex.update_values({"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6, "target": 85}})
desired_replicas = math.ceil(4 * 90 / 85)
""",
    # The backing services' port open to every address: an egress rule without `to:`.
    "06.5": """
ex.write("templates/networkpolicy.yaml", '''
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
    - ports:
        - {port: {{ .Values.aws.backingPort }}, protocol: TCP}
''')
""",
    # A version-like tag where the immutable image was asked: `1.4.2` can be pushed again with other content.
    "06.6": """
ex.update_values({
    "image": {"tag": "1.4.2"},
    "podSecurityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                           "seccompProfile": {"type": "RuntimeDefault"}},
    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}},
    "annotations": {
        "checkov.io/skip1": "CKV_K8S_15=IfNotPresent on purpose: the tag is immutable and kind has no registry",
        "checkov.io/skip2": "CKV_K8S_43=the tag is a content hash; kind-loaded images have no registry digest",
    },
})
""",
}
