{{/* Names and labels, as `helm create` lays them out. */}}
{{- define "kinfer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kinfer.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kinfer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kinfer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: engine
{{- end }}

{{- define "kinfer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kinfer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
kinfer.dev/model: {{ regexReplaceAll "[^A-Za-z0-9._-]" .Values.model.name "_" | trunc 63 | trimAll "_.-" | quote }}
{{- end }}

{{- define "kinfer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kinfer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kinfer.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The server's image: the CUDA variant when the replica has a GPU. */}}
{{- define "kinfer.serverImage" -}}
{{- include "kinfer.image" . }}{{ if gt (int .Values.gpu) 0 }}{{ .Values.image.cudaTagSuffix }}{{ end }}
{{- end }}

{{- define "kinfer.apiKeySecret" -}}
{{- default (printf "%s-api-keys" (include "kinfer.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* The label the helm test pod carries; the NetworkPolicy lets it reach the API port. */}}
{{- define "kinfer.testLabel" -}}
kinfer.dev/test-client: {{ include "kinfer.fullname" . | quote }}
{{- end }}

{{- define "kinfer.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{- define "kinfer.gracePeriod" -}}
{{- $e := .Values.engine }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add .Values.preStopSleepSeconds $e.drainDelaySeconds $e.shutdownTimeoutSeconds 10 }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Server and init-container resources; with guaranteedQoS, limits equal requests. */}}
{{- define "kinfer.resources" -}}
{{- $r := deepCopy .resources }}
{{- if .guaranteed }}
{{- $_ := set $r "limits" (merge (dict "cpu" $r.requests.cpu "memory" $r.requests.memory) (default dict $r.limits)) }}
{{- $_ := set $r.limits "cpu" $r.requests.cpu }}
{{- $_ := set $r.limits "memory" $r.requests.memory }}
{{- end }}
{{- if gt (int .gpu) 0 }}
{{- $_ := set $r "limits" (default dict $r.limits) }}
{{- $_ := set $r.limits "nvidia.com/gpu" (int .gpu) }}
{{- end }}
{{- toYaml $r }}
{{- end }}

{{/*
Checks that span several values, with messages that say what to change. (Types, enums and
required fields are values.schema.json's job.)
*/}}
{{- define "kinfer.validate" -}}
{{- $v := .Values }}
{{- $src := $v.model.source }}
{{- if and (eq $src.type "pvc") (not $src.pvc.claimName) }}
{{- fail "model.source.type is pvc: set model.source.pvc.claimName to an existing PersistentVolumeClaim" }}
{{- end }}
{{- if and (eq $src.type "hostPath") (not $src.hostPath.path) }}
{{- fail "model.source.type is hostPath: set model.source.hostPath.path to the model's directory on the node" }}
{{- end }}
{{- if and (eq $src.type "hub") (not $src.hub.url) }}
{{- fail "model.source.type is hub: set model.source.hub.url to hf://ORG/NAME[@REVISION]" }}
{{- end }}
{{- if has ".." (splitList "/" $v.model.path) }}
{{- fail (printf "model.path %q may not contain '..': it is a path inside the model volume" $v.model.path) }}
{{- end }}
{{- if $v.guaranteedQoS }}
{{- if not (and $v.resources.requests $v.resources.requests.cpu $v.resources.requests.memory) }}
{{- fail "guaranteedQoS needs resources.requests.cpu and resources.requests.memory (limits are set equal to them)" }}
{{- end }}
{{- end }}
{{- if and $v.autoscaling.enabled (eq $v.autoscaling.metric "cpu") (not (and $v.resources.requests $v.resources.requests.cpu)) }}
{{- fail "autoscaling.metric cpu scales on CPU utilization of the request: set resources.requests.cpu" }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%v) is above autoscaling.maxReplicas (%v)" $v.autoscaling.minReplicas $v.autoscaling.maxReplicas) }}
{{- end }}
{{- if and $v.auth.enabled (not $v.auth.existingSecret) (not $v.auth.apiKeys) }}
{{- fail "auth.enabled: set auth.existingSecret to a Secret with the keys, or list auth.apiKeys" }}
{{- end }}
{{- if and $v.tls.enabled (not $v.tls.secretName) }}
{{- fail "tls.enabled: set tls.secretName to a kubernetes.io/tls Secret" }}
{{- end }}
{{- if not (kindIs "invalid" $v.terminationGracePeriodSeconds) }}
{{- $min := add $v.preStopSleepSeconds $v.engine.shutdownTimeoutSeconds }}
{{- if le (int $v.terminationGracePeriodSeconds) (int $min) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be above preStopSleepSeconds + engine.shutdownTimeoutSeconds (%v), or the kubelet kills the server mid-drain" $v.terminationGracePeriodSeconds $min) }}
{{- end }}
{{- end }}
{{- if eq (int $v.metricsPort) (int $v.service.port) }}
{{- fail "metricsPort must differ from service.port: metrics are served on their own port" }}
{{- end }}
{{- end }}
