{{/*
The server's settings, as STRATA_* environment variables (every setting has one; see
config/strata.toml). Secrets are referenced, never inlined.
*/}}
{{- define "strata.serverEnv" -}}
- name: STRATA_ADDRESS
  value: ":{{ .Values.server.port }}"
- name: STRATA_REGION
  value: {{ .Values.region | quote }}
{{- with .Values.domain }}
- name: STRATA_DOMAIN
  value: {{ . | quote }}
{{- end }}
- name: STRATA_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
- name: STRATA_LOG_LEVEL
  value: {{ .Values.log.level | quote }}
- name: STRATA_ROOT_USER
  valueFrom:
    secretKeyRef:
      name: {{ include "strata.rootSecret" . }}
      key: rootUser
- name: STRATA_ROOT_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "strata.rootSecret" . }}
      key: rootPassword
{{- if .Values.tls.enabled }}
- name: STRATA_CERTS_DIR
  value: /etc/strata/certs
{{- end }}
{{- $classes := list }}
{{- range .Values.pools }}{{ if .mediaClass }}{{ $classes = append $classes .mediaClass }}{{ end }}{{ end }}
{{- if $classes }}
{{- if ne (len $classes) (len .Values.pools) }}{{ fail "pools: set mediaClass on every pool or on none" }}{{ end }}
- name: STRATA_POOL_CLASSES
  value: {{ join "," $classes | quote }}
{{- end }}
{{- with .Values.storageClasses }}
- name: STRATA_STORAGE_CLASSES
  value: {{ $pairs := list }}{{ range $name, $media := . }}{{ $pairs = append $pairs (printf "%s=%s" $name $media) }}{{ end }}{{ join "," $pairs | quote }}
{{- end }}
- name: STRATA_METRICS_AUTH
  value: {{ .Values.metrics.auth | quote }}
- name: STRATA_CONNECTIONS_MAX
  value: {{ int64 .Values.server.connections.max | quote }}
- name: STRATA_CONNECTIONS_PER_CLIENT_MAX
  value: {{ int64 .Values.server.connections.perClientMax | quote }}
- name: STRATA_CONNECTION_IDLE_TIMEOUT_SECS
  value: {{ int64 .Values.server.connections.idleTimeoutSeconds | quote }}
{{- with .Values.server.memoryBudget }}
- name: STRATA_MEMORY_BUDGET
  value: {{ . | quote }}
{{- end }}
- name: STRATA_LIFECYCLE_INTERVAL_SECONDS
  value: {{ int64 .Values.lifecycle.intervalSeconds | quote }}
- name: STRATA_LIFECYCLE_ACTIONS_PER_SECOND
  value: {{ int64 .Values.lifecycle.actionsPerSecond | quote }}
{{- with .Values.encryption }}
{{- if .autoEncrypt }}
- name: STRATA_SSE_AUTO
  value: "true"
{{- end }}
{{- $kmsCount := 0 }}
{{- if .kms.keyringSecret }}{{ $kmsCount = add1 $kmsCount }}
- name: STRATA_KMS_KEYRING
  value: /etc/strata/kms/keyring.json
{{- end }}
{{- with .kms.vault }}{{ if .endpoint }}{{ $kmsCount = add1 $kmsCount }}
- name: STRATA_KMS_VAULT_ENDPOINT
  value: {{ .endpoint | quote }}
- name: STRATA_KMS_VAULT_MOUNT
  value: {{ .mount | quote }}
- name: STRATA_KMS_VAULT_KEY
  value: {{ .key | quote }}
{{- with .namespace }}
- name: STRATA_KMS_VAULT_NAMESPACE
  value: {{ . | quote }}
{{- end }}
{{- if not .tokenSecret }}{{ fail "encryption.kms.vault.tokenSecret is required with a Vault endpoint" }}{{ end }}
- name: STRATA_KMS_VAULT_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .tokenSecret }}
      key: token
{{- if .caSecret }}
- name: STRATA_KMS_VAULT_CA
  value: /etc/strata/kms-vault/ca.crt
{{- end }}
{{- end }}{{ end }}
{{- with .kms.kmip }}{{ if .address }}{{ $kmsCount = add1 $kmsCount }}
{{- if not .clientSecret }}{{ fail "encryption.kms.kmip.clientSecret is required with a KMIP address" }}{{ end }}
- name: STRATA_KMS_KMIP_ADDRESS
  value: {{ .address | quote }}
