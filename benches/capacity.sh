#!/usr/bin/env bash
# Streaming capacity, memory and soak on this machine, with the release binaries: starts a
# server on loopback ports, records its idle memory, runs the load generator at 100, 500 and
# 1000 real-time streams, ramps until p99 > 250 ms or a lost window, then (with --soak N) holds
# N streams for 30 minutes. Results (JSON lines and PNGs) go to benches/results/.
#
#   bash benches/capacity.sh                 # memory points + ramp (about 12 minutes)
#   bash benches/capacity.sh --soak 2000     # then a 30-minute soak at 2,000 streams
set -euo pipefail
cd "$(dirname "$0")/.."
soak=""
[ "${1:-}" = "--soak" ] && soak="${2:?streams}"
out=benches/results
mkdir -p "$out"
cargo build --release -p sentio -p sentio-client >/dev/null
clip=tests/fixtures/speech_long_16k.wav
grpc=127.0.0.1:50091
# --max-streams far above the default (2,000), so the ramp finds the machine's limit, not
# the admission limit.
./target/release/sentio serve --grpc-addr "$grpc" --metrics-addr 127.0.0.1:50092 \
    --max-streams 100000 --log-format json 2>"$out/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 2
client() { ./target/release/sentio-client --addr "http://$grpc" bench --file "$clip" --server-pid "$server" "$@"; }
rss() { awk '/VmRSS/ {print $2/1024}' "/proc/$server/status"; }
echo "{\"idle_rss_mib\": $(rss)}" | tee "$out/memory.jsonl"
for n in 100 500 1000; do
    client --streams "$n" --duration 30 --json | tee -a "$out/memory.jsonl" | head -c 300; echo
done
client --streams 1000 --ramp --ramp-step 200 --duration 30 --json --plot "$out/ramp.png" \
    | tee "$out/ramp.jsonl" | tail -1
if [ -n "$soak" ]; then
    client --streams "$soak" --duration 1800 --interval 30 --json --plot "$out/soak.png" \
        | tee "$out/soak.jsonl" | head -c 600; echo
fi
