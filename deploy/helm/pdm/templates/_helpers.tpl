{{/* The chart's name, or nameOverride. */}}
{{- define "pdm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's resource name. */}}
{{- define "pdm.fullname" -}}
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

{{- define "pdm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pdm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pdm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "pdm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pdm
{{- end -}}

{{- define "pdm.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "pdm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pdm.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Refuse values that cannot work, before anything is applied. */}}
{{- define "pdm.validate" -}}
{{- if and (eq .Values.database.mode "embedded") (gt (int .Values.replicaCount) 1) -}}
{{- fail "database.mode=embedded (SQLite) runs one replica; use database.mode=postgres for replicaCount > 1" -}}
{{- end -}}
{{- if and (eq .Values.database.mode "postgres") (not .Values.database.existingSecret) -}}
{{- fail "database.mode=postgres needs database.existingSecret (a Secret holding the database URL)" -}}
{{- end -}}
{{- if not .Values.secretKey.existingSecret -}}
{{- fail "secretKey.existingSecret is required (64 hex characters sealing DNSSEC keys and registrar credentials)" -}}
{{- end -}}
{{- if and .Values.powerdns.enabled (not .Values.powerdns.apiKey.existingSecret) -}}
{{- fail "powerdns.enabled needs powerdns.apiKey.existingSecret" -}}
{{- end -}}
{{- end -}}

{{/* The environment every pdm container gets (serve, migrate). */}}
{{- define "pdm.env" -}}
- name: PDM_CONFIG
  value: /etc/pdm/pdm.toml
- name: PDM_DATABASE_URL
{{- if eq .Values.database.mode "postgres" }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.urlKey }}
{{- else }}
  value: sqlite:///var/lib/pdm/pdm.db
{{- end }}
- name: PDM_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secretKey.existingSecret }}
      key: {{ .Values.secretKey.key }}
{{- if .Values.powerdns.enabled }}
- name: PDM_POWERDNS_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.powerdns.apiKey.existingSecret }}
      key: {{ .Values.powerdns.apiKey.key }}
{{- end }}
- name: PDM_LOG
  value: {{ .Values.log.level | quote }}
- name: PDM_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
{{- end -}}
