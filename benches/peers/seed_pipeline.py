"""The reference Python pipeline for the `seed` model, as a notebook user runs it, timed per
clip on one core, and (with --sentio) `sentio classify --model models/seed` timed on the same
clips and compared prediction by prediction.

Per clip, exactly the notebook's steps:
  1. load+resample  `librosa.load(path, sr=22050)` (soundfile decode + soxr_hq resampling)
  2. features       the 162 clip means in seed.rs's order: ZCR 1, chroma_stft(S=|STFT|) 12,
                    MFCC 20, RMS 1, mel power 128 (librosa defaults)
  3. model          sklearn StandardScaler.transform with the card's mean/std, reshape to (1, 162, 1),
                    `model.predict(x)` of a Keras Sequential Conv1D 256-128-128-64 (k=4,
                    "same") / MaxPool1D(4, 2, "same") / Dropout / Flatten / Dense 64 / Dense 8
                    softmax, holding the shipped weights of models/seed/model.safetensors.
                    The eager call `model(x, training=False)` is timed too, separately.

Single thread: OMP/BLAS/numba threads 1, TensorFlow intra-op and inter-op threads 1; run it
under `taskset -c N` (benches/peers/compare_classify.sh does). One warm-up clip goes through
every stage first; then every clip runs --repeats times and each clip's stage times are the
medians over its repeats.

Correctness checks (not timed), reported in the JSON and the table:
  * identical input: the first 2 s of each clip at 22.05 kHz (librosa's samples) written as a
    float WAV and given to `sentio classify` (exactly one 2 s window, no resampling) vs Keras
    on librosa's 162 features of the same samples: tests the weight transfer and the features.
  * sentio's windows: Keras on the 2 s / 1 s-hop windows `sentio classify` cuts (partial tail
    >= 0.5 s, -55 dBFS silence gate), probabilities averaged, vs sentio on the same clip.
  * the headline: the notebook's whole-clip prediction vs `sentio classify`'s.

    benches/peers/.venv/bin/python benches/peers/seed_pipeline.py --sentio target/release/sentio
"""
import os
import time

T_START = time.perf_counter()
import argparse  # noqa: E402

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
            "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "RAYON_NUM_THREADS"):
    os.environ[var] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import glob  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = "/work/shared/data/ser"


def default_clips(corpus):
    """The fixed subset: all 60 clips of RAVDESS Actor_01 and the first 40 CREMA-D clips, each
    list sorted by path (byte order)."""
    ravdess = sorted(glob.glob(os.path.join(corpus, "RAVDESS/Actor_01/*.ogg")))
    crema = sorted(glob.glob(os.path.join(corpus, "CREMA-D/AudioWAV/*.ogg")))[:40]
    return ravdess + crema


# --- the notebook's pipeline --------------------------------------------------------------

def extract_features(data, sample_rate):
    """The 162-value clip vector, as the notebook computes it (seed.rs's order)."""
    result = np.array([])
    zcr = np.mean(librosa.feature.zero_crossing_rate(y=data).T, axis=0)
    result = np.hstack((result, zcr))
    stft = np.abs(librosa.stft(data))
    chroma_stft = np.mean(librosa.feature.chroma_stft(S=stft, sr=sample_rate).T, axis=0)
    result = np.hstack((result, chroma_stft))
    mfcc = np.mean(librosa.feature.mfcc(y=data, sr=sample_rate).T, axis=0)
    result = np.hstack((result, mfcc))
    rms = np.mean(librosa.feature.rms(y=data).T, axis=0)
    result = np.hstack((result, rms))
    mel = np.mean(librosa.feature.melspectrogram(y=data, sr=sample_rate).T, axis=0)
    result = np.hstack((result, mel))
    return result


