{{/* Names, labels and the computed values every template shares. */}}

{{- define "executor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "executor.fullname" -}}
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

{{- define "executor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "executor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "executor.labels" -}}
{{ include "executor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: executor
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "executor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "executor.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the token: the user's, or the one this chart makes. */}}
{{- define "executor.secretName" -}}
{{- default (include "executor.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/* Where the job pods go (and the Role is): jobs.namespace, else the release's. */}}
{{- define "executor.jobNamespace" -}}
{{- default .Release.Namespace .Values.jobs.namespace -}}
{{- end -}}

{{/* The token file inside the pod (EXECUTOR_FRONTEND_PASSWORD_FILE). */}}
{{- define "executor.tokenPath" -}}
/run/secrets/executor/token
{{- end -}}

{{/*
Seconds in a Go duration made of whole hours, minutes and seconds ("30m", "1h30m", "90s", "0").
Anything else (fractions, ms) is refused: the grace period is computed from it.
*/}}
{{- define "executor.durationSeconds" -}}
{{- $d := toString . -}}
{{- if not (regexMatch "^(0|([0-9]+h)?([0-9]+m)?([0-9]+s)?)$" $d) -}}
{{- fail (printf "maximumRuntimePerJob %q: want whole hours, minutes and seconds, such as 30m or 1h30m" $d) -}}
{{- end -}}
{{- $h := regexFind "[0-9]+h" $d | trimSuffix "h" | default "0" | atoi -}}
{{- $m := regexFind "[0-9]+m" $d | trimSuffix "m" | default "0" | atoi -}}
{{- $s := regexFind "[0-9]+s" $d | trimSuffix "s" | default "0" | atoi -}}
{{- add (mul $h 3600) (mul $m 60) $s -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: the drain (each running job bounded by maximumRuntimePerJob)
plus a margin, or the value given, which must not be shorter than maximumRuntimePerJob. With no
per-job deadline (0) the drain has no bound: then the value must be given.
*/}}
{{- define "executor.terminationGrace" -}}
{{- $runtime := include "executor.durationSeconds" .Values.maximumRuntimePerJob | atoi -}}
{{- $given := .Values.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $given -}}
{{- if eq $runtime 0 -}}
{{- fail "maximumRuntimePerJob is 0 (no per-job deadline): set terminationGracePeriodSeconds to how long a drain may take" -}}
{{- end -}}
{{- add $runtime (int .Values.drainMarginSeconds) -}}
{{- else -}}
{{- if lt (int $given) $runtime -}}
{{- fail (printf "terminationGracePeriodSeconds %d is shorter than maximumRuntimePerJob (%d s): Kubernetes would kill the executor while it drains" (int $given) $runtime) -}}
{{- end -}}
{{- int $given -}}
{{- end -}}
{{- end -}}

{{/*
The Role's rules. First exactly Sourcegraph's (kubernetes.md §1;
SPS:cmd/executor/kubernetes/batches/executor-batches.Role.yml): Jobs created and deleted, their
pods and logs read and watched, the per-job token Secret created and deleted;
persistentvolumeclaims only for the pvc job volume. Then, with rbac.janitor, what only this
executor does (executor/runtime/kubernetes/access.py, `required_permissions`): `get` (is it gone?)
and `list` (the janitor's sweep for leftovers of a killed executor) on the same resources.
*/}}
{{- define "executor.rbacRules" -}}
{{- $extra := ternary (list "get" "list") (list) (.Values.rbac.janitor | default false) -}}
{{- $owned := concat (list "create" "delete") $extra -}}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: {{ toJson $owned }}
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: {{ toJson $owned }}
{{- if eq .Values.jobs.volumeType "pvc" }}
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: {{ toJson $owned }}
{{- end }}
{{- end -}}

{{/* Refuse values that cannot work, naming the value. */}}
{{- define "executor.validate" -}}
{{- if not .Values.frontendUrl -}}
{{- fail "frontendUrl is required (EXECUTOR_FRONTEND_URL, the Sourcegraph instance's URL)" -}}
{{- end -}}
{{- if and (not .Values.existingSecret) (not .Values.frontendPassword) -}}
{{- fail "frontendPassword or existingSecret is required (site config executors.accessToken)" -}}
{{- end -}}
{{- if eq (len (compact (concat (list .Values.queueName) .Values.queueNames))) 0 -}}
{{- fail "queueName or queueNames is required (batches, codeintel)" -}}
{{- end -}}
{{- if and .Values.queueName .Values.queueNames -}}
{{- fail "set queueName or queueNames, not both" -}}
{{- end -}}
{{- if not (has .Values.jobs.volumeType (list "emptyDir" "pvc")) -}}
{{- fail (printf "jobs.volumeType %q: want emptyDir or pvc" .Values.jobs.volumeType) -}}
{{- end -}}
{{- range $key, $_ := .Values.env -}}
{{- if has $key (list "EXECUTOR_FRONTEND_PASSWORD" "EXECUTOR_FRONTEND_PASSWORD_FILE") -}}
{{- fail (printf "env.%s: the token goes in frontendPassword or existingSecret, never in the ConfigMap" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
