"""A small client of Sentio's EmotionRecognizer service over the generated stubs."""
from __future__ import annotations

import os
import wave
from typing import IO, Any, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import grpc

from .v1 import emotion_pb2 as pb
from .v1 import emotion_pb2_grpc as pb_grpc

#: A file's path, its bytes, or an open binary file.
Source = Union[str, "os.PathLike[str]", bytes, IO[bytes]]
#: PEM data: a path, the bytes, or the text itself.
Pem = Union[str, "os.PathLike[str]", bytes]


class SentioError(grpc.RpcError):
    """A failed call. Like grpc's own errors, `code()` is the status code (for example
    grpc.StatusCode.UNAUTHENTICATED or INVALID_ARGUMENT) and `details()` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    @classmethod
    def wrap(cls, error: grpc.RpcError) -> "SentioError":
        code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
        details = error.details() if callable(getattr(error, "details", None)) else str(error)
        return cls(code, details or "")


def _enum_value(field: Any, value: Any) -> Any:
    """An enum value from its number, full name or short name ("pcm_s16le", "separate")."""
    if field.enum_type is None or not isinstance(value, str):
        return value
    values = field.enum_type.values_by_name
    prefix = field.enum_type.values[0].name.rsplit("UNSPECIFIED", 1)[0]
    for name in (value.upper(), prefix + value.upper()):
        if name in values:
            return values[name].number
    short = ", ".join(v.name[len(prefix):].lower() for v in field.enum_type.values[1:])
    raise ValueError(f"unknown {field.enum_type.name} {value!r}; one of: {short}")


def _message(cls: Any, **fields: Any) -> Any:
    """cls(**fields), taking enum fields by name too."""
    by_name = cls.DESCRIPTOR.fields_by_name
    unknown = sorted(set(fields) - set(by_name))
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)} (fields: {', '.join(by_name)})")
    return cls(**{k: _enum_value(by_name[k], v) for k, v in fields.items()})


def _read(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "read"):
        return source.read()  # type: ignore[union-attr]
    with open(source, "rb") as f:  # type: ignore[arg-type]
        return f.read()


def _read_pem(pem: Optional[Pem]) -> Optional[bytes]:
    if pem is None or isinstance(pem, bytes):
        return pem
    if isinstance(pem, str) and pem.lstrip().startswith("-----BEGIN"):
        return pem.encode()
    return _read(pem)


class Stream:
    """The server's side of a StreamEmotions call.

    Iterating yields one `WindowPrediction` per analysis window, in window order, as the
    server computes them. `started` (the `StreamStarted` acknowledgement, with the
    configuration in effect) is set before the first prediction, and `summary` (the
    `StreamSummary`, whose `reason` says why the stream ended) once iteration is over.
    A failed call raises `SentioError`; an exception raised by the chunk iterator is
    re-raised here.
    """

    def __init__(self, call: Any, failure: List[BaseException]):
        self._call = call
        self._failure = failure
        self.started: Optional[pb.StreamStarted] = None
        self.summary: Optional[pb.StreamSummary] = None

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> pb.WindowPrediction:
        while True:
            try:
                response = next(self._call)
            except grpc.RpcError as e:
                if self._failure:
                    raise self._failure[0] from e
                raise SentioError.wrap(e) from e
            kind = response.WhichOneof("response")
            if kind == "prediction":
                return response.prediction
            if kind == "started":
                self.started = response.started
            elif kind == "summary":
                self.summary = response.summary

    def cancel(self) -> None:
        """Cancels the call (the server stops reading and computing)."""
        self._call.cancel()


class Watch(Stream):
    """The watcher's side of a WatchStream call: what the sender of the stream `stream_id`
    gets, from the moment the server subscribed the watch.

    Iterating yields the stream's `WindowPrediction`s; `summary` is set once iteration is
    over, after which the watch ends. `started` is set only if the stream started after the
    watch did (a watch may begin before its stream and waits for it). A stream that ends
    without a summary (its sender went away, or the server refused it) raises `SentioError`
    with the sender's status, e.g. grpc.StatusCode.CANCELLED; so does a failed watch
    (UNAUTHENTICATED, INVALID_ARGUMENT) or a watcher that fell behind (DATA_LOSS).
    """

    def __init__(self, call: Any, stream_id: str):
        super().__init__(call, [])
        self.stream_id = stream_id

    def wait_subscribed(self) -> "Watch":
        """Blocks until the server has subscribed the watch (its response headers arrived),
        so that a stream started from now on is seen from its start; returns the watch.
        Raises `SentioError` if the watch has already failed."""
        self._call.initial_metadata()
        if self._call.done() and self._call.code() != grpc.StatusCode.OK:
            raise SentioError(self._call.code(), self._call.details() or "")
        return self


def _requests(config: pb.StreamConfig, chunks: Iterable[bytes], failure: List[BaseException]):
    yield pb.StreamEmotionsRequest(config=config)
    try:
        for chunk in chunks:
            if len(chunk):
                yield pb.StreamEmotionsRequest(audio=bytes(chunk))
    except Exception as e:  # grpc would only log it and cancel the call: hand it to Stream
        failure.append(e)
        raise


def wav_chunks(path: Union[str, "os.PathLike[str]"], chunk_ms: int = 100) -> Tuple[int, int, Iterator[bytes]]:
    """A 16-bit PCM WAV file's sample rate, channels, and its audio in chunk_ms pieces."""
    wav = wave.open(os.fspath(path), "rb")
    if wav.getsampwidth() != 2:
        wav.close()
        raise ValueError(f"{path}: {8 * wav.getsampwidth()}-bit WAV; 16-bit PCM is read here")
    rate, channels = wav.getframerate(), wav.getnchannels()
    frames = max(1, rate * chunk_ms // 1000)

    def chunks() -> Iterator[bytes]:
        with wav:
            while True:
                data = wav.readframes(frames)
                if not data:
                    return
                yield data

    return rate, channels, chunks()


class Client:
    """Calls of the EmotionRecognizer service over a gRPC channel (see `connect`).

    `api_key` is sent as `authorization: Bearer <key>` metadata on every call; `timeout`
    (seconds) is the default deadline of Classify and GetModelInfo calls.
    """

    def __init__(self, channel: grpc.Channel, *, api_key: Optional[str] = None, timeout: Optional[float] = None):
        self.channel = channel
        self.stub = pb_grpc.EmotionRecognizerStub(channel)
        self.timeout = timeout
        self._metadata: Sequence[Tuple[str, str]] = (("authorization", f"Bearer {api_key}"),) if api_key else ()

    def _unary(self, method: Any, request: Any, timeout: Optional[float]) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as e:
            raise SentioError.wrap(e) from e

    def model_info(self, *, timeout: Optional[float] = None) -> pb.ModelInfo:
        """The served model: labels, kind, sample rate, window limits, licence."""
        return self._unary(self.stub.GetModelInfo, pb.GetModelInfoRequest(), timeout)

    def classify_file(self, audio: Source, *, timeout: Optional[float] = None, **fields: Any) -> pb.ClassifyResponse:
        """Classifies a whole recording in a container the server decodes (WAV, AIFF, FLAC,
        Ogg Vorbis, MP3), given as a path, bytes or an open binary file. Further keyword
        arguments are ClassifyRequest fields."""
        return self._unary(self.stub.Classify, _message(pb.ClassifyRequest, audio=_read(audio), **fields), timeout)

    def classify_raw(self, audio: bytes, *, encoding: Union[int, str], sample_rate_hz: int, channels: int = 1,
                     timeout: Optional[float] = None, **fields: Any) -> pb.ClassifyResponse:
        """Classifies raw interleaved samples ("pcm_s16le", "pcm_f32le", "mulaw", "alaw")."""
        request = _message(pb.ClassifyRequest, audio=bytes(audio), encoding=encoding,
                           sample_rate_hz=sample_rate_hz, channels=channels, **fields)
        return self._unary(self.stub.Classify, request, timeout)

    def stream(self, chunks: Iterable[bytes], *, encoding: Union[int, str], sample_rate_hz: int, channels: int = 1,
               window_ms: int = 0, hop_ms: int = 0, stream_id: str = "", include_silence: bool = False,
               resume_at_ms: int = 0, timeout: Optional[float] = None, **fields: Any) -> Stream:
        """Streams audio chunks (bytes of any size, in `encoding`) and returns a `Stream`
        of the predictions. The chunks are read on a gRPC thread as the call goes on, so a
        generator fed by a microphone or a socket works; its end half-closes the stream.
        Zero values take the model's defaults. Further keyword arguments are StreamConfig
        fields (for example `channel_mode="separate"` where the proto has it)."""
        config = _message(pb.StreamConfig, encoding=encoding, sample_rate_hz=sample_rate_hz, channels=channels,
                          window_ms=window_ms, hop_ms=hop_ms, stream_id=stream_id,
                          include_silence=include_silence, resume_at_ms=resume_at_ms, **fields)
        failure: List[BaseException] = []
        call = self.stub.StreamEmotions(_requests(config, chunks, failure), metadata=self._metadata, timeout=timeout)
        return Stream(call, failure)

    def stream_wav(self, path: Union[str, "os.PathLike[str]"], *, chunk_ms: int = 100, **kwargs: Any) -> Stream:
        """Streams a 16-bit PCM WAV file in chunk_ms chunks (as fast as the server reads);
        keyword arguments as for `stream`, stream_id defaulting to the file's name."""
        rate, channels, chunks = wav_chunks(path, chunk_ms)
        kwargs.setdefault("stream_id", os.path.basename(os.fspath(path)))
        return self.stream(chunks, encoding="pcm_s16le", sample_rate_hz=rate, channels=channels, **kwargs)

    def watch(self, stream_id: str, *, timeout: Optional[float] = None) -> Watch:
        """Watches the stream `stream_id` someone else sends (the StreamConfig.stream_id of a
        StreamEmotions call, or `<streamSid>:<track>` of a telephony media stream) and returns
        a `Watch` of its predictions, `summary` set at its end. The watch sees the stream from
        the moment the server subscribed it: call `wait_subscribed()` before starting a
        stream that must be seen whole. `timeout` (seconds) is the watch's deadline; none by
        default, as a watch may wait for its stream."""
        call = self.stub.WatchStream(pb.WatchStreamRequest(stream_id=stream_id), metadata=self._metadata,
                                     timeout=timeout)
        return Watch(call, stream_id)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def connect(addr: str = "127.0.0.1:50051", *, api_key: Optional[str] = None, tls: bool = False,
            root_certificates: Optional[Pem] = None, client_cert: Optional[Pem] = None,
            client_key: Optional[Pem] = None, server_name: Optional[str] = None,
            timeout: Optional[float] = None, options: Sequence[Tuple[str, Any]] = ()) -> Client:
    """Opens a channel to a Sentio server at host:port and returns a `Client`.

    TLS is on with `tls=True` or any certificate argument: `root_certificates` (PEM of the
    CA that signed the server's certificate; the system's roots otherwise), and
    `client_cert` with `client_key` for mutual TLS. `server_name` overrides the name the
    server's certificate is checked against (when connecting by IP address). `api_key`
    is sent with every call (over plaintext too: prefer TLS beyond loopback).
    """
    if (client_cert is None) != (client_key is None):
        raise ValueError("client_cert and client_key go together")
    opts = list(options)
    if server_name:
        opts.append(("grpc.ssl_target_name_override", server_name))
    if tls or root_certificates is not None or client_cert is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=_read_pem(root_certificates),
                                                   private_key=_read_pem(client_key),
                                                   certificate_chain=_read_pem(client_cert))
        channel = grpc.secure_channel(addr, credentials, opts)
    else:
        channel = grpc.insecure_channel(addr, opts)
    return Client(channel, api_key=api_key, timeout=timeout)
