{{/* Names and labels. */}}
{{- define "voxserve.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "voxserve.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "voxserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voxserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "voxserve.labels" -}}
{{ include "voxserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "voxserve.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* True (non-empty) when a Redis URL is configured, by value or by Secret. */}}
{{- define "voxserve.redis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret }}yes{{ end -}}
{{- end -}}

{{/* Environment shared by the server container and the Ray containers. */}}
{{- define "voxserve.env" -}}
{{- if .Values.redis.existingSecret }}
- name: VOXSERVE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.secretKey }}
{{- else if .Values.redis.url }}
- name: VOXSERVE_REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- if and (include "voxserve.redis" .) .Values.redis.registry }}
# The voice registry's store (read by every server process): shared voices across replicas.
- name: VOXSERVE_VOICE_STORE
  value: $(VOXSERVE_REDIS_URL)
{{- end }}
{{- if .Values.apiKeys.existingSecret }}
- name: VOXSERVE_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.apiKeys.existingSecret }}
      key: {{ .Values.apiKeys.secretKey }}
{{- end }}
{{- end -}}

{{/* `voxserve serve` arguments of the Deployment's container (Kubernetes expands $(VAR)). */}}
{{- define "voxserve.serveArgs" -}}
- serve
- --host
- 0.0.0.0
- --port
- {{ .Values.server.port | quote }}
- --voice
- {{ .Values.server.voice | quote }}
{{- with .Values.server.preload }}
- --preload
{{- range . }}
- {{ . | quote }}
{{- end }}
{{- end }}
- --backend
- {{ .Values.server.backend | quote }}
- --device
- {{ .Values.server.device | quote }}
{{- with .Values.server.fallback }}
- --fallback
- {{ . | quote }}
{{- end }}
- --max-queue
- {{ .Values.server.maxQueue | quote }}
- --deadline
- {{ .Values.server.deadlineSeconds | quote }}
- --drain-timeout
- {{ .Values.server.drainTimeoutSeconds | quote }}
- --log-level
- {{ .Values.server.logLevel | quote }}
{{- if not .Values.server.ui }}
- --no-ui
{{- end }}
{{- if include "voxserve.redis" . }}
{{- if .Values.redis.cache }}
- --cache
- $(VOXSERVE_REDIS_URL)
{{- end }}
{{- end }}
{{- range .Values.server.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
