"""Streams a WAV file to a Sentio server in real-time-sized chunks and prints the emotion
of every window as it arrives, using only the client generated from proto/.

    bash client/python/generate.sh
    python client/python/stream_wav.py speech.wav --addr 127.0.0.1:50051
"""
import argparse
import os
import sys
import wave

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sentio_api"))
from sentio.v1 import emotion_pb2 as pb  # noqa: E402
from sentio.v1 import emotion_pb2_grpc as rpc  # noqa: E402


def requests(path, chunk_ms):
    with wave.open(path, "rb") as wav:
        if wav.getsampwidth() != 2:
            raise SystemExit("this example sends 16-bit PCM WAV files")
        rate, channels = wav.getframerate(), wav.getnchannels()
        yield pb.StreamEmotionsRequest(config=pb.StreamConfig(
            encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate, channels=channels,
            stream_id=os.path.basename(path)))
        frames = max(1, rate * chunk_ms // 1000)
        while True:
            data = wav.readframes(frames)
            if not data:
                return
            yield pb.StreamEmotionsRequest(audio=data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wav")
    parser.add_argument("--addr", default="127.0.0.1:50051")
    parser.add_argument("--chunk-ms", type=int, default=100)
    args = parser.parse_args()
    with grpc.insecure_channel(args.addr) as channel:
        stub = rpc.EmotionRecognizerStub(channel)
        info = stub.GetModelInfo(pb.GetModelInfoRequest())
        print(f"model {info.model_id} ({info.kind}), labels: {', '.join(info.labels)}")
        windows = 0
        for response in stub.StreamEmotions(requests(args.wav, args.chunk_ms)):
            kind = response.WhichOneof("response")
            if kind == "started":
                print(f"stream {response.started.stream_id} started")
            elif kind == "prediction":
                p = response.prediction
                windows += 1
                print(f"{p.start_ms / 1000:6.2f}-{p.end_ms / 1000:<6.2f} s  {p.emotion:<9} {p.confidence:.2f}")
            else:
                s = response.summary
                print(f"summary: {s.dominant_emotion} over {s.audio_ms / 1000:.1f} s, {s.windows} windows ({s.end_reason})")
        if windows == 0:
            raise SystemExit("no predictions received")


if __name__ == "__main__":
    main()
