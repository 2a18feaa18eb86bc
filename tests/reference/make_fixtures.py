"""Writes the audio fixtures and the librosa reference features that Sentio's parity tests
compare against, frame by frame.

Run it from the repository root in a venv with `tests/reference/requirements.txt`:
    python tests/reference/make_fixtures.py
The outputs are committed (tests/fixtures/*.wav, tests/reference/*.json) together with the
librosa and numpy versions that made them, so `cargo test` needs no Python. CI runs
`python tests/reference/make_fixtures.py --check`, which recomputes every reference from the
committed fixtures and fails if any value moved by more than 1e-5 (relative to the matrix's
peak), so the references stay reproducible without depending on last-bit FFT rounding.
"""
import json
import os
import subprocess
import sys

import librosa
import numpy as np
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")
REF = os.path.join(ROOT, "tests", "reference")


def speech_like(sr, seconds, seed):
    """A voiced, speech-like signal: a gliding harmonic source through three formant-like
    resonances, syllable-rate amplitude modulation, a leading silence and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 120.0 + 90.0 * np.sin(2 * np.pi * 0.7 * t) ** 2
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = np.zeros_like(t)
    for h in range(1, 30):
        freq = h * f0
        gain = sum(np.exp(-0.5 * ((freq - fc) / bw) ** 2) for fc, bw in ((700, 130), (1200, 150), (2600, 250)))
        y += (gain + 0.02) / h * np.sin(h * phase) * (freq < sr / 2)
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t)) ** 1.5
    y = y * envelope / np.max(np.abs(y)) * 0.6
    y += 0.003 * rng.standard_normal(len(t))
    y[: int(0.08 * sr)] = 0.0  # exact digital silence: exercises the top_db floor
    return y


def noise_bursts(sr, seconds, seed):
    """White-noise bursts separated by silence: zero crossings, RMS steps, flat spectra."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    y = 0.3 * rng.standard_normal(n)
    gate = (np.arange(n) // int(0.15 * sr)) % 2 == 0
    return y * gate


def write_wav(name, y, sr):
    path = os.path.join(FIX, name)
    sf.write(path, np.clip(y, -1, 1), sr, subtype="PCM_16")
    return path


def espeak_clip():
    """A short real utterance from espeak-ng, resampled to 16 kHz mono by sox."""
    path = os.path.join(FIX, "speech_16k.wav")
    if not os.path.exists(path):
        raw = os.path.join(FIX, "_espeak.wav")
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", raw,
                        "Why would you do that to me?"], check=True)
        subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", path,
                        "trim", "0", "1.6"], check=True)
        os.remove(raw)
    return path


def features(y, sr, cfg):
    """Every feature family, exactly as librosa computes it, for one configuration."""
    n_fft, hop, center = cfg["n_fft"], cfg["hop_length"], cfg["center"]
    kw = dict(n_fft=n_fft, hop_length=hop, center=center)
    stft = librosa.stft(y, **kw)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=cfg["n_mels"], fmin=cfg["fmin"],
                                         fmax=cfg["fmax"], **kw)
    logmel = librosa.power_to_db(mel, top_db=cfg["top_db"])
    mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=cfg["n_mfcc"])
    mag = np.abs(stft)
    power = mag ** 2
    out = {
        "power": power.tolist() if power.size < 40000 else None,
        "mel": mel.tolist(),
        "logmel": logmel.tolist(),
        "mfcc": mfcc.tolist(),
        "chroma_power": librosa.feature.chroma_stft(S=power, sr=sr).tolist(),
        "tuning_power": float(librosa.estimate_tuning(S=power, sr=sr, bins_per_octave=12)),
        "chroma_magnitude": librosa.feature.chroma_stft(S=mag, sr=sr).tolist(),
        "tuning_magnitude": float(librosa.estimate_tuning(S=mag, sr=sr, bins_per_octave=12)),
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop,
                                                  center=center).tolist(),
        "rms": librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop, center=center).tolist(),
    }
    return out


# librosa's defaults (the seed model's front end) and Sentio's streaming log-mel front end.
LIBROSA_DEFAULTS = dict(n_fft=2048, hop_length=512, n_mels=128, fmin=0.0, fmax=None,
                        n_mfcc=20, top_db=80.0, center=True)
STREAMING_16K = dict(n_fft=512, hop_length=160, n_mels=64, fmin=0.0, fmax=8000.0,
                     n_mfcc=20, top_db=80.0, center=False)

CASES = [
    ("speech_like_22k.wav", LIBROSA_DEFAULTS),
    ("speech_16k.wav", LIBROSA_DEFAULTS),
    ("speech_16k.wav", STREAMING_16K),
    ("speech_like_16k.wav", STREAMING_16K),
    ("noise_bursts_16k.wav", LIBROSA_DEFAULTS),
]


def check():
    worst = 0.0
    for wav, cfg in CASES:
        y, sr = librosa.load(os.path.join(FIX, wav), sr=None)
        name = f"{os.path.splitext(wav)[0]}__nfft{cfg['n_fft']}.json"
        with open(os.path.join(REF, name)) as f:
            committed = json.load(f)["features"]
        fresh = features(y, sr, cfg)
        for key, value in fresh.items():
            if value is None:
                continue
            a, b = np.asarray(value, dtype=np.float64), np.asarray(committed[key], dtype=np.float64)
            scale = max(1e-12, float(np.max(np.abs(b))))
            err = float(np.max(np.abs(a - b))) / scale
            worst = max(worst, err)
            if a.shape != b.shape or err > 1e-5:
                raise SystemExit(f"{name} {key}: recomputed reference differs (relative error {err:.2e})")
    print(f"librosa {librosa.__version__}: all references reproduced (worst relative difference {worst:.1e})")


def main():
    if "--check" in sys.argv:
        return check()
    os.makedirs(FIX, exist_ok=True)
    write_wav("speech_like_22k.wav", speech_like(22050, 1.2, seed=1), 22050)
    write_wav("speech_like_16k.wav", speech_like(16000, 2.3, seed=2), 16000)
    write_wav("noise_bursts_16k.wav", noise_bursts(16000, 0.9, seed=3), 16000)
    espeak_clip()
    for wav, cfg in CASES:
        y, sr = librosa.load(os.path.join(FIX, wav), sr=None)
        ref = {
            "librosa_version": librosa.__version__,
            "numpy_version": np.__version__,
            "fixture": wav,
            "sample_rate": sr,
            "config": cfg,
            "features": features(y, sr, cfg),
        }
        name = f"{os.path.splitext(wav)[0]}__nfft{cfg['n_fft']}.json"
        with open(os.path.join(REF, name), "w") as f:
            json.dump(ref, f)
        print(f"wrote {name}: {len(y)} samples at {sr} Hz", file=sys.stderr)


if __name__ == "__main__":
    main()
