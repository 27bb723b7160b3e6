{{/*
One service's Deployment, Services, HPA and PDB, shared by idgen, shortener and redirect so that every one gets
the same probes, resources and security settings. Called with
(dict "root" $ "component" "redirect" "prefix" "REDIRECT" "args" (list) "env" "snowlink.redirect.env"
"keys" (list "databaseUrl" …)): `keys` names the connections.secretKeys the service reads (as files).
*/}}

{{- define "snowlink.deployment" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .component -}}
{{- $fullname := printf "%s-%s" (include "snowlink.fullname" $root) .component -}}
{{- /*
A stopping pod answers /readyz 503 and serves on for drainDelaySeconds, drains its API (up to 10 s), then runs its
own stopping steps, up to these many seconds (the redirect's final hit write is bounded at 20 s). Kubernetes kills
it at terminationGracePeriodSeconds, so a shorter grace would lose work: refused.
*/}}
{{- $stopping := get (dict "idgen" 5 "shortener" 10 "redirect" 20) .component | int -}}
{{- $needed := add $c.drainDelaySeconds 10 $stopping -}}
{{- if lt (int $c.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must be at least %d: drainDelaySeconds (%d) + 10 s of HTTP drain + %d s of stopping steps" .component (int $c.terminationGracePeriodSeconds) (int $needed) (int $c.drainDelaySeconds) $stopping) }}
{{- end }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "snowlink.componentLabels" . | nindent 4 }}
spec:
  {{- /* The HPA owns the replica count when it is on; a fixed count here would fight it on every upgrade. */}}
  {{- if not $c.autoscaling.enabled }}
  replicas: {{ $c.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "snowlink.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "snowlink.componentLabels" . | nindent 8 }}
      {{- with $c.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
      securityContext:
        {{- include "snowlink.podSecurityContext" $root | nindent 8 }}
      {{- with $root.Values.image.pullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $c.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
        - topologyKey: {{ $key }}
          maxSkew: {{ $c.topologySpread.maxSkew }}
          whenUnsatisfiable: {{ $c.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "snowlink.selectorLabels" $ | nindent 14 }}
        {{- end }}
      {{- end }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "snowlink.image" (dict "root" $root "image" $c.image) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          {{- $args := concat .args $c.extraArgs }}
          {{- with $args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: api
              containerPort: {{ $c.ports.api }}
              protocol: TCP
            - name: admin
              containerPort: {{ $c.ports.admin }}
              protocol: TCP
          env:
            - name: {{ .prefix }}_LISTEN
              value: "0.0.0.0:{{ $c.ports.api }}"
            - name: {{ .prefix }}_ADMIN_LISTEN
              value: "0.0.0.0:{{ $c.ports.admin }}"
            - name: DRAIN_DELAY_MS
              value: {{ mul $c.drainDelaySeconds 1000 | quote }}
            {{- include "snowlink.env.logging" $root | nindent 12 }}
            {{- include "snowlink.env.connections" (dict "root" $root "keys" .keys) | nindent 12 }}
            {{- include .env $root | nindent 12 }}
            {{- with $c.env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $c.envFrom }}
          envFrom:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- /* Startup covers migrations and the first lease/connection; liveness only asks "is the process up". */}}
          startupProbe:
            httpGet:
              path: /healthz
              port: admin
            periodSeconds: 2
            failureThreshold: {{ $c.probes.startupFailureThreshold }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: admin
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: admin
            periodSeconds: {{ $c.probes.readinessPeriodSeconds }}
            timeoutSeconds: 2
            failureThreshold: 2
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- include "snowlink.containerSecurityContext" $root | nindent 12 }}
          {{- include "snowlink.volumeMounts" $root | nindent 10 }}
      {{- include "snowlink.volumes" (dict "root" $root "keys" .keys) | nindent 6 }}
{{- end }}

{{- define "snowlink.services" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .component -}}
{{- $fullname := printf "%s-%s" (include "snowlink.fullname" $root) .component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "snowlink.componentLabels" . | nindent 4 }}
  {{- with $c.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $c.service.type }}
  selector:
    {{- include "snowlink.selectorLabels" . | nindent 4 }}
  ports:
    - name: api
      port: {{ $c.service.port }}
      targetPort: api
      protocol: TCP
---
{{- /* Admin on its own Service so the API Service (and the Ingress) can never expose /metrics. */}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullname }}-admin
  labels:
    {{- include "snowlink.componentLabels" . | nindent 4 }}
    snowlink/metrics: "true"
spec:
  type: ClusterIP
  selector:
    {{- include "snowlink.selectorLabels" . | nindent 4 }}
  ports:
    - name: admin
      port: {{ $c.ports.admin }}
      targetPort: admin
      protocol: TCP
{{- end }}

{{- define "snowlink.hpa" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .component -}}
{{- $fullname := printf "%s-%s" (include "snowlink.fullname" $root) .component -}}
{{- if $c.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "snowlink.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $fullname }}
  minReplicas: {{ $c.autoscaling.minReplicas }}
  maxReplicas: {{ $c.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $c.autoscaling.targetCPUUtilizationPercentage }}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
        - type: Percent
          value: 100
          periodSeconds: 30
    {{- /* Slow scale-down: traffic is bursty and a pod removed too early has a cold local cache when it returns. */}}
    scaleDown:
      stabilizationWindowSeconds: {{ $c.autoscaling.scaleDownStabilizationSeconds }}
      policies:
        - type: Percent
          value: 20
          periodSeconds: 60
{{- end }}
{{- end }}

{{- define "snowlink.pdb" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .component -}}
{{- if $c.pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "snowlink.fullname" $root }}-{{ .component }}
  labels:
    {{- include "snowlink.componentLabels" . | nindent 4 }}
spec:
  {{- if $c.pdb.minAvailable }}
  minAvailable: {{ $c.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $c.pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "snowlink.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/* Everything one service needs, in one document stream. */}}
{{- define "snowlink.component" -}}
{{- $c := index .root.Values .component -}}
{{- if $c.enabled }}
{{ include "snowlink.deployment" . }}
---
{{ include "snowlink.services" . }}
{{- with include "snowlink.hpa" . }}
---
{{ . }}
{{- end }}
{{- with include "snowlink.pdb" . }}
---
{{ . }}
{{- end }}
{{- end }}
{{- end }}
