"""librosa's time for the same 3 s clip and the same parameters as `benches/features.rs`,
one core (OMP/MKL/OpenBLAS/numba threads pinned to 1). Prints one JSON object of medians
in milliseconds.

    python benches/peers/librosa_features.py   (in the tests/reference venv)
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = "1"

import json  # noqa: E402
import timeit  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
y16, _ = librosa.load(os.path.join(ROOT, "tests/fixtures/speech_long_16k.wav"), sr=None)
y22 = librosa.resample(y16, orig_sr=16000, target_sr=22050)[: 3 * 22050]
y16 = y16[: 3 * 16000]
sr = 22050


def seed_vector(y):
    stft = np.abs(librosa.stft(y))
    return np.hstack([
        np.mean(librosa.feature.zero_crossing_rate(y=y).T, axis=0),
        np.mean(librosa.feature.chroma_stft(S=stft, sr=sr).T, axis=0),
        np.mean(librosa.feature.mfcc(y=y, sr=sr).T, axis=0),
        np.mean(librosa.feature.rms(y=y).T, axis=0),
        np.mean(librosa.feature.melspectrogram(y=y, sr=sr).T, axis=0),
    ])


cases = {
    "mel": lambda: librosa.feature.melspectrogram(y=y22, sr=sr),
    "logmel": lambda: librosa.power_to_db(librosa.feature.melspectrogram(y=y22, sr=sr), top_db=80.0),
    "mfcc": lambda: librosa.feature.mfcc(y=y22, sr=sr),
    "chroma": lambda: librosa.feature.chroma_stft(y=y22, sr=sr),
    "zcr": lambda: librosa.feature.zero_crossing_rate(y22),
    "rms": lambda: librosa.feature.rms(y=y22),
    "seed_162_vector": lambda: seed_vector(y22),
    "logmel_16k_512_160_64": lambda: librosa.power_to_db(librosa.feature.melspectrogram(
        y=y16, sr=16000, n_fft=512, hop_length=160, n_mels=64, fmax=8000, center=False), top_db=80.0),
}
result = {"librosa": librosa.__version__, "numpy": np.__version__}
for name, fn in cases.items():
    fn()  # warm up (numba compilation, FFT plans)
    runs = timeit.repeat(fn, number=5, repeat=7)
    result[name] = round(1000 * float(np.median(runs)) / 5, 3)
print(json.dumps(result))
