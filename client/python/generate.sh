#!/usr/bin/env bash
# Generates the Python client of Sentio's API from proto/ alone (grpcio-tools), into
# client/python/sentio_api/. Usage: bash client/python/generate.sh [python]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${1:-python3}"
out="$here/sentio_api"
mkdir -p "$out"
"$python" -m grpc_tools.protoc -I "$root/proto" --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    "$root/proto/sentio/v1/emotion.proto"
# Make the generated tree importable as packages (sentio_api/sentio/v1/...).
touch "$out/__init__.py" "$out/sentio/__init__.py" "$out/sentio/v1/__init__.py"
echo "generated $(find "$out" -name '*.py' | wc -l) files in $out"
