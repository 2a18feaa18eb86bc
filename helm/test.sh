#!/usr/bin/env bash
# Checks the Helm chart offline with the real Helm v4 engine (helm-python-sdk) and the
# Kubernetes OpenAPI schemas (kubernetes-validate). Run from anywhere: bash helm/test.sh
# The venv lives in $VENV, or helm/.venv (git-ignored); it is reused when present.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${VENV:-$here/.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating venv $venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$here/tests/requirements.txt"

exec "$venv/bin/python" "$here/tests/test_chart.py" "$@"
