"""A streaming peer for BENCHMARKS.md section 5c: the seed notebook's pipeline behind Sentio's own
gRPC API, built the way the notebook's authors would build a server.

Python grpc.aio, with stubs generated from the repository's proto/ at start. Per stream: each
chunk is decoded (PCM s16le/f32le, G.711 mu-law/A-law) to float and appended to the stream's
audio; when a chunk completes a window (2 s every 1 s, the seed card's), that window goes
through the notebook's steps: `librosa.resample` to 22.05 kHz (soxr_hq, what `librosa.load`
does), the 162 clip-mean features, its StandardScaler (the card's mean/std), and the Keras
model holding the shipped seed weights (`model(x, training=False)`, the eager call: faster
than `predict` for one input; benches/peers/seed_pipeline.py checks these weights against
Sentio's). Every window is computed in the event loop's thread as its last chunk arrives, one
process, as the notebook runs one clip at a time. No silence gate: the load generator asks
for every window (include_silence).

It answers StreamEmotions (StreamStarted, one WindowPrediction per window with latency_us
measured from the arrival of the chunk holding its last sample, and a StreamSummary at
half-close) and GetModelInfo (the load generator reads the hop from it), so
`sentio-client bench` ramps it exactly as it ramps Sentio:

    benches/peers/.venv/bin/python benches/peers/stream_peer.py --addr 127.0.0.1:50061 &
    target/release/sentio-client --addr http://127.0.0.1:50061 bench --file CLIP --ramp ...
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
            "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import glob  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from seed_pipeline import build_model, extract_features, read_safetensors  # noqa: E402


def load_stubs():
    """Generates the Python stubs of proto/sentio/v1 into a temporary directory and imports them."""
    import grpc_tools
    from grpc_tools import protoc

    proto_root = os.path.join(ROOT, "proto")
    protos = sorted(glob.glob(os.path.join(proto_root, "sentio", "v1", "*.proto")))
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    out = tempfile.mkdtemp(prefix="sentio-peer-stubs-")
    if protoc.main(["grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}",
                    f"--python_out={out}", f"--grpc_python_out={out}", *protos]) != 0:
        raise RuntimeError("protoc failed")
    sys.path.insert(0, out)
    return (importlib.import_module("sentio.v1.emotion_pb2"),
            importlib.import_module("sentio.v1.emotion_pb2_grpc"))


pb, pb_grpc = load_stubs()


def g711_table(alaw):
    """The 256 decoded values of G.711 mu-law or A-law, scaled to [-1, 1] (ITU-T G.711)."""
    out = np.empty(256, dtype=np.float32)
    for code in range(256):
        if alaw:
            c = code ^ 0x55
            exponent, mantissa = (c >> 4) & 7, c & 15
            magnitude = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
            out[code] = (magnitude if c & 0x80 else -magnitude) / 32768.0
        else:
            c = ~code & 0xFF
            exponent, mantissa = (c >> 4) & 7, c & 15
            magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
            out[code] = (-magnitude if c & 0x80 else magnitude) / 32768.0
    return out


MULAW, ALAW = g711_table(False), g711_table(True)


def decode(chunk, encoding):
    if encoding == pb.AUDIO_ENCODING_PCM_S16LE:
        return np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if encoding == pb.AUDIO_ENCODING_PCM_F32LE:
        return np.frombuffer(chunk[: len(chunk) // 4 * 4], dtype="<f4").astype(np.float32)
    table = MULAW if encoding == pb.AUDIO_ENCODING_MULAW else ALAW
    return table[np.frombuffer(chunk, dtype=np.uint8)]


class SeedModel:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "model.json")) as f:
            self.card = json.load(f)
        self.keras = build_model(read_safetensors(os.path.join(model_dir, "model.safetensors")))
        norm = self.card["normalization"]
        self.mean = np.asarray(norm["mean"], dtype=np.float64)
        self.std = np.asarray(norm["std"], dtype=np.float64)
        self.sr = self.card["features"]["sr"]
        self.labels = self.card["labels"]

    def predict(self, window, rate):
        """The notebook's steps on one window of float samples at `rate`."""
        y = librosa.resample(window, orig_sr=rate, target_sr=self.sr) if rate != self.sr else window
        x = (extract_features(y, self.sr) - self.mean) / self.std  # StandardScaler.transform
        probs = self.keras(x.reshape(1, -1, 1).astype(np.float32), training=False)
        return np.asarray(probs)[0]


