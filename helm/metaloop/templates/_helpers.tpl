{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "metaloop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "metaloop.fullname" -}}
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

{{- define "metaloop.coordinator.fullname" -}}
{{- printf "%s-coordinator" (include "metaloop.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "metaloop.worker.fullname" -}}
{{- printf "%s-worker" (include "metaloop.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "metaloop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "metaloop.labels" -}}
helm.sh/chart: {{ include "metaloop.chart" . }}
{{ include "metaloop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: metaloop
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "metaloop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "metaloop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "worker") */}}
{{- define "metaloop.componentSelectorLabels" -}}
{{ include "metaloop.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "metaloop.annotations" -}}
{{- with .Values.commonAnnotations -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "metaloop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "metaloop.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference: (dict "ctx" $ "image" .Values.image.worker) */}}
{{- define "metaloop.image" -}}
{{- $reg := .ctx.Values.image.registry -}}
{{- $ref := .image.repository -}}
{{- if $reg }}{{ $ref = printf "%s/%s" $reg $ref }}{{ end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the NATS credentials. */}}
{{- define "metaloop.authSecretName" -}}
{{- default (printf "%s-nats-auth" (include "metaloop.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/* NATS URL: the subchart's client Service or externalNats.url. */}}
{{- define "metaloop.natsUrl" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s-nats.%s.svc:4222" .Release.Name .Release.Namespace -}}
{{- else -}}
{{- required "externalNats.url is required when nats.enabled=false (e.g. nats://nats.infra:4222)" .Values.externalNats.url -}}
{{- end -}}
{{- end -}}

{{/*
Environment shared by coordinator and workers: (dict "ctx" $ "role" "coordinator"|"worker").
*/}}
{{- define "metaloop.natsEnv" -}}
{{- $v := .ctx.Values -}}
- name: METALOOP_NATS_URL
  value: {{ include "metaloop.natsUrl" .ctx | quote }}
- name: METALOOP_PREFIX
  value: {{ $v.subjectPrefix | quote }}
- name: METALOOP_LOG_LEVEL
  value: {{ $v.logLevel | quote }}
{{- if eq $v.auth.mode "userPassword" }}
- name: METALOOP_NATS_USER
  value: {{ ternary $v.auth.coordinatorUser $v.auth.workerUser (eq .role "coordinator") | quote }}
- name: METALOOP_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "metaloop.authSecretName" .ctx }}
      key: {{ ternary $v.auth.keys.coordinatorPassword $v.auth.keys.workerPassword (eq .role "coordinator") }}
{{- else if eq $v.auth.mode "token" }}
- name: METALOOP_NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "metaloop.authSecretName" .ctx }}
      key: {{ $v.auth.keys.token }}
{{- else if eq $v.auth.mode "creds" }}
- name: METALOOP_NATS_CREDS
  value: /etc/metaloop/nats-creds/{{ .role }}.creds
{{- end }}
{{- if $v.tls.enabled }}
- name: METALOOP_NATS_TLS_CA
  value: /etc/metaloop/nats-tls/ca.crt
{{- if and $v.tls.certKey $v.tls.keyKey }}
- name: METALOOP_NATS_TLS_CERT
  value: /etc/metaloop/nats-tls/tls.crt
- name: METALOOP_NATS_TLS_KEY
  value: /etc/metaloop/nats-tls/tls.key
{{- end }}
{{- end }}
{{- end -}}

{{/* Volumes for creds files and TLS: (dict "ctx" $ "role" ...) */}}
{{- define "metaloop.natsVolumes" -}}
{{- $v := .ctx.Values -}}
{{- if eq $v.auth.mode "creds" }}
- name: nats-creds
  secret:
    secretName: {{ include "metaloop.authSecretName" .ctx }}
    defaultMode: 0440
    items:
      - key: {{ ternary $v.auth.keys.coordinatorCreds $v.auth.keys.workerCreds (eq .role "coordinator") }}
        path: {{ .role }}.creds
{{- end }}
{{- if $v.tls.enabled }}
- name: nats-tls
  secret:
    secretName: {{ required "tls.existingSecret is required when tls.enabled=true" $v.tls.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.tls.caKey }}
        path: ca.crt
      {{- if and $v.tls.certKey $v.tls.keyKey }}
      - key: {{ $v.tls.certKey }}
        path: tls.crt
      - key: {{ $v.tls.keyKey }}
        path: tls.key
      {{- end }}
{{- end }}
{{- end -}}

{{- define "metaloop.natsVolumeMounts" -}}
{{- $v := .ctx.Values -}}
{{- if eq $v.auth.mode "creds" }}
- name: nats-creds
  mountPath: /etc/metaloop/nats-creds
  readOnly: true
{{- end }}
{{- if $v.tls.enabled }}
- name: nats-tls
  mountPath: /etc/metaloop/nats-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Health probes on a metrics port. */}}
{{- define "metaloop.probes" -}}
livenessProbe:
  httpGet: { path: /healthz, port: metrics }
  periodSeconds: 15
  timeoutSeconds: 5
  failureThreshold: 4
readinessProbe:
  httpGet: { path: /readyz, port: metrics }
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* A Kubernetes quantity (4Gi, 512Mi, 1G, 1000) as bytes, for CUDA_CACHE_MAXSIZE. */}}
{{- define "metaloop.bytes" -}}
{{- $q := toString . -}}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "K" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- $num := regexFind "^[0-9]+" $q -}}
{{- $unit := trimPrefix $num $q -}}
{{- if not $num -}}{{- fail (printf "worker.cudaCache.sizeLimit %q is not a quantity like 4Gi" $q) -}}{{- end -}}
{{- if $unit -}}
{{- if not (hasKey $units $unit) -}}{{- fail (printf "worker.cudaCache.sizeLimit %q: unknown unit %q (use Ki, Mi, Gi, Ti, k, M, G, T)" $q $unit) -}}{{- end -}}
{{- mul (int64 $num) (get $units $unit) -}}
{{- else -}}
{{- $num -}}
{{- end -}}
{{- end -}}

{{/*
Checksum on the pods of what the auth Secret is made from, so they roll when it changes. Not of the
rendered Secret: on the first install `lookup` finds no Secret, so each rendering of secret.yaml draws
new random passwords and the pods' checksum would differ from the next upgrade's, rolling every pod on
the first `helm upgrade` whatever it changed (seen on a real API server, test/src/helm/chart-cluster.test.ts).
Generated passwords never change once made; passwords given in the values do change this checksum.
*/}}
{{- define "metaloop.authChecksum" -}}
{{- toJson .Values.auth | sha256sum -}}
{{- end -}}
