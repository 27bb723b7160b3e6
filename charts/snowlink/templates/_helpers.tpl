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

{{/* One connection setting from the Secret: (dict "root" $ "env" "DATABASE_URL" "key" "databaseUrl" "optional" false). */}}
{{- define "snowlink.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "snowlink.secretName" .root }}
      key: {{ index .root.Values.connections.secretKeys .key }}
      optional: {{ .optional }}
{{- end }}

{{- define "snowlink.env.database" -}}
{{ include "snowlink.secretEnv" (dict "root" . "env" "DATABASE_URL" "key" "databaseUrl" "optional" false) }}
{{- end }}

{{/* Read replicas are optional: without the key the redirect reads from the primary. */}}
{{- define "snowlink.env.replicas" -}}
{{ include "snowlink.secretEnv" (dict "root" . "env" "DATABASE_REPLICA_URL" "key" "databaseReplicaUrls" "optional" true) }}
{{- end }}

{{- define "snowlink.env.redis" -}}
{{ include "snowlink.secretEnv" (dict "root" . "env" "REDIS_URL" "key" "redisUrl" "optional" false) }}
- name: REDIS_PREFIX
  value: {{ .Values.redis.prefix | quote }}
{{- end }}

{{- define "snowlink.env.zookeeper" -}}
{{ include "snowlink.secretEnv" (dict "root" . "env" "ZOOKEEPER_CONNECT" "key" "zookeeperConnect" "optional" false) }}
{{- /* Optional: without credentials the nodes are world-writable, as on a ZooKeeper without authentication. */}}
{{ include "snowlink.secretEnv" (dict "root" . "env" "ZOOKEEPER_AUTH" "key" "zookeeperAuth" "optional" true) }}
{{- end }}

{{/* The private CA for TLS to PostgreSQL and Redis, mounted where the URLs' sslrootcert points (root context;
callers include these only when connections.tlsCa.secretName is set). */}}
{{- define "snowlink.tlsCa.volumeMounts" -}}
volumeMounts:
  - name: tls-ca
    mountPath: {{ .Values.connections.tlsCa.mountPath }}
    readOnly: true
{{- end }}

{{- define "snowlink.tlsCa.volumes" -}}
volumes:
  - name: tls-ca
    secret:
      secretName: {{ .Values.connections.tlsCa.secretName }}
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
