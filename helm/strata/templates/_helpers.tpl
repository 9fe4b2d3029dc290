{{/*
Names. Everything the chart creates is named after the release: <fullname>, <fullname>-hl
(the headless Service), <fullname>-<pool> (a pool's StatefulSet and its pods). <fullname> is at
most 39 characters and a pool name at most 12, so a StatefulSet name stays within the 52 that
leave room for its pods' controller-revision-hash label.
*/}}
{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 39 | trimSuffix "-" -}}
{{- else if contains (include "strata.name" .) .Release.Name -}}
{{- .Release.Name | trunc 39 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "strata.name" .) | trunc 39 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "strata.headless" -}}
{{- printf "%s-hl" (include "strata.fullname" .) -}}
{{- end -}}

{{- define "strata.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "strata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "strata.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "strata.rootSecret" -}}
{{- default (printf "%s-root" (include "strata.fullname" .)) .Values.rootCredentials.existingSecret -}}
{{- end -}}

{{- define "strata.tlsSecret" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "strata.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "strata.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{- define "strata.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Servers of every pool together. */}}
{{- define "strata.totalServers" -}}
{{- $n := 0 -}}
{{- range .Values.pools }}{{ $n = add $n (int .servers) }}{{ end -}}
{{- $n -}}
{{- end -}}

{{/* <fullname>-<pool> */}}
{{- define "strata.poolName" -}}
{{- printf "%s-%s" (include "strata.fullname" .root) .pool.name -}}
{{- end -}}

{{/* The DNS suffix of every pod: <headless>.<namespace>.svc.<clusterDomain> */}}
{{- define "strata.podDomain" -}}
{{- printf "%s.%s.svc.%s" (include "strata.headless" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/*
The drive arguments, one per pool, the same on every pod:
  http(s)://<fullname>-<pool>-{0...N-1}.<podDomain>:<port>/data/disk{1...M}
(no ellipsis where N or M is 1: the server's ellipses need two values at least).
*/}}
{{- define "strata.poolArgs" -}}
{{- $root := . -}}
{{- range .Values.pools }}
{{- $pods := ternary "0" (printf "{0...%d}" (sub (int .servers) 1)) (eq (int .servers) 1) }}
{{- $drives := ternary "1" (printf "{1...%d}" (int .drivesPerServer)) (eq (int .drivesPerServer) 1) }}
- {{ printf "%s://%s-%s.%s:%d/data/disk%s" (include "strata.scheme" $root) (include "strata.poolName" (dict "root" $root "pool" .)) $pods (include "strata.podDomain" $root) (int $root.Values.server.port) $drives }}
{{- end }}
{{- end -}}

{{/*
Erasure arithmetic of one pool (the server's own rules, crates/cluster/src/topology.rs and
crates/erasure/src/layout.rs): set size, parity, write quorum, and how many of the pool's pods
may be down at once with every set keeping write quorum. Input: a pool; output: JSON.
*/}}
{{- define "strata.poolQuorum" -}}
{{- $nodes := int .servers -}}
{{- $drives := mul .servers .drivesPerServer | int -}}
{{- $size := 0 -}}
{{- $fallback := 0 -}}
{{- range $s := untilStep 16 1 -1 -}}
{{- if and (eq $size 0) (ge $s 2) (eq (mod $drives $s) 0) -}}
{{- if eq $fallback 0 }}{{ $fallback = $s }}{{ end -}}
{{- if or (le $nodes 1) (eq (mod $s $nodes) 0) (eq (mod $nodes $s) 0) }}{{ $size = $s }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if and (le $nodes 1) (le $drives 16) }}{{ $size = $drives }}{{ end -}}
{{- if eq $size 0 }}{{ $size = $fallback }}{{ end -}}
{{- $parity := 4 -}}
{{- if le $size 3 }}{{ $parity = 1 }}{{ else if le $size 5 }}{{ $parity = 2 }}{{ else if le $size 7 }}{{ $parity = 3 }}{{ end -}}
{{- $data := sub $size $parity | int -}}
{{- $wq := $data -}}
{{- if eq $data $parity }}{{ $wq = add $data 1 | int }}{{ end -}}
{{- /* Drives of one pod in one set: sets are cut from node-interleaved drives. */ -}}
{{- $perNode := 1 -}}
{{- if eq (mod $size $nodes) 0 }}{{ $perNode = div $size $nodes | int }}{{ else if ne (mod $nodes $size) 0 }}{{ $perNode = add (div $size $nodes) 1 | int }}{{ end -}}
{{- $spare := sub $size $wq | int -}}
{{- $podsDown := div $spare $perNode | int -}}
{{- dict "setSize" $size "parity" $parity "writeQuorum" $wq "drivesPerPodPerSet" $perNode "podsDownKeepingQuorum" $podsDown | toJson -}}
{{- end -}}
