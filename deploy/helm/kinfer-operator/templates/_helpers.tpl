{{/* Names and labels, as `helm create` lays them out. */}}
{{- define "kinfer-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kinfer-operator.fullname" -}}
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

{{/* The operator's pods carry app.kubernetes.io/name=kinfer and component=operator: the
NetworkPolicies the operator writes let exactly these pods scrape the engines' metrics. */}}
{{- define "kinfer-operator.selectorLabels" -}}
app.kubernetes.io/name: kinfer
app.kubernetes.io/component: operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kinfer-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kinfer-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kinfer-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kinfer-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kinfer-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
What the operator does with each kind, and nothing more (tests/k8s/test_operator.py compares
these rules with every request the running operator makes, from the API server's audit log):
- LLMServices: list and watch (informer); patch status (server-side apply of the status
  subresource); update finalizers, which the OwnerReferencesPermissionEnforcement admission
  plugin asks of whoever sets blockOwnerDeletion on a child.
- Children: list and watch (informers), create and patch (server-side apply creates what is
  missing), delete (what is no longer wanted).
- EndpointSlices get, list, watch: never called by the operator, but Kubernetes only lets it grant
  what it holds, and the router's Role it creates grants exactly these.
- Events: create, and patch for repeats (a series count).
*/}}
{{- define "kinfer-operator.rules" -}}
- apiGroups: [kinfer.dev]
  resources: [llmservices]
  verbs: [list, watch]
- apiGroups: [kinfer.dev]
  resources: [llmservices/status]
  verbs: [patch]
- apiGroups: [kinfer.dev]
  resources: [llmservices/finalizers]
  verbs: [update]
# The autoscaler: replicas through /scale (also granted on to the routers for scale from zero),
# engine and router pods to scrape and drain (the kinfer.dev/serving label, the deletion cost),
# HPAs to stand down when one targets an LLMService.
- apiGroups: [kinfer.dev]
  resources: [llmservices/scale]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list, patch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list]
- apiGroups: [""]
  resources: [services, serviceaccounts, persistentvolumeclaims]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
