#!/usr/bin/env bash
# Latency and capacity on real call shapes (BENCHMARKS.md section 6b), each streaming the
# worst-aligned clip there is: the speech fixture trimmed to 3.637 s, a length that is a
# multiple of no chunk, hop or window, looped with each stream's clock running on.
#   contact center: 8 kHz G.711 mu-law in 20 ms frames
#   browser:        48 kHz f32 in 10 ms frames
#   voice assistant: 16 kHz s16 in 100 ms chunks
# For each: 100 streams for 20 s (latency at light load), then a ramp until p99 > 250 ms or a
# window is lost. Server and load generator share this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benches/results
mkdir -p "$out"
cargo build --release -p sentio -p sentio-client >/dev/null
clip="$out/clip_3637ms.wav"
python3 benches/worst_clip.py "$clip"
grpc=127.0.0.1:50093
./target/release/sentio serve --grpc-addr "$grpc" --metrics-addr 127.0.0.1:50094 \
    --max-streams 100000 --log-format json 2>"$out/call-shapes-server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 2
bench() { ./target/release/sentio-client --addr "http://$grpc" bench --file "$clip" --server-pid "$server" --json "$@"; }
start=${START:-400}
step=${STEP:-400}
for shape in "contact-center mulaw 8000 20" "browser f32le 48000 10" "assistant s16le 16000 100"; do
    set -- $shape
    name=$1; shape_args=(--encoding "$2" --rate "$3" --chunk-ms "$4")
    bench "${shape_args[@]}" --streams 100 --duration 20 | tee "$out/call-shape-$name-100.json" | head -c 400; echo
    bench "${shape_args[@]}" --streams "$start" --ramp --ramp-step "$step" --duration 20 \
        --plot "$out/call-shape-$name-ramp.png" | tee "$out/call-shape-$name-ramp.jsonl" | tail -1
done
