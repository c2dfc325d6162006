{{/* The labels the Deployment's selector, the Service and the policies match on: stable for the release. */}}
{{- define "orders.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Every object's labels: the selector labels plus what changes with each version. */}}
{{- define "orders.labels" -}}
{{ include "orders.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
app.kubernetes.io/part-of: cloudlab
{{- end }}

{{/* The image: by digest when one is given, else by its (immutable) tag. */}}
{{- define "orders.image" -}}
{{- if (.Values.image).digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ required "image.tag is required (an immutable tag, never latest)" .Values.image.tag }}
{{- end -}}
{{- end }}
