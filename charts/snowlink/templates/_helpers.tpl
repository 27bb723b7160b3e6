{{/* Names, labels and the pieces every workload shares. */}}

{{- define "snowlink.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped base name; components append "-idgen", "-shortener", "-redirect" (so at most 52 characters). */}}
{{- define "snowlink.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else if contains (include "snowlink.name" .) .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "snowlink.name" .) | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "snowlink.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "snowlink.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: snowlink
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "redirect"). */}}
{{- define "snowlink.selectorLabels" -}}
app.kubernetes.io/name: {{ include "snowlink.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "snowlink.componentLabels" -}}
{{ include "snowlink.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The Secret holding connection strings: the operator's own, or the one this chart makes from values. */}}
{{- define "snowlink.secretName" -}}
{{- if .Values.connections.existingSecret }}
{{- .Values.connections.existingSecret }}
{{- else }}
{{- printf "%s-connections" (include "snowlink.fullname" .) }}
{{- end }}
{{- end }}

{{- define "snowlink.image" -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .image.repository $tag }}
{{- end }}

{{/*
The Secret's keys one container reads, as a comma-separated list of connections.secretKeys names:
(dict "root" $ "keys" (list "databaseUrl" …)). An optional key (databaseReplicaUrls, zookeeperAuth, and codeKey
with the snowflake code style: snowlink.codeKey.check) is left out when its name is "", or when the chart makes the
Secret and has no value for it.
*/}}
{{- define "snowlink.connectionKeys" -}}
{{- $root := .root -}}
{{- $made := not $root.Values.connections.existingSecret -}}
{{- $absent := dict "databaseReplicaUrls" (empty $root.Values.postgresql.replicaUrls) "zookeeperAuth" (empty $root.Values.zookeeper.auth) "codeKey" (empty $root.Values.codeKey) -}}
{{- $used := list -}}
{{- range .keys -}}
{{- if and (index $root.Values.connections.secretKeys .) (not (and $made (index $absent .))) -}}
{{- $used = append $used . -}}
{{- end -}}
{{- end -}}
{{- join "," $used -}}
{{- end }}

{{/* Each key of snowlink.connectionKeys as an X_FILE variable naming its file (the services read X from it). */}}
{{- define "snowlink.env.connections" -}}
{{- $root := .root -}}
{{- $vars := dict "databaseUrl" "DATABASE_URL" "databaseReplicaUrls" "DATABASE_REPLICA_URL" "redisUrl" "REDIS_URL" "zookeeperConnect" "ZOOKEEPER_CONNECT" "zookeeperAuth" "ZOOKEEPER_AUTH" "codeKey" "CODE_KEY" -}}
{{- range compact (splitList "," (include "snowlink.connectionKeys" .)) }}
- name: {{ index $vars . }}_FILE
  value: {{ printf "%s/%s" $root.Values.connections.mountPath (index $root.Values.connections.secretKeys .) | quote }}
{{- end }}
{{- end }}

{{/*
A shortener making compact codes refuses to start without CODE_KEY, so the render refuses first, saying what to
set. Without a key (snowflake style) the redirect confirms replica misses of compact codes less precisely, no more.
*/}}
{{- define "snowlink.codeKey.check" -}}
{{- if eq .Values.shortener.codeStyle "compact" }}
{{- if not .Values.connections.secretKeys.codeKey }}
{{- fail "connections.secretKeys.codeKey is empty, but shortener.codeStyle compact needs the code key: name the key of your Secret that holds it (add one made with `openssl rand -hex 32`), or set shortener.codeStyle to snowflake" }}
{{- end }}
{{- if not .Values.connections.existingSecret }}
{{- $_ := required "codeKey is required: shortener.codeStyle compact needs the key behind its 7-character codes. Make one with `openssl rand -hex 32`, keep it for good (the same on every upgrade), and set codeKey to it; or set shortener.codeStyle to snowflake" .Values.codeKey }}
{{- end }}
{{- end }}
{{- end }}

{{- define "snowlink.env.redis" -}}
- name: REDIS_PREFIX
  value: {{ .Values.redis.prefix | quote }}
{{- end }}

{{/* Where the connection keys (and the private CA, if any) are mounted: root context. */}}
{{- define "snowlink.volumeMounts" -}}
volumeMounts:
  - name: connections
    mountPath: {{ .Values.connections.mountPath }}
    readOnly: true
  {{- if .Values.connections.tlsCa.secretName }}
  - name: tls-ca
    mountPath: {{ .Values.connections.tlsCa.mountPath }}
    readOnly: true
  {{- end }}
{{- end }}

{{/* The Secret volume with only the keys a container reads, and the private CA's: (dict "root" $ "keys" (list …)). */}}
{{- define "snowlink.volumes" -}}
{{- $root := .root -}}
volumes:
  - name: connections
    secret:
      secretName: {{ include "snowlink.secretName" $root }}
      {{- /* Readable by the pod's group (fsGroup) only: the files belong to root. */}}
      defaultMode: 0440
      items:
        {{- range compact (splitList "," (include "snowlink.connectionKeys" .)) }}
        {{- $key := index $root.Values.connections.secretKeys . }}
        - key: {{ $key }}
          path: {{ $key }}
        {{- end }}
  {{- if $root.Values.connections.tlsCa.secretName }}
  - name: tls-ca
    secret:
      secretName: {{ $root.Values.connections.tlsCa.secretName }}
  {{- end }}
{{- end }}

{{- define "snowlink.env.logging" -}}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: RUST_LOG
  value: {{ .Values.rustLog | quote }}
{{- end }}

{{/* Cleanup settings shared by `serve` (in-process mode) and the CronJob. */}}
{{/* Who the client is behind the ingress, for the shortener's rate limits and the redirect's unknown-code bound. */}}
{{- define "snowlink.env.clientIp" -}}
- name: TRUSTED_PROXIES
  value: {{ join "," .Values.trustedProxies | quote }}
{{- end }}

{{- define "snowlink.env.cleanupBatch" -}}
- name: SHORTENER_CLEANUP_BATCH
  value: {{ .Values.shortener.cleanup.batch | quote }}
{{- end }}

{{- define "snowlink.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
fsGroup: {{ .Values.securityContext.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "snowlink.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end }}