def read_safetensors(path):
    """A minimal safetensors reader (F32 only): {name: np.ndarray}."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(blob[base + start:base + end], dtype="<f4").reshape(info["shape"])
    return out


def build_model(weights):
    """The seed architecture in Keras, with candle's tensors copied in.

    candle's TemporalConv weight is (out, in, k), applied as a cross-correlation after padding
    1 zero left and 2 right, which is Keras "same" for k=4; Keras Conv1D kernels are
    (k, in, out). candle Linear weights are (out, in); Keras Dense kernels are (in, out).
    seed.rs flattens channels-last (B, T, C) before the dense layer, as Keras's Flatten does,
    so the dense kernel needs no permutation."""
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input(shape=(162, 1)),
        layers.Conv1D(256, kernel_size=4, strides=1, padding="same", activation="relu"),
        layers.MaxPooling1D(pool_size=4, strides=2, padding="same"),
        layers.Conv1D(128, kernel_size=4, strides=1, padding="same", activation="relu"),
        layers.MaxPooling1D(pool_size=4, strides=2, padding="same"),
        layers.Conv1D(128, kernel_size=4, strides=1, padding="same", activation="relu"),
        layers.MaxPooling1D(pool_size=4, strides=2, padding="same"),
        layers.Dropout(0.2),
        layers.Conv1D(64, kernel_size=4, strides=1, padding="same", activation="relu"),
        layers.MaxPooling1D(pool_size=4, strides=2, padding="same"),
        layers.Flatten(),
        layers.Dense(units=64, activation="relu"),
        layers.Dense(units=8, activation="softmax"),
    ])
    convs = [l for l in model.layers if isinstance(l, layers.Conv1D)]
    denses = [l for l in model.layers if isinstance(l, layers.Dense)]
    for i, layer in enumerate(convs):
        w = weights[f"conv{i}.weight"]  # (out, in, k)
        layer.set_weights([np.ascontiguousarray(w.transpose(2, 1, 0)), weights[f"conv{i}.bias"]])
    for layer, name in zip(denses, ["dense", "out"]):
        layer.set_weights([np.ascontiguousarray(weights[f"{name}.weight"].T), weights[f"{name}.bias"]])
    return model


def fitted_scaler(mean, std):
    """sklearn's StandardScaler, as the notebook fitted it, holding the model card's mean/std."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    scaler.mean_ = np.asarray(mean, dtype=np.float64)
    scaler.scale_ = np.asarray(std, dtype=np.float64)
    scaler.var_ = scaler.scale_ ** 2
    scaler.n_features_in_ = len(mean)
    scaler.n_samples_seen_ = 1
    return scaler


# --- sentio's windowing, for the window-level check ---------------------------------------

def sentio_windows(y, sr, card):
    """The windows `sentio classify` cuts (WindowAssembler + the tail rule), as (start, end)."""
    win = card["window_ms"] * sr // 1000
    hop = card["hop_ms"] * sr // 1000
    min_tail = card["min_window_ms"] * sr // 1000
    n = len(y)
    out, start = [], 0
    while start + win <= n:
        out.append((start, start + win))
        start += hop
    covered = (start - hop + win) if out else 0
    remaining = n - start
    if n > covered and remaining > 0 and remaining >= max(min_tail, 1):
        out.append((start, n))
    return out


def is_speech(w, silence_dbfs=-55.0):
    power = float(np.mean(np.square(w.astype(np.float64)))) if len(w) else 0.0
    return 10.0 * np.log10(max(power, 1e-20)) >= silence_dbfs


