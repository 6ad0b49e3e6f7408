{{/* The chart's name, overridable. */}}
{{- define "unikube-platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: object names and the Service's DNS name. */}}
{{- define "unikube-platform.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "unikube-platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "unikube-platform.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "unikube-platform.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "unikube-platform.selectorLabels" . }}
app.kubernetes.io/version: {{ include "unikube-platform.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: unikube
{{- end }}

{{- define "unikube-platform.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | trunc 63 }}
{{- end }}

{{- define "unikube-platform.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "unikube-platform.tag" .) }}
{{- end }}
{{- end }}

{{- define "unikube-platform.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "unikube-platform.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for the admin token and the secret key. */}}
{{- define "unikube-platform.keysSecretName" -}}
{{- include "unikube-platform.fullname" . }}
{{- end }}

{{- define "unikube-platform.adminTokenSecretName" -}}
{{- .Values.adminToken.existingSecret | default (include "unikube-platform.keysSecretName" .) }}
{{- end }}

{{- define "unikube-platform.adminTokenSecretKey" -}}
{{- if .Values.adminToken.existingSecret }}{{ .Values.adminToken.existingSecretKey }}{{ else }}admin-token{{ end }}
{{- end }}

{{- define "unikube-platform.secretKeySecretName" -}}
{{- .Values.secretKey.existingSecret | default (include "unikube-platform.keysSecretName" .) }}
{{- end }}

{{- define "unikube-platform.secretKeySecretKey" -}}
{{- if .Values.secretKey.existingSecret }}{{ .Values.secretKey.existingSecretKey }}{{ else }}secret-key{{ end }}
{{- end }}

{{/* True ("true") when the chart creates the keys Secret at all. */}}
{{- define "unikube-platform.createKeysSecret" -}}
{{- if or (not .Values.adminToken.existingSecret) (and .Values.secretKey.enabled (not .Values.secretKey.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "unikube-platform.storageSecretName" -}}
{{- .Values.storage.shared.existingSecret | default (printf "%s-storage" (include "unikube-platform.fullname" .)) }}
{{- end }}

{{- define "unikube-platform.embedded" -}}
{{- if eq .Values.storage.mode "embedded" }}true{{ end }}
{{- end }}

{{- define "unikube-platform.scheme" -}}
{{- if .Values.tls.existingSecret }}https{{ else }}http{{ end }}
{{- end }}

{{/*
Rules across several values, which the schema cannot say clearly. Each
failure names the values to set.
*/}}
{{- define "unikube-platform.validate" -}}
{{- /* These checks never print the value: it is a secret. */}}
{{- if and .Values.adminToken.value (lt (len .Values.adminToken.value) 16) }}
{{- fail "adminToken.value is shorter than 16 characters, which the server refuses: use a longer token, or leave it empty to have one generated" }}
{{- end }}
{{- with .Values.secretKey.value }}
{{- if not (or (regexMatch "^[A-Za-z0-9+/_-]{43}=?$" (trim .)) (regexMatch "^[0-9a-fA-F]{64}$" (trim .))) }}
{{- fail "secretKey.value is not 32 bytes as base64 (`openssl rand -base64 32`) or 64 hex digits: set such a key, or leave it empty to have one generated" }}
{{- end }}
{{- end }}
{{- with .Values.storage.shared.database.url }}
{{- if not (regexMatch "^postgres(ql)?://" .) }}
{{- fail "storage.shared.database.url must be a PostgreSQL URL, postgres://user@host:5432/db?sslmode=require (the value is not shown: it may hold a password)" }}
{{- end }}
{{- end }}
{{- with .Values.storage.shared.blobStore.url }}
{{- if not (regexMatch "^s3://[^/?]+" .) }}
{{- fail "storage.shared.blobStore.url must be an S3 bucket URL, s3://bucket[/prefix]?endpoint=https://host&region=...: every replica must see the same chunks" }}
{{- end }}
{{- end }}
{{- if eq .Values.storage.mode "shared" }}
{{- if not .Values.storage.shared.existingSecret }}
{{- if not .Values.storage.shared.database.url }}
{{- fail "storage.mode=shared needs the PostgreSQL database: set storage.shared.database.url (postgres://user@host:5432/db?sslmode=require) or storage.shared.existingSecret (a Secret with the key database-url)" }}
{{- end }}
{{- if not .Values.storage.shared.blobStore.url }}
{{- fail "storage.mode=shared needs the S3 bucket for chunks: set storage.shared.blobStore.url (s3://bucket?endpoint=https://host&region=...) or storage.shared.existingSecret (a Secret with the key blob-store-url)" }}
{{- end }}
{{- if and .Values.storage.shared.blobStore.accessKeyId (not .Values.storage.shared.blobStore.secretAccessKey) }}
{{- fail "storage.shared.blobStore.accessKeyId is set without storage.shared.blobStore.secretAccessKey: set both, or neither to use the pod's IAM role" }}
{{- end }}
{{- if and .Values.storage.shared.blobStore.secretAccessKey (not .Values.storage.shared.blobStore.accessKeyId) }}
{{- fail "storage.shared.blobStore.secretAccessKey is set without storage.shared.blobStore.accessKeyId: set both, or neither to use the pod's IAM role" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) 8080) }}
{{- fail "metrics.port 8080 is the server's own port in the pod: the token-free metrics listener needs a port of its own (e.g. 9090)" }}
{{- end }}
{{- end }}
