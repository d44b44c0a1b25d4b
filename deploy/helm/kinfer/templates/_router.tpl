{{/* Names and labels of the router (templates/router-*.yaml). */}}
{{- define "kinfer.routerName" -}}
{{- printf "%s-router" (include "kinfer.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kinfer.routerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kinfer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: router
{{- end }}

{{- define "kinfer.routerLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kinfer.routerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
kinfer.dev/model: {{ regexReplaceAll "[^A-Za-z0-9._-]" .Values.model.name "_" | trunc 63 | trimAll "_.-" | quote }}
{{- end }}

{{- define "kinfer.routerGracePeriod" -}}
{{- $r := .Values.router }}
{{- add $r.preStopSleepSeconds (ceil $r.drainDelaySeconds) (ceil $r.shutdownTimeoutSeconds) 10 }}
{{- end }}

{{- define "kinfer.routerValidate" -}}
{{- if and .Values.router.enabled .Values.tls.enabled }}
{{- fail "router.enabled with tls.enabled: the router reaches the replicas over plain HTTP inside the cluster (behind the NetworkPolicy); terminate TLS at an Ingress in front of the router instead" }}
{{- end }}
{{- if and .Values.router.enabled (eq (int .Values.metricsPort) 8080) }}
{{- fail "router.enabled: metricsPort must differ from 8080, the router's API port" }}
{{- end }}
{{- if and .Values.router.enabled .Values.router.tokenizerFromModel (eq .Values.model.source.type "hub") }}
{{- fail "router.tokenizerFromModel needs a model volume the router can mount (model.source.type pvc or hostPath); with hub, leave it off" }}
{{- end }}
{{- end }}