# --- helpers ------------------------------------------------------------------------------

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def stats_ms(values):
    a = np.asarray(values, dtype=np.float64) * 1000.0
    return {"mean": round(float(a.mean()), 3), "p50": round(float(np.percentile(a, 50)), 3),
            "p90": round(float(np.percentile(a, 90)), 3)}


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_sentio(binary, model_dir, files, env):
    """(wall s, CPU s of the child, its JSON lines)."""
    c0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run([binary, "classify", "--model", model_dir, "--json", *files],
                          env=env, capture_output=True, text=True, check=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    return wall, cpu, [json.loads(line) for line in proc.stdout.splitlines() if line]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clips", nargs="*", help="audio files (default: the fixed corpus subset)")
    ap.add_argument("--corpus", default=CORPUS)
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "models/seed"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sentio", help="sentio binary: also time and compare `sentio classify`")
    ap.add_argument("--out", help="write the JSON here and print the table (default: table on stderr, JSON on stdout)")
    args = ap.parse_args()

    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    clips = args.clips or default_clips(args.corpus)
    card = json.load(open(os.path.join(args.model_dir, "model.json")))
    labels = card["labels"]
    sr = card["features"]["sr"]
    scaler = fitted_scaler(card["normalization"]["mean"], card["normalization"]["std"])
    model = build_model(read_safetensors(os.path.join(args.model_dir, "model.safetensors")))

    def predict(feats):  # what the notebook does: scaler, expand_dims, model.predict
        x = np.expand_dims(scaler.transform(feats.reshape(1, -1)), axis=2)
        return model.predict(x, verbose=0)[0]

    def call(feats):  # the same forward pass without predict()'s per-call data pipeline
        x = np.expand_dims(scaler.transform(feats.reshape(1, -1)), axis=2)
        return model(x, training=False).numpy()[0]

    # Warm-up: numba JIT, FFT plans, TF function tracing.
    for _ in range(2):
        y, _ = librosa.load(clips[0], sr=sr)
        f = extract_features(y, sr)
        predict(f)
        call(f)

    startup_s = time.perf_counter() - T_START  # imports, model build, warm-up

    # Each stage's wall time (perf_counter) and CPU time of the whole process (every thread;
    # with one core, CPU ~= wall unless something else ran on the core).
    n = len(clips)
    stages = ("load", "feat", "pred", "call")
    wall = {k: np.zeros((args.repeats, n)) for k in stages}
    cpu = {k: np.zeros((args.repeats, n)) for k in stages}
    probs = [None] * n
    durations = [0.0] * n
    clock = lambda: (time.perf_counter(), time.process_time())  # noqa: E731
    for r in range(args.repeats):
        for i, path in enumerate(clips):
            c0 = clock()
            y, _ = librosa.load(path, sr=sr)
            c1 = clock()
            feats = extract_features(y, sr)
            c2 = clock()
            p = predict(feats)
            c3 = clock()
            call(feats)
            c4 = clock()
            for k, a, b in zip(stages, (c0, c1, c2, c3), (c1, c2, c3, c4)):
                wall[k][r, i], cpu[k][r, i] = b[0] - a[0], b[1] - a[1]
            probs[i] = p
            durations[i] = len(y) / sr
    med = lambda a: np.median(a, axis=0)  # noqa: E731
    total = med(wall["load"]) + med(wall["feat"]) + med(wall["pred"])
    total_call = med(wall["load"]) + med(wall["feat"]) + med(wall["call"])
    total_cpu = med(cpu["load"]) + med(cpu["feat"]) + med(cpu["pred"])
    total_call_cpu = med(cpu["load"]) + med(cpu["feat"]) + med(cpu["call"])
    keras_result = {
        "startup_s": round(startup_s, 2),
        "load_resample_ms": stats_ms(med(wall["load"])),
        "features_ms": stats_ms(med(wall["feat"])),
        "model_predict_ms": stats_ms(med(wall["pred"])),
        "model_predict_cpu_ms": stats_ms(med(cpu["pred"])),
        "model_call_ms": stats_ms(med(wall["call"])),
        "total_ms": stats_ms(total),
        "total_with_call_ms": stats_ms(total_call),
        "total_cpu_ms": stats_ms(total_cpu),
        "total_with_call_cpu_ms": stats_ms(total_call_cpu),
        "clips_per_s": round(n / float(total.sum()), 2),
        "clips_per_s_with_call": round(n / float(total_call.sum()), 2),
    }
    result = {
        "machine": cpu_model(),
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "librosa": librosa.__version__,
                     "numpy": np.__version__, "soundfile": sf.__version__},
        "clips": {"count": n, "mean_s": round(float(np.mean(durations)), 3),
                  "min_s": round(float(np.min(durations)), 3), "max_s": round(float(np.max(durations)), 3),
                  "first": os.path.relpath(clips[0], args.corpus), "last": os.path.relpath(clips[-1], args.corpus)},
        "repeats": args.repeats,
        "keras_pipeline": keras_result,
    }
    per_clip = [{"file": os.path.relpath(c, args.corpus), "seconds": round(durations[i], 3),
                 "keras": labels[int(np.argmax(probs[i]))],
                 "keras_probs": [round(float(v), 6) for v in probs[i]]} for i, c in enumerate(clips)]

    if args.sentio:
        env = dict(os.environ, RAYON_NUM_THREADS="1")
        with tempfile.TemporaryDirectory() as tmp:
            # Process start-up + model load + decoding a 0.1 s file (no window: "silence"),
            # including Python's fork/exec, which every per-process figure below includes too.
            probe = os.path.join(tmp, "probe.wav")
            sf.write(probe, np.zeros(1600, dtype=np.float32), 16000, subtype="PCM_16")
            run_sentio(args.sentio, args.model_dir, [probe], env)
            probes = np.array([run_sentio(args.sentio, args.model_dir, [probe], env)[:2]
                               for _ in range(max(10, 2 * args.repeats))])
            startup, startup_cpu = np.median(probes, axis=0)
            # One process per clip.
            single = np.zeros((args.repeats, n))
            single_cpu = np.zeros((args.repeats, n))
            for r in range(args.repeats):
                for i, c in enumerate(clips):
                    single[r, i], single_cpu[r, i], _ = run_sentio(args.sentio, args.model_dir, [c], env)
            single, single_cpu = med(single), med(single_cpu)
            # One process for all clips.
            batch_runs = [run_sentio(args.sentio, args.model_dir, clips, env) for _ in range(args.repeats)]
            batch = float(np.median([b[0] for b in batch_runs]))
            batch_cpu = float(np.median([b[1] for b in batch_runs]))
            sentio_out = batch_runs[0][2]

            # Identical-input check: the first 2 s at 22.05 kHz, librosa's samples, both sides.
            same_files, same_feats = [], []
            for i, c in enumerate(clips):
                y, _ = librosa.load(c, sr=sr)
                y = y[: card["window_ms"] * sr // 1000]
                p = os.path.join(tmp, f"clip{i:03d}.wav")
                sf.write(p, y, sr, subtype="FLOAT")
                y2, _ = sf.read(p, dtype="float32")
                same_files.append(p)
                same_feats.append(extract_features(y2, sr))
            same_keras = model.predict(np.expand_dims(scaler.transform(np.stack(same_feats)), 2), verbose=0)
            same_sentio = run_sentio(args.sentio, args.model_dir, same_files, env)[2]

        same_s = np.array([[o["scores"].get(l, 0.0) for l in labels] for o in same_sentio])
        sentio_s = np.array([[o["scores"].get(l, 0.0) for l in labels] if o["scores"] else [0.0] * 8
                             for o in sentio_out])

        # Keras on sentio's windows of librosa's samples.
        win_probs = []
        for i, c in enumerate(clips):
            y, _ = librosa.load(c, sr=sr)
            ws = [y[a:b] for a, b in sentio_windows(y, sr, card)]
            ws = [w for w in ws if is_speech(w)]
            if not ws:
                win_probs.append(np.zeros(8))
                continue
            x = np.expand_dims(scaler.transform(np.stack([extract_features(w, sr) for w in ws])), 2)
            win_probs.append(model.predict(x, verbose=0).mean(axis=0))
        win_probs = np.array(win_probs)
        keras_probs = np.array(probs)

        def agreement(a, b):
            return {"agree": int((a.argmax(1) == b.argmax(1)).sum()), "of": len(a),
                    "rate": round(float((a.argmax(1) == b.argmax(1)).mean()), 4),
                    "max_abs_prob_diff": round(float(np.abs(a - b).max()), 6),
                    "mean_abs_prob_diff": round(float(np.abs(a - b).mean()), 6)}

        for i, o in enumerate(sentio_out):
            per_clip[i]["sentio"] = o["emotion"]
            per_clip[i]["sentio_windows"] = len(o["windows"])
            per_clip[i]["keras_on_sentio_windows"] = labels[int(np.argmax(win_probs[i]))]
            per_clip[i]["sentio_probs"] = [round(float(v), 6) for v in sentio_s[i]]
        result["sentio_classify"] = {
            "startup_ms": round(float(startup) * 1000, 3),
            "startup_cpu_ms": round(float(startup_cpu) * 1000, 3),
            "per_clip_excl_startup_ms": stats_ms(np.maximum(single - startup, 0.0)),
            "per_clip_excl_startup_cpu_ms": stats_ms(np.maximum(single_cpu - startup_cpu, 0.0)),
            "per_clip_process_ms": stats_ms(single),
            "batch_process_s": round(batch, 4),
            "batch_process_cpu_s": round(batch_cpu, 4),
            "batch_per_clip_excl_startup_ms": round(1000 * (batch - startup) / n, 3),
            "batch_per_clip_excl_startup_cpu_ms": round(1000 * (batch_cpu - startup_cpu) / n, 3),
            "clips_per_s_excl_startup": round(n / (batch - startup), 2),
            "clips_per_s_incl_startup": round(n / batch, 2),
        }
        result["agreement"] = {
            "identical_input_2s": agreement(same_keras, same_s),
            "sentio_windows": agreement(win_probs, sentio_s),
            "notebook_whole_clip_vs_sentio": agreement(keras_probs, sentio_s),
        }
    result["per_clip"] = per_clip

    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print_table(result, sys.stdout)
        print(f"JSON: {args.out}")
    else:
        print_table(result, sys.stderr)
        print(json.dumps(result))


def print_table(r, out):
    k = r["keras_pipeline"]
    c = r["clips"]
    print(f"# {c['count']} clips, {c['mean_s']} s mean ({c['min_s']}-{c['max_s']} s), "
          f"{r['repeats']} repeats, per-clip medians; one core", file=out)
    print("| per clip, ms (wall unless CPU) | mean | p50 | p90 |", file=out)
    print("|---|---:|---:|---:|", file=out)
    rows = [("Keras ref: load + resample", k["load_resample_ms"]),
            ("Keras ref: 162 features", k["features_ms"]),
            ("Keras ref: scaler + model.predict", k["model_predict_ms"]),
            ("Keras ref: scaler + model.predict, CPU", k["model_predict_cpu_ms"]),
            ("Keras ref: total", k["total_ms"]),
            ("Keras ref: total, CPU", k["total_cpu_ms"]),
            ("(Keras ref: scaler + model(x) instead of predict)", k["model_call_ms"]),
            ("(Keras ref: total with model(x))", k["total_with_call_ms"])]
    s = r.get("sentio_classify")
    if s:
        rows += [("sentio classify, process per clip, excl. start-up", s["per_clip_excl_startup_ms"]),
                 ("sentio classify, same, CPU", s["per_clip_excl_startup_cpu_ms"]),
                 ("sentio classify, process per clip, incl. start-up", s["per_clip_process_ms"])]
    for name, st in rows:
        print(f"| {name} | {st['mean']:.2f} | {st['p50']:.2f} | {st['p90']:.2f} |", file=out)
    print(f"Keras ref: {k['clips_per_s']} clips/s ({k['clips_per_s_with_call']} with model(x)); "
          f"start-up (imports, model build, warm-up) {k['startup_s']} s", file=out)
    if s:
        print(f"sentio classify, all clips in one process: {s['batch_process_s']} s wall "
              f"({s['batch_process_cpu_s']} s CPU) = {s['batch_per_clip_excl_startup_ms']} ms/clip "
              f"({s['batch_per_clip_excl_startup_cpu_ms']} CPU) excl. start-up "
              f"({s['startup_ms']:.1f} ms wall, {s['startup_cpu_ms']:.1f} CPU, with fork/exec); "
              f"{s['clips_per_s_excl_startup']} clips/s", file=out)
        for name, a in r["agreement"].items():
            print(f"agreement {name}: {a['agree']}/{a['of']} ({100 * a['rate']:.1f}%), max |dp| "
                  f"{a['max_abs_prob_diff']:.4g}, mean |dp| {a['mean_abs_prob_diff']:.4g}", file=out)


if __name__ == "__main__":
    main()
