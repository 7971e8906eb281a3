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
{{- end }}

[dnssec]
enabled = {{ $c.dnssec.enabled }}
algorithm = {{ $c.dnssec.algorithm | quote }}
split_keys = {{ $c.dnssec.splitKeys }}
denial = {{ $c.dnssec.denial | quote }}

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
