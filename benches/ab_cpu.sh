#!/usr/bin/env bash
# A/B of two server builds: server and load-generator CPU per stream-second on one call shape,
# the builds alternating, two rounds (BENCHMARKS.md section 5b).
#   bash benches/ab_cpu.sh OLD_BINARY NEW_BINARY    # N=150, SHAPE="--encoding f32le --rate 48000 --chunk-ms 10"
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1; new=$2
N=${N:-150}; SHAPE=${SHAPE:-"--encoding f32le --rate 48000 --chunk-ms 10"}
clip=benches/results/clip_3637ms.wav
[ -f "$clip" ] || python3 benches/worst_clip.py "$clip"
for round in 1 2; do
  for build in old new; do
    binary=$old; [ "$build" = new ] && binary=$new
    grpc=127.0.0.1:50293
    "$binary" serve --grpc-addr $grpc --metrics-addr 127.0.0.1:50294 --max-streams 100000 --log-format json 2>/dev/null &
    server=$!
    sleep 1.5
    # shellcheck disable=SC2086
    ./target/release/sentio-client --addr http://$grpc bench --file "$clip" --server-pid $server --json $SHAPE --streams "$N" --duration 20 > "/tmp/ab-$build-$round.json"
    kill $server; wait $server 2>/dev/null || true
    python3 -c "
import json; d = json.load(open('/tmp/ab-$build-$round.json'))
print('$build round $round: server %.3f ms/stream-s, load generator %.3f, p50 %.1f p99 %.1f ms, lost %d' % (
    d['server_cpu_cores'] * 1000 / $N, d['load_generator_cpu_cores'] * 1000 / $N,
    d['latency_ms']['p50'], d['latency_ms']['p99'], d['lost_windows']))"
  done
done
