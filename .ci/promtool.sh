#!/usr/bin/env bash
# Lints the live /metrics page with Prometheus's own promtool: a server on loopback, one
# streamed clip so every metric has samples, then `promtool check metrics`. Also checks the
# /healthz and /readyz answers. Usage: .ci/promtool.sh [target dir profile, default debug]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="target/${1:-debug}"
grpc=127.0.0.1:50151
http=127.0.0.1:9564
"$bin/sentio" serve --grpc-addr "$grpc" --metrics-addr "$http" --drain-timeout-s 5 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fsS "http://$http/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://$http/healthz"
curl -fsS "http://$http/readyz"
"$bin/sentio-client" --addr "http://$grpc" stream tests/fixtures/speech_long_16k.wav >/dev/null
page=$(curl -fsS "http://$http/metrics")
grep -q '^sentio_build_info{' <<<"$page"
grep -q '^process_resident_memory_bytes ' <<<"$page"
promtool check metrics <<<"$page"
echo "promtool: /metrics is clean"
