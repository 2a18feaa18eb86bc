#!/usr/bin/env bash
# CI check: generate the Python client from proto/ and stream a real WAV through a real
# server on loopback with it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
bash "$here/generate.sh" "$venv/bin/python"

cd "$root"
cargo build --quiet --bin sentio
./target/debug/sentio serve --grpc-addr 127.0.0.1:50151 --metrics-addr 127.0.0.1:9565 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    "$venv/bin/python" - <<'PY' && break
import grpc, sys
try:
    grpc.channel_ready_future(grpc.insecure_channel("127.0.0.1:50151")).result(timeout=1)
except grpc.FutureTimeoutError:
    sys.exit(1)
PY
    sleep 0.5
done
"$venv/bin/python" "$here/stream_wav.py" tests/fixtures/speech_long_16k.wav --addr 127.0.0.1:50151
