"""Streams a WAV file to a Sentio server and prints the emotion of every window as it arrives.

    pip install ./client/python          # or: bash client/python/generate.sh
    python client/python/stream_wav.py speech.wav --addr 127.0.0.1:50051
"""
import argparse

import sentio_client


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wav")
    parser.add_argument("--addr", default="127.0.0.1:50051")
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--api-key")
    args = parser.parse_args()
    with sentio_client.connect(args.addr, api_key=args.api_key) as client:
        info = client.model_info()
        print(f"model {info.model_id} ({info.kind}), labels: {', '.join(info.labels)}")
        stream = client.stream_wav(args.wav, chunk_ms=args.chunk_ms)
        for p in stream:
            print(f"{p.start_ms / 1000:6.2f}-{p.end_ms / 1000:<6.2f} s  {p.emotion:<9} {p.confidence:.2f}")
        s = stream.summary
        print(f"summary: {s.dominant_emotion} over {s.audio_ms / 1000:.1f} s, {s.windows} windows "
              f"({sentio_client.pb.EndReason.Name(s.reason)})")


if __name__ == "__main__":
    main()
