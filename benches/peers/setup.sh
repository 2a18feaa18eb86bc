#!/usr/bin/env bash
# Creates benches/peers/.venv for the Python peers of BENCHMARKS.md (seed_pipeline.py,
# librosa_features.py, stream_peer.py): TensorFlow (CPU) + Keras, librosa and soundfile, pinned to the
# versions the published figures were measured with. Idempotent: an existing venv with the
# pins already satisfied is left alone.
#
#   benches/peers/setup.sh            # PYTHON=python3.11 by default (tensorflow-cpu 2.21 wheels: 3.10-3.13)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3.11}"
pins=(
  tensorflow-cpu==2.21.0
  keras==3.15.1
  librosa==0.11.0
  soundfile==0.14.0
  numpy==2.4.6
  scipy==1.17.1
  scikit-learn==1.9.1
  soxr==1.1.0
  numba==0.68.1
  grpcio==1.85.1
  grpcio-tools==1.85.1
)
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if "$venv/bin/python" - "${pins[@]}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  echo "$venv: pins already satisfied"
else
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "${pins[@]}"
fi
"$venv/bin/python" -c 'import tensorflow as tf, keras, librosa, numpy, soundfile; print("tensorflow", tf.__version__, "keras", keras.__version__, "librosa", librosa.__version__, "numpy", numpy.__version__, "soundfile", soundfile.__version__)'
