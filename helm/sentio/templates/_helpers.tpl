{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "sentio.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: "<release>-<chart>", or the release name when it already contains the chart name.
Truncated to 54 characters so that "<fullname>-headless" still fits in 63.
*/}}
{{- define "sentio.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sentio.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sentio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sentio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "sentio.labels" -}}
helm.sh/chart: {{ include "sentio.chart" . }}
{{ include "sentio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: sentio
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sentio.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sentio.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sentio.headlessName" -}}
{{- printf "%s-headless" (include "sentio.fullname" .) }}
{{- end }}

{{/*
The chart's own NATS server (nats.deploy): its Deployment and Service are "<fullname>-nats",
and its pods carry component "nats", so the server's selectors never pick them up.
*/}}
{{- define "sentio.natsName" -}}
{{- printf "%s-nats" (include "sentio.fullname" .) }}
{{- end }}

{{- define "sentio.natsSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sentio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: nats
{{- end }}

{{- define "sentio.natsLabels" -}}
helm.sh/chart: {{ include "sentio.chart" . }}
{{ include "sentio.natsSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.nats.image.tag | quote }}
app.kubernetes.io/part-of: sentio
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The NATS URL the server gets as SENTIO_NATS_URL: nats.url, or the chart's own NATS Service
with nats.deploy; empty without NATS (WatchStream then sees the local replica's streams only).
*/}}
{{- define "sentio.natsUrl" -}}
{{- if .Values.nats.deploy }}
{{- printf "nats://%s.%s.svc:%d" (include "sentio.natsName" .) .Release.Namespace (int64 .Values.nats.port) }}
{{- else }}
{{- .Values.nats.url }}
{{- end }}
{{- end }}

{{/*
True ("true") when more than one replica may serve calls, so that a WatchStream call can land
on a replica other than the one serving the stream it watches.
*/}}
{{- define "sentio.multiReplica" -}}
{{- if .Values.autoscaling.enabled }}
{{- if gt (int64 .Values.autoscaling.maxReplicas) 1 }}true{{ end }}
{{- else if gt (int64 .Values.replicaCount) 1 }}true{{ end }}
{{- end }}

{{/*
The server image: the CUDA tag on GPU pods; a digest, when given, pins it.
*/}}
{{- define "sentio.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.gpu.enabled }}
{{- $tag = default (printf "%s-cuda" $tag) .Values.image.cudaTag }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The port the kubelet's gRPC probes connect to. They speak plaintext HTTP/2 only, so with TLS
on the gRPC port they use the server's plaintext health-only listener.
*/}}
{{- define "sentio.probePort" -}}
{{- if .Values.tls.enabled }}{{ int64 .Values.probes.tlsHealthPort }}{{ else }}{{ int64 .Values.ports.grpc }}{{ end }}
{{- end }}

{{/*
The --model value: a model directory (model.path in the image, or the mounted volume), or
"builtin:<model.builtin>" for a model built into the binary. The chart always passes it, so
the rendered Deployment states which model, and so which weights' licence, it runs.
*/}}
{{- define "sentio.model" -}}
{{- if ne .Values.model.source "image" }}
{{- .Values.model.mountPath }}
{{- else if .Values.model.path }}
{{- .Values.model.path }}
{{- else }}
{{- printf "builtin:%s" .Values.model.builtin }}
{{- end }}
{{- end }}

{{/*
True ("true") when the server runs a built-in model rather than a model directory.
*/}}
{{- define "sentio.modelIsBuiltin" -}}
{{- if and (eq .Values.model.source "image") (not .Values.model.path) }}true{{ end }}
{{- end }}

{{- define "sentio.apiKeysSecretName" -}}
{{- default (printf "%s-api-keys" (include "sentio.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{/*
Rendered API keys file of a chart-created Secret.
*/}}
{{- define "sentio.apiKeysFile" -}}
{{- range .Values.apiKeys.keys }}
{{ . }}
{{- end }}
{{- end }}

{{/*
Seconds the kubelet waits for the pod to stop: it must outlast the preStop sleep plus the
server's drain, or a rolling update cuts calls that are still being analysed.
*/}}
{{- define "sentio.terminationGracePeriodSeconds" -}}
{{- $needed := add (int64 .Values.preStopSleepSeconds) (int64 .Values.server.drainTimeoutS) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 15 }}
{{- else }}
{{- $grace := int64 .Values.terminationGracePeriodSeconds }}
{{- if le $grace $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + server.drainTimeoutS (%d): the kubelet would kill the server while calls are still draining" $grace $needed) }}
{{- end }}
{{- $grace }}
{{- end }}
{{- end }}

{{/*
Arguments of `sentio serve`, one per line as a YAML list. Its checksum is a pod annotation,
so any change here rolls the pods.
*/}}
{{- define "sentio.args" -}}
- serve
- --grpc-addr=0.0.0.0:{{ int64 .Values.ports.grpc }}
- --metrics-addr=0.0.0.0:{{ int64 .Values.ports.metrics }}
- --device={{ if .Values.gpu.enabled }}{{ .Values.gpu.device }}{{ else }}cpu{{ end }}
- --model={{ include "sentio.model" . }}
- --max-batch-size={{ int64 .Values.server.maxBatchSize }}
- --max-batch-delay-ms={{ .Values.server.maxBatchDelayMs }}
- --queue-capacity={{ int64 .Values.server.queueCapacity }}
- --max-streams={{ int64 .Values.server.maxStreams }}
- --max-windows-in-flight={{ int64 .Values.server.maxWindowsInFlight }}
- --model-threads={{ int64 .Values.server.modelThreads }}
- --max-chunk-bytes={{ int64 .Values.server.maxChunkBytes }}
- --max-stream-duration-s={{ int64 .Values.server.maxStreamDurationS }}
- --idle-timeout-s={{ int64 .Values.server.idleTimeoutS }}
- --drain-timeout-s={{ int64 .Values.server.drainTimeoutS }}
- --log-format={{ .Values.server.logFormat }}
{{- if not (kindIs "invalid" .Values.server.maxConnectionAgeS) }}
- --max-connection-age-s={{ int64 .Values.server.maxConnectionAgeS }}
{{- end }}
{{- if .Values.tls.enabled }}
- --tls-cert={{ .Values.tls.mountPath }}/server/tls.crt
- --tls-key={{ .Values.tls.mountPath }}/server/tls.key
{{- if .Values.tls.clientAuth }}
- --tls-client-ca={{ .Values.tls.mountPath }}/client-ca/ca.crt
{{- end }}
- --health-addr=0.0.0.0:{{ int64 .Values.probes.tlsHealthPort }}
{{- end }}
{{- if .Values.apiKeys.enabled }}
- --api-keys-file={{ .Values.apiKeys.mountPath }}/{{ .Values.apiKeys.secretKey }}
{{- end }}
{{- range .Values.server.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Checks across values that a JSON schema cannot express well; each fails the render with a
message that says what to change.
*/}}
{{- define "sentio.validate" -}}
{{- $ports := list (int64 .Values.ports.grpc) (int64 .Values.ports.metrics) }}
{{- if .Values.tls.enabled }}
{{- $ports = append $ports (int64 .Values.probes.tlsHealthPort) }}
{{- end }}
{{- if .Values.mediaStreams.enabled }}
{{- $ports = append $ports (int64 .Values.mediaStreams.port) }}
{{- end }}
{{- if ne (len $ports) (len (uniq $ports)) }}
{{- fail "ports.grpc, ports.metrics, (with TLS) probes.tlsHealthPort and (with mediaStreams.enabled) mediaStreams.port must all differ" }}
{{- end }}
{{- if and .Values.nats.deploy .Values.nats.url }}
{{- fail (printf "nats.url (%s) and nats.deploy are both set: set nats.url to use an existing NATS server, or nats.deploy=true (and nats.url empty) to have the chart deploy one" .Values.nats.url) }}
{{- end }}
{{- if and .Values.nats.deploy (eq (int64 .Values.nats.port) (int64 .Values.nats.monitorPort)) }}
{{- fail "nats.port and nats.monitorPort must differ" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName: an existing kubernetes.io/tls Secret" }}
{{- end }}
{{- if and .Values.apiKeys.enabled (not .Values.apiKeys.existingSecret) (not .Values.apiKeys.keys) }}
{{- fail "apiKeys.enabled needs apiKeys.existingSecret or apiKeys.keys" }}
{{- end }}
{{- if and (eq .Values.model.source "pvc") (not .Values.model.pvc.claimName) }}
{{- fail "model.source=pvc needs model.pvc.claimName" }}
{{- end }}
{{- if and (eq .Values.model.source "initContainer") (not .Values.model.initContainer.image.repository) }}
{{- fail "model.source=initContainer needs model.initContainer.image.repository" }}
{{- end }}
{{- if and .Values.model.path (ne .Values.model.source "image") }}
{{- fail "model.path applies to model.source=image only; other sources mount the model at model.mountPath" }}
{{- end }}
{{- if and (ne .Values.model.builtin "default") (not (include "sentio.modelIsBuiltin" .)) }}
{{- fail (printf "model.builtin=%s applies only to model.source=image with model.path empty; with model.path or another source the server loads that model directory instead (whose licence is its card's license)" .Values.model.builtin) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (kindIs "invalid" .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.activeStreams.enabled) }}
{{- fail "autoscaling.enabled needs a metric: autoscaling.targetCPUUtilizationPercentage and/or autoscaling.activeStreams.enabled" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int64 .Values.autoscaling.minReplicas) (int64 .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}
