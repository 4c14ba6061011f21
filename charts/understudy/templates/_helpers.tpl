{{/* Chart name, or nameOverride. */}}
{{- define "understudy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<chart>" (or fullnameOverride), at most 63 characters. */}}
{{- define "understudy.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods (never change them after install). */}}
{{- define "understudy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "understudy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "understudy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "understudy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The sidecar's image reference (tag defaults to appVersion). */}}
{{- define "understudy.image" -}}
{{- printf "%s:%s" .Values.understudy.image.repository (default .Chart.AppVersion .Values.understudy.image.tag) -}}
{{- end -}}

{{/* The admin API's listen address inside the pod. */}}
{{- define "understudy.adminListen" -}}
{{- if .Values.admin.podNetwork -}}
{{- printf "0.0.0.0:%d" (int .Values.admin.port) -}}
{{- else -}}
{{- printf "127.0.0.1:%d" (int .Values.admin.port) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the admin token: the user's, or the one the chart makes. */}}
{{- define "understudy.adminTokenSecret" -}}
{{- if .Values.secrets.adminToken.existingSecret -}}
{{- .Values.secrets.adminToken.existingSecret -}}
{{- else -}}
{{- printf "%s-admin-token" (include "understudy.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the feedback signing key: the user's, or the chart's. */}}
{{- define "understudy.feedbackKeySecret" -}}
{{- if .Values.secrets.feedbackKey.existingSecret -}}
{{- .Values.secrets.feedbackKey.existingSecret -}}
{{- else -}}
{{- printf "%s-feedback-key" (include "understudy.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Fleet mode: "true" when the sidecars coordinate through etcd (an
existing one at coordination.etcd.endpoints, or the bundled one), else "". */}}
{{- define "understudy.coordinated" -}}
{{- if or .Values.coordination.etcd.endpoints .Values.coordination.etcd.bundled.enabled -}}
true
{{- end -}}
{{- end -}}

{{/* The bundled etcd's StatefulSet and headless Service name. */}}
{{- define "understudy.etcdName" -}}
{{- printf "%s-etcd" (include "understudy.fullname" . | trunc 58 | trimSuffix "-") -}}
{{- end -}}

{{/* Labels that select the bundled etcd's pod: not the sidecar pods'
(the app Service and the PodDisruptionBudget must not match it). */}}
{{- define "understudy.etcdSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-etcd" (include "understudy.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: etcd
{{- end -}}

{{/* The bundled etcd's client endpoint (host:port), through its headless Service. */}}
{{- define "understudy.etcdBundledEndpoint" -}}
{{- printf "%s.%s.svc:%d" (include "understudy.etcdName" .) $.Release.Namespace (int $.Values.coordination.etcd.bundled.port) -}}
{{- end -}}

{{/* The fleet's key prefix: coordination.etcd.prefix, or /understudy/<fullname>/. */}}
{{- define "understudy.etcdPrefix" -}}
{{- if .Values.coordination.etcd.prefix -}}
{{- .Values.coordination.etcd.prefix -}}
{{- else -}}
{{- printf "/understudy/%s/" (include "understudy.fullname" .) -}}
{{- end -}}
{{- end -}}
