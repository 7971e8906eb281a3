{{/* /etc/pdm/pdm.toml, from .Values.config (secrets come from the environment). */}}
{{- define "pdm.toml" -}}
{{- $c := .Values.config -}}
http = {{ printf "0.0.0.0:%d" (int .Values.http.containerPort) | quote }}
dns = {{ printf "0.0.0.0:%d" (int .Values.dns.containerPort) | quote }}
hostmaster = {{ $c.hostmaster | quote }}
packet_cache = {{ int $c.packetCache }}
force_release_grace_hours = {{ int $c.forceReleaseGraceHours }}
shutdown_delay_secs = {{ int .Values.shutdown.delaySeconds }}
shutdown_grace_secs = {{ int .Values.shutdown.graceSeconds }}
{{- with $c.serialPolicy }}
serial_policy = {{ . | quote }}
{{- end }}
{{- range $c.nameservers }}

[[nameservers]]
name = {{ .name | quote }}
addresses = [{{ range $i, $a := .addresses }}{{ if $i }}, {{ end }}{{ $a | quote }}{{ end }}]
{{- end }}
{{- range $c.pools }}

[[pools]]
domain = {{ .domain | quote }}
{{- if hasKey . "reservationTtlSecs" }}
reservation_ttl_secs = {{ int .reservationTtlSecs }}
{{- end }}
{{- if hasKey . "publicCheck" }}
public_check = {{ .publicCheck }}
{{- end }}
{{- with .serialPolicy }}
serial_policy = {{ . | quote }}
{{- end }}
{{- if hasKey . "minTtl" }}
min_ttl = {{ int .minTtl }}
{{- end }}
{{- if hasKey . "maxTtl" }}
max_ttl = {{ int .maxTtl }}
{{- end }}
{{- with .transferAllow }}
transfer_allow = [{{ include "pdm.allowList" . }}]
{{- end }}
{{- with .alsoNotify }}
also_notify = [{{ include "pdm.notifyList" . }}]
{{- end }}
{{- end }}

[dnssec]
enabled = {{ $c.dnssec.enabled }}
algorithm = {{ $c.dnssec.algorithm | quote }}
split_keys = {{ $c.dnssec.splitKeys }}
denial = {{ $c.dnssec.denial | quote }}

{{- with $c.transfer }}

[transfer]
allow = [{{ include "pdm.allowList" (.allow | default list) }}]
also_notify = [{{ include "pdm.notifyList" (.alsoNotify | default list) }}]
{{- with .catalog }}
catalog = {{ . | quote }}
{{- end }}
{{- if hasKey . "startupNotifyRate" }}
startup_notify_rate = {{ int .startupNotifyRate }}
{{- end }}
{{- end }}
{{- with $c.records }}

[records]
{{- if hasKey . "minTtl" }}
min_ttl = {{ int .minTtl }}
{{- end }}
{{- if hasKey . "maxTtl" }}
max_ttl = {{ int .maxTtl }}
{{- end }}
{{- if hasKey . "maxRrsetRecords" }}
max_rrset_records = {{ int .maxRrsetRecords }}
{{- end }}
{{- if hasKey . "maxZoneRecords" }}
max_zone_records = {{ int .maxZoneRecords }}
{{- end }}
{{- end }}

[registrars]
timeout_secs = {{ int .Values.registrars.timeoutSecs }}
{{- range $id, $url := .Values.registrars.baseUrls }}

[registrars.{{ $id }}]
base_url = {{ $url | quote }}
{{- end }}
{{- if .Values.powerdns.enabled }}

[backend]
kind = "powerdns"
url = {{ .Values.powerdns.url | quote }}
server_id = {{ .Values.powerdns.serverId | quote }}
zone_kind = {{ .Values.powerdns.zoneKind | quote }}
also_notify = [{{ range $i, $a := .Values.powerdns.alsoNotify }}{{ if $i }}, {{ end }}{{ $a | quote }}{{ end }}]
{{- end }}
{{- with $c.extra }}

{{ . }}
{{- end }}
{{- end -}}

{{/* Transfer rules as TOML inline tables: { from = [...], key = "..." }. */}}
{{- define "pdm.allowList" -}}
{{- range $i, $r := . }}{{ if $i }}, {{ end }}{ from = [{{ range $j, $f := $r.from }}{{ if $j }}, {{ end }}{{ $f | quote }}{{ end }}]{{ with $r.key }}, key = {{ . | quote }}{{ end }} }{{ end }}
{{- end -}}

{{/* NOTIFY targets as TOML inline tables: { address = "...", key = "..." }. */}}
{{- define "pdm.notifyList" -}}
{{- range $i, $t := . }}{{ if $i }}, {{ end }}{ address = {{ $t.address | quote }}{{ with $t.key }}, key = {{ . | quote }}{{ end }} }{{ end }}
{{- end -}}
