#!/usr/bin/env bash
# Sentio against its streaming peer (benches/peers/stream_peer.py: Python grpc.aio, librosa
# features and the Keras seed model per window, same proto), ramped by the same load generator
# in one run, on each call shape of benches/call_shapes.sh with its worst-aligned 3.637 s clip
# (BENCHMARKS.md section 5c). Each ramp steps up until p99 > 250 ms or a lost window; the ratio
# of streams held is the figure to quote. Server and load generator share this machine's cores.
#
#   bash benches/peer_ramp.sh        # about 20 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
out=benches/results
mkdir -p "$out"
bash benches/peers/setup.sh >/dev/null
cargo build --release -p sentio -p sentio-client >/dev/null
clip="$out/clip_3637ms.wav"
python3 benches/worst_clip.py "$clip"
sentio_addr=127.0.0.1:50095
peer_addr=127.0.0.1:50097
./target/release/sentio serve --grpc-addr "$sentio_addr" --metrics-addr 127.0.0.1:50096 \
    --max-streams 100000 --log-format json 2>"$out/peer-ramp-sentio.log" &
sentio=$!
benches/peers/.venv/bin/python benches/peers/stream_peer.py --addr "$peer_addr" \
    >"$out/peer-ramp-python.log" 2>&1 &
peer=$!
trap 'kill $sentio $peer 2>/dev/null || true' EXIT
# The peer imports TensorFlow and warms its model up before it listens.
for _ in $(seq 120); do grep -q "python peer serving" "$out/peer-ramp-python.log" && break; sleep 1; done
ramp() { # address, server pid, first step (= step), shape args...
    local addr=$1 pid=$2 step=$3; shift 3
    ./target/release/sentio-client --addr "http://$addr" bench --file "$clip" --server-pid "$pid" \
        --json --ramp --streams "$step" --ramp-step "$step" --duration 20 "$@"
}
for shape in "contact-center mulaw 8000 20" "browser f32le 48000 10" "assistant s16le 16000 100"; do
    set -- $shape
    name=$1; shape_args=(--encoding "$2" --rate "$3" --chunk-ms "$4")
    ramp "$peer_addr" "$peer" "${PEER_STEP:-4}" "${shape_args[@]}" \
        | tee "$out/peer-ramp-$name-python.jsonl" | tail -1 | head -c 300; echo
    ramp "$sentio_addr" "$sentio" "${SENTIO_STEP:-200}" "${shape_args[@]}" \
        | tee "$out/peer-ramp-$name-sentio.jsonl" | tail -1 | head -c 300; echo
done