- name: STRATA_KMS_KMIP_KEY
  value: {{ .key | quote }}
{{- with .serverName }}
- name: STRATA_KMS_KMIP_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
- name: STRATA_KMS_KMIP_CA
  value: /etc/strata/kms-kmip/ca.crt
- name: STRATA_KMS_KMIP_CERT
  value: /etc/strata/kms-kmip/tls.crt
- name: STRATA_KMS_KMIP_CLIENT_KEY
  value: /etc/strata/kms-kmip/tls.key
{{- end }}{{ end }}
{{- with .kms.kes }}{{ if .endpoint }}{{ $kmsCount = add1 $kmsCount }}
{{- if not .clientSecret }}{{ fail "encryption.kms.kes.clientSecret is required with a KES endpoint" }}{{ end }}
- name: STRATA_KMS_KES_ENDPOINT
  value: {{ .endpoint | quote }}
- name: STRATA_KMS_KES_KEY
  value: {{ .key | quote }}
- name: STRATA_KMS_KES_CA
  value: /etc/strata/kms-kes/ca.crt
- name: STRATA_KMS_KES_CERT
  value: /etc/strata/kms-kes/tls.crt
- name: STRATA_KMS_KES_CLIENT_KEY
  value: /etc/strata/kms-kes/tls.key
{{- end }}{{ end }}
{{- if gt $kmsCount 1 }}{{ fail "encryption.kms: configure at most one KMS" }}{{ end }}
{{- end }}
{{- with .Values.audit.webhook }}{{ if .endpoint }}
- name: STRATA_AUDIT_WEBHOOK_ENDPOINT
  value: {{ .endpoint | quote }}
- name: STRATA_AUDIT_WEBHOOK_BATCH_SIZE
  value: {{ int64 .batchSize | quote }}
{{- with .authTokenSecret }}
- name: STRATA_AUDIT_WEBHOOK_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: token
{{- end }}
{{- end }}{{ end }}
{{- range $name, $value := .Values.server.env }}
- name: {{ $name }}
  {{- /* Helm reads numbers as floats: 1000000 would print as 1e+06. */}}
  value: {{ ternary (int64 $value | toString) (toString $value) (kindIs "float64" $value) | quote }}
{{- end }}
{{- with .Values.server.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Secret volumes: the TLS certificate directory and the KMS material. */}}
{{- define "strata.secretVolumes" -}}
{{- if .Values.tls.enabled }}
- name: certs
  secret:
    secretName: {{ include "strata.tlsSecret" . }}
    defaultMode: 0440
    # Strata's certificate directory layout: public.crt, private.key, CAs/.
    items:
      - key: tls.crt
        path: public.crt
      - key: tls.key
        path: private.key
      {{- if .Values.tls.trustSecretCA }}
      - key: ca.crt
        path: CAs/ca.crt
      {{- end }}
{{- end }}
{{- with .Values.encryption.kms }}
{{- if .keyringSecret }}
- name: kms-keyring
  secret:
    secretName: {{ .keyringSecret }}
    defaultMode: 0440
{{- end }}
{{- if and .vault.endpoint .vault.caSecret }}
- name: kms-vault
  secret:
    secretName: {{ .vault.caSecret }}
    defaultMode: 0440
{{- end }}
{{- if .kmip.address }}
- name: kms-kmip
  secret:
    secretName: {{ .kmip.clientSecret }}
    defaultMode: 0440
{{- end }}
{{- if .kes.endpoint }}
- name: kms-kes
  secret:
    secretName: {{ .kes.clientSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end -}}

{{- define "strata.secretMounts" -}}
{{- if .Values.tls.enabled }}
- name: certs
  mountPath: /etc/strata/certs
  readOnly: true
{{- end }}
{{- with .Values.encryption.kms }}
{{- if .keyringSecret }}
- name: kms-keyring
  mountPath: /etc/strata/kms
  readOnly: true
{{- end }}
{{- if and .vault.endpoint .vault.caSecret }}
- name: kms-vault
  mountPath: /etc/strata/kms-vault
  readOnly: true
{{- end }}
{{- if .kmip.address }}
- name: kms-kmip
  mountPath: /etc/strata/kms-kmip
  readOnly: true
{{- end }}
{{- if .kes.endpoint }}
- name: kms-kes
  mountPath: /etc/strata/kms-kes
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}
