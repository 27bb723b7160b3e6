{{/* Pod spec of a one-shot shortener command (migrate, cleanup): (dict "root" $ "name" "migrate" "args" (list "migrate") "env" "…" "keys" (list "databaseUrl")); `keys` as for snowlink.deployment. */}}
{{- define "snowlink.jobPod" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "snowlink.componentLabels" (dict "root" $root "component" .name) | nindent 4 }}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    {{- include "snowlink.podSecurityContext" $root | nindent 4 }}
  {{- with $root.Values.image.pullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .name }}
      image: {{ include "snowlink.image" (dict "root" $root "image" $root.Values.shortener.image) }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        {{- include "snowlink.env.logging" $root | nindent 8 }}
        {{- include "snowlink.env.connections" (dict "root" $root "keys" .keys) | nindent 8 }}
        {{- include .env $root | nindent 8 }}
        {{- with $root.Values.shortener.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      resources:
        {{- toYaml $root.Values.jobs.resources | nindent 8 }}
      securityContext:
        {{- include "snowlink.containerSecurityContext" $root | nindent 8 }}
      {{- include "snowlink.volumeMounts" $root | nindent 6 }}
  {{- include "snowlink.volumes" (dict "root" $root "keys" .keys) | nindent 2 }}
{{- end }}
