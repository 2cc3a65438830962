{{/* Names and labels. */}}
{{- define "chatgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "chatgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chatgate.labels" -}}
{{ include "chatgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: chatgate
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The selected profile, with a clear error for an unknown one (the schema also rejects it). */}}
{{- define "chatgate.profile" -}}
{{- $p := index .Values.profiles .Values.profile -}}
{{- if not $p -}}
{{- fail (printf "profile %q is unknown: choose one of %s" .Values.profile (keys .Values.profiles | sortAlpha | join ", ")) -}}
{{- end -}}
{{- toYaml $p -}}
{{- end -}}

{{- define "chatgate.image" -}}
{{- $p := include "chatgate.profile" . | fromYaml -}}
{{- $tag := .Values.image.tag | default (printf "%s-%s" .Chart.AppVersion $p.imageTagSuffix) -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{/* Redis: in-cluster StatefulSet or external URL. $db selects the database. */}}
{{- define "chatgate.redisBase" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:6379" (include "chatgate.fullname" .) -}}
{{- else -}}
{{- if not .Values.redis.externalUrl -}}
{{- fail "redis.enabled=false needs redis.externalUrl (e.g. redis://my-redis:6379)" -}}
{{- end -}}
{{- regexReplaceAll "/[0-9]+$" (.Values.redis.externalUrl | trimSuffix "/") "" -}}
{{- end -}}
{{- end -}}

{{- define "chatgate.routerService" -}}
{{- printf "%s-router" (include "chatgate.fullname" .) -}}
{{- end -}}

{{- define "chatgate.secretName" -}}
{{- printf "%s-secrets" (include "chatgate.fullname" .) -}}
{{- end -}}

{{- define "chatgate.apiKeysSecret" -}}
{{- .Values.apiKeys.existingSecret | default (include "chatgate.secretName" .) -}}
{{- end -}}

{{- define "chatgate.dsnSecret" -}}
{{- if and (not .Values.postgres.enabled) .Values.postgres.existingSecret -}}
{{- .Values.postgres.existingSecret -}}
{{- else -}}
{{- include "chatgate.secretName" . -}}
{{- end -}}
{{- end -}}

{{/* Postgres password: values, else the one already in the cluster, else a new random one. */}}
{{- define "chatgate.postgresPassword" -}}
{{- if .Values.postgres.auth.password -}}
{{- .Values.postgres.auth.password -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "chatgate.secretName" .) -}}
{{- if and $existing (index $existing.data "postgres-password") -}}
{{- index $existing.data "postgres-password" | b64dec -}}
{{- else -}}
{{- randAlphaNum 24 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* CHATGATE_* settings shared by the Ray pods and the Celery workers. */}}
{{- define "chatgate.env" -}}
{{- $redis := include "chatgate.redisBase" . -}}
- name: CHATGATE_TEMPLATES__REDIS_URL
  value: {{ printf "%s/0" $redis | quote }}
- name: CHATGATE_TEMPLATES__BUILTIN_FILE
  value: /etc/chatgate/templates/templates.yaml
- name: CHATGATE_QUEUE__BROKER_URL
  value: {{ printf "%s/1" $redis | quote }}
- name: CHATGATE_QUEUE__RESULT_BACKEND
  value: {{ printf "%s/1" $redis | quote }}
- name: CHATGATE_JOBS__ROUTER_URL
  value: {{ printf "http://%s:%d" (include "chatgate.routerService" .) (int .Values.service.port) | quote }}
- name: CHATGATE_QUEUE__WORKER_CONCURRENCY
  value: {{ .Values.jobs.worker.concurrency | quote }}
- name: CHATGATE_AUDIT__ENABLED
  value: {{ .Values.audit.enabled | quote }}
- name: CHATGATE_AUDIT__STORE_TEXT
  value: {{ .Values.audit.storeText | quote }}
{{- if .Values.audit.enabled }}
- name: CHATGATE_AUDIT__DSN
  valueFrom:
    secretKeyRef:
      name: {{ include "chatgate.dsnSecret" . }}
      key: dsn
{{- end }}
- name: CHATGATE_GENERATOR__MODEL
  value: {{ .Values.generator.model | quote }}
- name: CHATGATE_MODERATION__MODEL_DIR
  value: {{ .Values.moderation.modelDir | quote }}
- name: CHATGATE_MODERATION__CATEGORIES_FILE
  value: /etc/chatgate/moderation/categories.yaml
- name: {{ .Values.apiKeys.envVar }}
  valueFrom:
    secretKeyRef:
      name: {{ include "chatgate.apiKeysSecret" . }}
      key: api-keys
- name: RAY_AUTH_MODE
  value: {{ .Values.ray.authMode | quote }}
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
{{- if .Values.ray.throughputOptimized }}
- name: RAY_SERVE_THROUGHPUT_OPTIMIZED
  value: "1"
- name: RAY_SERVE_ENABLE_HA_PROXY
  value: "1"
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* ConfigMap mounts shared by all chatgate containers. */}}
{{- define "chatgate.volumeMounts" -}}
- name: templates
  mountPath: /etc/chatgate/templates
  readOnly: true
- name: moderation-categories
  mountPath: /etc/chatgate/moderation
  readOnly: true
{{- end -}}

{{- define "chatgate.volumes" -}}
- name: templates
  configMap:
    name: {{ include "chatgate.fullname" . }}-templates
- name: moderation-categories
  configMap:
    name: {{ include "chatgate.fullname" . }}-moderation-categories
{{- end -}}

{{/*
Deep merge: returns YAML of $base with $over merged in. Maps merge key by key, everything else
(lists, scalars, including false/0/"") replaces. Sprig's mergeOverwrite ignores false/0 values,
which would silently drop overrides such as enforce_eager: false.
Call: include "chatgate.deepMerge" (list $base $over) | fromYaml
*/}}
{{- define "chatgate.deepMerge" -}}
{{- $base := deepCopy (index . 0 | default dict) -}}
{{- $over := index . 1 | default dict -}}
{{- range $k, $v := $over -}}
{{- $cur := get $base $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $cur) -}}
{{- $_ := set $base $k (include "chatgate.deepMerge" (list $cur $v) | fromYaml) -}}
{{- else -}}
{{- $_ := set $base $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $base -}}
{{- end -}}

{{/*
The Ray Serve config: files/deployments.yaml (a checked copy of the repo's deployments.yaml)
with the profile's overrides, then .Values.serve, merged into the first application.
*/}}
{{- define "chatgate.serveConfig" -}}
{{- $cfg := .Files.Get "files/deployments.yaml" | fromYaml -}}
{{- if or (not $cfg) (hasKey $cfg "Error") -}}
{{- fail "files/deployments.yaml is missing or invalid: run python tools/k8s/sync.py" -}}
{{- end -}}
{{- $p := include "chatgate.profile" . | fromYaml -}}
{{- $apps := list -}}
{{- range $i, $app := $cfg.applications -}}
{{- if eq $i 0 -}}
{{- $args := include "chatgate.deepMerge" (list ($app.args | default dict) $p.serve.args) | fromYaml -}}
{{- $args = include "chatgate.deepMerge" (list $args $.Values.serve.args) | fromYaml -}}
{{- $_ := set $app "args" $args -}}
{{- $overrides := include "chatgate.deepMerge" (list $p.serve.deployments $.Values.serve.deployments) | fromYaml -}}
{{- $known := list -}}
{{- $deps := list -}}
{{- range $d := $app.deployments -}}
{{- $known = append $known $d.name -}}
{{- $deps = append $deps (include "chatgate.deepMerge" (list $d (get $overrides $d.name)) | fromYaml) -}}
{{- end -}}
{{- range $name, $_ := $overrides -}}
{{- if not (has $name $known) -}}
{{- fail (printf "serve.deployments.%s: no Serve deployment of that name in deployments.yaml (known: %s)" $name (join ", " $known)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $app "deployments" $deps -}}
{{- end -}}
{{- $apps = append $apps $app -}}
{{- end -}}
{{- $_ := set $cfg "applications" $apps -}}
{{- toYaml $cfg -}}
{{- end -}}
