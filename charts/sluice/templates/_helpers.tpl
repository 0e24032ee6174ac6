{{/* The release's full name: the release name, plus "-sluice" unless it already contains it. */}}
{{- define "sluice.fullname" -}}
{{- if contains "sluice" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-sluice" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: sluice-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end -}}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: sluice-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference: [registry/]repository:tag, the tag defaulting to appVersion. */}}
{{- define "sluice.image" -}}
{{- $img := index . 0 -}}{{- $root := index . 1 -}}
{{- $repo := $img.repository -}}
{{- if $root.Values.imageRegistry -}}{{- $repo = printf "%s/%s" (trimSuffix "/" $root.Values.imageRegistry) $repo -}}{{- end -}}
{{- printf "%s:%s" $repo (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/* The rules the operator needs in a namespace where it runs jobs (ClusterRole or Role). */}}
{{- define "sluice.jobRules" -}}
# StreamJobs and StreamSavepoints: watched, finalizers patched, status server-side applied.
- apiGroups: [sluice.dev]
  resources: [streamjobs, streamsavepoints]
  verbs: [get, list, watch, patch, update]
- apiGroups: [sluice.dev]
  resources: [streamjobs/status, streamsavepoints/status]
  verbs: [get, patch, update]
- apiGroups: [sluice.dev]
  resources: [streamjobs/finalizers, streamsavepoints/finalizers]
  verbs: [update]
# A job's children, server-side applied and owned by its StreamJob; ConfigMaps also
# hold `sqlConfigMapRef` SQL.
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, update, delete]
# Each job's NetworkPolicy `<job>-engine` (networkPolicy.engine.enabled), applied and
# deleted with the job's other children.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch, delete]
# Engine pods are watched (crash reasons, pods gone before a restore), never changed.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# `s3.credentialsSecretRef`: the operator deletes expired savepoints and disposes of
# StreamSavepoint data itself; read by name. Each job's engine token (`<job>-engine-token`)
# is created once, never changed, and read to call the engine.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# `spec.autoscaler`: a job that an HPA also scales is refused, so HPAs are watched.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch]
{{- if eq .Values.operator.engineAccess "apiserver-proxy" }}
# engineAccess apiserver-proxy: GET and POST to the coordinator's REST API through the API server.
- apiGroups: [""]
  resources: [services/proxy]
  verbs: [get, create]
{{- end }}
{{- end -}}
