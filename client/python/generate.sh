#!/usr/bin/env bash
# Generates the gRPC stubs of the Python client from proto/ into client/python/sentio_client/v1/
# (the package build does this too). Needs grpcio-tools: pip install -r requirements.txt
# Usage: bash client/python/generate.sh [python]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"${1:-python3}" "$here/generate.py"
