"""sentio-py: calls a Sentio server and prints its answers as JSON lines.

    sentio-py info
    sentio-py classify speech.wav
    sentio-py stream speech.wav --chunk-ms 100
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, List, Optional

from google.protobuf.json_format import MessageToDict

from .client import SentioError, connect


def _print(key: str, message: Any) -> None:
    print(json.dumps({key: MessageToDict(message, preserving_proto_field_name=True)}), flush=True)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="sentio-py", description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default=os.environ.get("SENTIO_ADDR", "127.0.0.1:50051"),
                        help="server host:port (env SENTIO_ADDR; default %(default)s)")
    parser.add_argument("--api-key", default=os.environ.get("SENTIO_API_KEY"), help="API key (env SENTIO_API_KEY)")
    parser.add_argument("--tls", action="store_true", help="use TLS with the system's root certificates")
    parser.add_argument("--ca", help="PEM of the CA that signed the server's certificate (implies --tls)")
    parser.add_argument("--cert", help="client certificate PEM, for mutual TLS (with --key)")
    parser.add_argument("--key", help="client private key PEM")
    parser.add_argument("--server-name", help="name to check the server's certificate against")
    parser.add_argument("--timeout", type=float, default=None, help="deadline of info/classify calls, seconds")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="the served model")
    classify = commands.add_parser("classify", help="classify a whole recording (WAV, AIFF, FLAC, Ogg, MP3)")
    classify.add_argument("file")
    stream = commands.add_parser("stream", help="stream a 16-bit PCM WAV file, one line per window")
    stream.add_argument("wav")
    stream.add_argument("--chunk-ms", type=int, default=100)
    stream.add_argument("--window-ms", type=int, default=0)
    stream.add_argument("--hop-ms", type=int, default=0)
    stream.add_argument("--include-silence", action="store_true")
    args = parser.parse_args(argv)

    try:
        with connect(args.addr, api_key=args.api_key, tls=args.tls, root_certificates=args.ca,
                     client_cert=args.cert, client_key=args.key, server_name=args.server_name,
                     timeout=args.timeout) as client:
            if args.command == "info":
                _print("model_info", client.model_info())
            elif args.command == "classify":
                _print("classify", client.classify_file(args.file))
            else:
                s = client.stream_wav(args.wav, chunk_ms=args.chunk_ms, window_ms=args.window_ms,
                                      hop_ms=args.hop_ms, include_silence=args.include_silence)
                started = False
                for prediction in s:
                    if not started:
                        _print("started", s.started)
                        started = True
                    _print("prediction", prediction)
                if not started and s.started is not None:
                    _print("started", s.started)
                if s.summary is not None:
                    _print("summary", s.summary)
    except SentioError as e:
        sys.exit(f"sentio-py: {e}")


if __name__ == "__main__":
    main()
