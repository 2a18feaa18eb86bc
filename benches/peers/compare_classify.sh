#!/usr/bin/env bash
# BENCHMARKS.md section 2 in one command: whole-clip classification, `sentio classify --model
# models/seed` vs the reference Python pipeline (librosa + Keras, seed_pipeline.py), on the
# same clips, one after the other on the same single core, plus the prediction cross-checks.
#
#   benches/peers/compare_classify.sh                 # core 1; BENCH_CPU=N to pick another
#
# Env: BENCH_CPU (core to pin to, default 1), PEERS_PYTHON (a python with the pins of setup.sh;
# default: benches/peers/.venv, created by setup.sh), SENTIO_BIN (default target/release/sentio,
# built if missing; cargo honours CARGO_BUILD_JOBS), REPEATS (default 5), SER_CORPUS (default
# /work/shared/data/ser), OUT (JSON, default target/bench/seed_pipeline.json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cpu="${BENCH_CPU:-1}"
out="${OUT:-target/bench/seed_pipeline.json}"
if [ -z "${PEERS_PYTHON:-}" ]; then
  benches/peers/setup.sh >&2
  PEERS_PYTHON=benches/peers/.venv/bin/python
fi
sentio="${SENTIO_BIN:-target/release/sentio}"
if [ -z "${SENTIO_BIN:-}" ]; then
  cargo build --release --bin sentio >&2
fi
echo "# $(lscpu | sed -n 's/^Model name: *//p'), pinned to core $cpu; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# tree $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo '+dirty'); $sentio: $("$sentio" --version), built $(date -u -r "$sentio" '+%Y-%m-%d %H:%M UTC')"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c "$cpu" "$PEERS_PYTHON" benches/peers/seed_pipeline.py \
  --corpus "${SER_CORPUS:-/work/shared/data/ser}" --repeats "${REPEATS:-5}" \
  --sentio "$sentio" --out "$out"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
