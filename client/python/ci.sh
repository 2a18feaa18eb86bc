#!/usr/bin/env bash
# CI check of the Python client: installs client/python (the sentio-ser-client package, its
# stubs generated from proto/ by the build) into a fresh venv, then runs tests/test_live.py
# against the real server binary: streams, watches, Classify, GetModelInfo, API keys, mutual TLS.
#   bash client/python/ci.sh            # server: $SENTIO_BIN, else target/release/sentio
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sentio-py-ci.XXXXXX")"
cleanup() {
    # The test kills its servers; this covers it dying first.
    if [ -f "$work/server.pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/server.pids"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

bin="${SENTIO_BIN:-$root/target/release/sentio}"
if [ -z "${SENTIO_BIN:-}" ] && [ ! -x "$bin" ]; then
    # No release build (.ci/run's `cargo test` builds the debug one): use, or make, that.
    (cd "$root" && cargo build --quiet --bin sentio)
    bin="$root/target/debug/sentio"
fi

"${PYTHON:-python3}" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$here"
# From outside the source tree, so that the installed package is the one imported.
cd "$work"
SENTIO_BIN="$bin" SENTIO_TEST_TMP="$work" "$work/venv/bin/python" "$here/tests/test_live.py"