class Peer(pb_grpc.EmotionRecognizerServicer):
    def __init__(self, model):
        self.model = model
        self.streams = 0

    async def GetModelInfo(self, request, context):
        card = self.model.card
        return pb.ModelInfo(model_id=card["id"] + "-python-peer", labels=self.model.labels,
                            sample_rate_hz=self.model.sr, default_window_ms=card["window_ms"],
                            default_hop_ms=card["hop_ms"], min_window_ms=card["window_ms"],
                            max_window_ms=card["window_ms"], version="peer")

    async def StreamEmotions(self, request_iterator, context):
        card, labels = self.model.card, self.model.labels
        config = None
        audio = np.zeros(0, dtype=np.float32)
        index, windows, sums = 0, 0, np.zeros(len(labels))
        async for request in request_iterator:
            if config is None:
                if request.WhichOneof("request") != "config":
                    await context.abort(3, "the first message must be the config")  # INVALID_ARGUMENT
                config = request.config
                rate = config.sample_rate_hz
                win, hop = card["window_ms"] * rate // 1000, card["hop_ms"] * rate // 1000
                self.streams += 1
                yield pb.StreamEmotionsResponse(started=pb.StreamStarted(
                    stream_id=f"peer-{self.streams}", model_id=card["id"], config=config,
                    model_sample_rate_hz=self.model.sr))
                continue
            arrived = time.perf_counter()
            audio = np.concatenate([audio, decode(request.audio, config.encoding)])
            # Every window this chunk completed; audio before the next window's start is dropped.
            while len(audio) >= win:
                probs = self.model.predict(audio[:win], rate)
                best = int(np.argmax(probs))
                start_ms = index * card["hop_ms"]
                yield pb.StreamEmotionsResponse(prediction=pb.WindowPrediction(
                    window_index=index, start_ms=start_ms, end_ms=start_ms + card["window_ms"],
                    scores=[pb.EmotionScore(emotion=l, probability=float(p)) for l, p in zip(labels, probs)],
                    emotion=labels[best], confidence=float(probs[best]), speech=True,
                    latency_us=int((time.perf_counter() - arrived) * 1e6)))
                sums += probs
                index, windows = index + 1, windows + 1
                audio = audio[hop:]
        if config is None:
            return
        yield pb.StreamEmotionsResponse(summary=pb.StreamSummary(
            audio_ms=int((index * hop + len(audio)) * 1000 // max(rate, 1)), windows=windows,
            speech_windows=windows, dominant_emotion=labels[int(np.argmax(sums))] if windows else "",
            end_reason="completed", reason=pb.END_REASON_COMPLETED))


async def serve(addr, model_dir):
    import grpc

    model = SeedModel(model_dir)
    model.predict(np.zeros(2 * model.sr, dtype=np.float32) + 1e-3, 16_000)  # warm-up
    server = grpc.aio.server(options=[("grpc.max_concurrent_streams", 100_000)])
    pb_grpc.add_EmotionRecognizerServicer_to_server(Peer(model), server)
    server.add_insecure_port(addr)
    await server.start()
    print(f"python peer serving {model.card['id']} on {addr}", flush=True)
    await server.wait_for_termination()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addr", default="127.0.0.1:50061")
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "seed"))
    args = parser.parse_args()
    asyncio.run(serve(args.addr, args.model))


if __name__ == "__main__":
    main()
