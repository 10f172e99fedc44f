{{/* The release's name prefix of every object, at most 50 characters so
that suffixes such as -operator keep names under 63. */}}
{{- define "aim.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aim.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aim.labels" -}}
{{ include "aim.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "aim.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "aim.solutionsNamespace" -}}
{{ .Values.solutions.namespace | default .Release.Namespace }}
{{- end -}}

{{/* tls.mode, with "off" taken as none and anything unknown refused. */}}
{{- define "aim.tlsMode" -}}
{{- $m := .Values.tls.mode | default "none" -}}
{{- if eq $m "off" -}}{{- $m = "none" -}}{{- end -}}
{{- if not (has $m (list "none" "cert-manager" "acme")) -}}
{{- fail (printf "tls.mode %q: use none, cert-manager or acme" $m) -}}
{{- end -}}
{{- $m -}}
{{- end -}}

{{- define "aim.urlScheme" -}}
{{- if .Values.operator.urlScheme -}}{{ .Values.operator.urlScheme }}
{{- else if eq (include "aim.tlsMode" .) "none" -}}http
{{- else -}}https
{{- end -}}
{{- end -}}

{{- define "aim.tlsSecret" -}}
{{ .Values.tls.certManager.secretName | default (printf "%s-tls" (include "aim.fullname" .)) }}
{{- end -}}

{{/* The gateway pods' labels as "k=v,k=v": the operator lets only these
pods in to public components. */}}
{{- define "aim.gatewaySelector" -}}
app.kubernetes.io/name={{ .Chart.Name }},app.kubernetes.io/instance={{ .Release.Name }},app.kubernetes.io/component=gateway
{{- end -}}

{{/* Scheduling of aim's own pods: the platform node group, if any. */}}
{{- define "aim.platformScheduling" -}}
{{- with .Values.nodeGroups.platform -}}
nodeSelector:
  aim.dev/node-group: {{ . }}
tolerations:
  - key: aim.dev/node-group
    operator: Equal
    value: {{ . }}
    effect: NoSchedule
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod Security "restricted" for aim's own pods. */}}
{{- define "aim.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "aim.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end -}}

{{- define "aim.buildsNamespace" -}}
{{ .Values.builds.namespace | default (printf "%s-builds" .Release.Namespace) }}
{{- end -}}

{{/* host[:port] of the registry nodes pull from (builds push through the API's gate). */}}
{{- define "aim.registryHost" -}}
{{- if .Values.registry.host -}}{{ .Values.registry.host }}
{{- else if .Values.registry.url -}}{{ .Values.registry.url }}
{{- else -}}{{ include "aim.fullname" . }}-registry.{{ .Release.Namespace }}.svc:5000
{{- end -}}
{{- end -}}
