"""Python client of Sentio, the streaming speech-emotion-recognition gRPC server.

    import sentio_client

    with sentio_client.connect("127.0.0.1:50051") as client:
        print(client.model_info().labels)
        print(client.classify_file("speech.wav").emotion)
        stream = client.stream_wav("speech.wav")
        for p in stream:
            print(p.start_ms, p.end_ms, p.emotion, p.confidence)
        print(stream.summary.dominant_emotion)
        for p in client.watch("call-42"):   # what another client's stream "call-42" gets
            print(p.emotion)

`pb` is the generated message module (sentio.v1), `pb_grpc` the generated service stubs.
"""
from .client import Client, SentioError, Stream, Watch, connect, wav_chunks
from .v1 import emotion_pb2 as pb
from .v1 import emotion_pb2_grpc as pb_grpc

__version__ = "0.1.0"
__all__ = ["Client", "SentioError", "Stream", "Watch", "connect", "pb", "pb_grpc", "wav_chunks"]
