"""Runs the installed sentio_client (and its sentio-py command) against real `sentio serve`
processes on loopback: streams, watches, Classify, GetModelInfo, API keys and mutual TLS.

    SENTIO_BIN=target/release/sentio python client/python/tests/test_live.py

Servers listen on port 0 and are found through their JSON log; their pids are appended to
$SENTIO_TEST_TMP/server.pids so that ci.sh can kill them whatever happens here.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import grpc

import sentio_client
from sentio_client import SentioError, pb

ROOT = Path(__file__).resolve().parents[3]
BIN = os.environ.get("SENTIO_BIN") or str(ROOT / "target" / "release" / "sentio")
FIXTURES = ROOT / "tests" / "fixtures"
LONG = FIXTURES / "speech_long_16k.wav"  # 6.5 s, 16 kHz mono
SHORT = FIXTURES / "speech_16k.wav"  # 1.6 s
TMP = Path(os.environ.get("SENTIO_TEST_TMP") or tempfile.mkdtemp(prefix="sentio-py-"))
DEADLINE = 120.0


@contextlib.contextmanager
def server(name: str, *flags: str):
    """A `sentio serve` process; yields its gRPC address."""
    log_path = TMP / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([BIN, "serve", "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
                                 "--log-format", "json", *flags], stdout=log, stderr=subprocess.STDOUT)
    with open(TMP / "server.pids", "a") as pids:
        pids.write(f"{proc.pid}\n")
    try:
        yield wait_serving(proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_serving(proc: subprocess.Popen, log_path: Path) -> str:
    give_up = time.monotonic() + DEADLINE
    while time.monotonic() < give_up:
        for line in log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                fields = json.loads(line).get("fields", {})
                if fields.get("message") == "serving":
                    return fields["grpc"]
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{BIN} did not start serving:\n{log_path.read_text(errors='replace')}")


def expect_error(code: grpc.StatusCode, call, *args, **kwargs) -> SentioError:
    try:
        result = call(*args, **kwargs)
        if isinstance(result, sentio_client.Stream):
            list(result)
    except SentioError as e:
        assert isinstance(e, grpc.RpcError)
        assert e.code() == code, f"expected {code}, got {e}"
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


def check_scores(scores, labels) -> None:
    assert [s.emotion for s in scores] == list(labels), [s.emotion for s in scores]
    total = sum(s.probability for s in scores)
    assert math.isclose(total, 1.0, abs_tol=1e-3), f"scores sum to {total}"


def test_model_info(client) -> list:
    info = client.model_info()
    assert info.labels and info.kind and info.model_id, info
    assert info.default_hop_ms > 0 and info.sample_rate_hz > 0, info
    return list(info.labels)


def test_stream(client, labels) -> None:
    with wave.open(str(LONG)) as w:
        pcm, rate = w.readframes(w.getnframes()), w.getframerate()
    chunks = (pcm[i:i + rate // 10 * 2] for i in range(0, len(pcm), rate // 10 * 2))  # 100 ms
    stream = client.stream(chunks, encoding="pcm_s16le", sample_rate_hz=rate, stream_id="py-long",
                           include_silence=True, timeout=DEADLINE)
    assert stream.started is None and stream.summary is None
    windows = list(stream)
    started, summary = stream.started, stream.summary
    assert started is not None and started.stream_id == "py-long", started
    assert started.config.sample_rate_hz == rate and started.config.hop_ms > 0, started
    hop, window = started.config.hop_ms, started.config.window_ms
    assert windows, "no predictions"
    assert [w.window_index for w in windows] == list(range(len(windows))), "windows out of order"
    for w in windows:
        # The last window may be short: the stream's end flushes it.
        assert w.start_ms == w.window_index * hop and w.end_ms == min(w.start_ms + window, 6500), w
        if w.speech:
            check_scores(w.scores, labels)
            assert w.emotion in labels and w.confidence == max(s.probability for s in w.scores), w
    speech = sum(w.speech for w in windows)
    assert speech > 0, "no speech window in a speech recording"
    assert summary is not None, "no summary"
    assert summary.reason == pb.END_REASON_COMPLETED and summary.end_reason == "completed", summary
    assert summary.windows == len(windows) and summary.speech_windows == speech, summary
    assert summary.audio_ms == 6500 and summary.dominant_emotion in labels, summary
    check_scores(summary.mean_scores, labels)

    # The WAV helper, resuming a call 1 s in, without silence windows: indices go on from there.
    resume = hop * math.ceil(1000 / hop)
    stream = client.stream_wav(LONG, chunk_ms=250, resume_at_ms=resume, timeout=DEADLINE)
    later = list(stream)
    assert stream.started.stream_id == LONG.name and stream.started.config.resume_at_ms == resume
    assert later and all(w.speech for w in later) and later[0].window_index >= resume // hop, later[:1]
    assert later[0].start_ms >= resume and stream.summary.reason == pb.END_REASON_COMPLETED


def test_stream_errors(client) -> None:
    # A bad config is the server's INVALID_ARGUMENT, raised as SentioError while iterating.
    e = expect_error(grpc.StatusCode.INVALID_ARGUMENT, client.stream, iter([b"\0\0"] * 4),
                     encoding="pcm_s16le", sample_rate_hz=1000, timeout=DEADLINE)
    assert e.details(), e
    # An exception of the caller's chunk iterator comes back as itself.
    def failing():
        yield b"\0\0" * 1600
        raise OSError("microphone unplugged")
    try:
        list(client.stream(failing(), encoding="pcm_s16le", sample_rate_hz=16000, timeout=DEADLINE))
    except OSError as e:
        assert "unplugged" in str(e)
    else:
        raise AssertionError("the chunk iterator's exception was lost")
    try:
        client.stream([], encoding="opus", sample_rate_hz=16000)
    except ValueError as e:
        assert "pcm_s16le" in str(e), e
    else:
        raise AssertionError("an unknown encoding was accepted")


def watch_in_thread(watch: sentio_client.Watch) -> dict:
    """Subscribes `watch`, then consumes it on a thread: the result's "windows" (or "error")
    is set once "done" is."""
    try:
        watch.wait_subscribed()
    except SentioError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:
            raise AssertionError(f"{BIN} predates WatchStream: rebuild it (or set SENTIO_BIN)") from e
        raise
    result: dict = {"done": threading.Event()}

    def consume() -> None:
        try:
            result["windows"] = list(watch)
        except BaseException as e:  # noqa: BLE001 (handed to the test's thread)
            result["error"] = e
        finally:
            result["done"].set()

    threading.Thread(target=consume, daemon=True).start()
    return result


def watch_result(result: dict) -> list:
    assert result["done"].wait(DEADLINE), "the watch did not end after its stream"
    if "error" in result:
        raise result["error"]
    return result["windows"]


def test_watch(client, labels) -> None:
    # A watch subscribed before its stream starts sees everything the sender gets.
    watch = client.watch("py-watched", timeout=DEADLINE)
    assert watch.stream_id == "py-watched" and watch.started is None and watch.summary is None
    watched = watch_in_thread(watch)
    stream = client.stream_wav(LONG, stream_id="py-watched", include_silence=True, timeout=DEADLINE)
    sent = list(stream)
    seen = watch_result(watched)
    assert sent and stream.summary.reason == pb.END_REASON_COMPLETED, stream.summary
    key = lambda w: (w.window_index, w.start_ms, w.end_ms, w.speech, w.emotion, round(w.confidence, 6))
    assert [key(w) for w in seen] == [key(w) for w in sent], (seen[:2], sent[:2])
    assert all(w.emotion in labels or not w.speech for w in seen)
    assert watch.started is not None and watch.started.stream_id == "py-watched", watch.started
    assert watch.started == stream.started, (watch.started, stream.started)
    assert watch.summary == stream.summary, (watch.summary, stream.summary)

    # A stream that ends without a summary (its sender cancels) ends the watch with CANCELLED.
    watch = client.watch("py-watch-cancelled", timeout=DEADLINE)
    watched = watch_in_thread(watch)
    release = threading.Event()
    rate, _, chunks = sentio_client.wav_chunks(LONG, 100)

    def first_then_wait():
        for i, chunk in enumerate(chunks):
            if i == 30:  # 3 s: windows, but no end of the audio
                release.wait(DEADLINE)
                return
            yield chunk

    stream = client.stream(first_then_wait(), encoding="pcm_s16le", sample_rate_hz=rate,
                           stream_id="py-watch-cancelled", timeout=DEADLINE)
    try:
        next(stream)  # started, and a window: the stream is open and watched
        stream.cancel()
    finally:
        release.set()
    try:
        watch_result(watched)
    except SentioError as e:
        assert e.code() == grpc.StatusCode.CANCELLED, e
        assert "ended" in e.details(), e
    else:
        raise AssertionError("a cancelled stream's watch ended OK")
    assert watch.summary is None and watch.started is not None, watch.started

    expect_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: client.watch("", timeout=DEADLINE).wait_subscribed())


def test_classify(client, labels) -> None:
    by_path = client.classify_file(SHORT)
    assert by_path.emotion in labels and 0 < by_path.confidence <= 1, by_path
    check_scores(by_path.scores, labels)
    assert by_path.audio_ms == 1600 and by_path.windows and by_path.model_id, by_path
    by_bytes = client.classify_file(SHORT.read_bytes())
    assert by_bytes.emotion == by_path.emotion
    with wave.open(str(SHORT)) as w:
        raw = client.classify_raw(w.readframes(w.getnframes()), encoding="pcm_s16le",
                                  sample_rate_hz=w.getframerate())
    assert raw.emotion == by_path.emotion and math.isclose(raw.confidence, by_path.confidence, abs_tol=1e-4)
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, client.classify_file, b"not audio at all")


def test_cli(addr, labels) -> None:
    cli = shutil.which("sentio-py", path=os.path.dirname(sys.executable))
    assert cli, "the sentio-py entry point is not installed"
    run = lambda *a: subprocess.run([cli, "--addr", addr, *a], capture_output=True, text=True, timeout=DEADLINE)
    out = run("stream", str(LONG))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert "started" in lines[0] and "prediction" in lines[1], lines[:2]
    assert lines[-1]["summary"]["reason"] == "END_REASON_COMPLETED", lines[-1]
    assert json.loads(run("info").stdout)["model_info"]["labels"] == labels
    assert json.loads(run("classify", str(SHORT)).stdout)["classify"]["emotion"] in labels
    bad = run("classify", str(ROOT / "README.md"))
    assert bad.returncode != 0 and "INVALID_ARGUMENT" in bad.stderr, bad


def test_api_keys(labels) -> None:
    keys = TMP / "api-keys"
    keys.write_text("# one key a line\nsecret-one\nsecret-two\n")
    with server("api-keys", "--api-keys-file", str(keys)) as addr:
        with sentio_client.connect(addr, timeout=DEADLINE) as anonymous:
            e = expect_error(grpc.StatusCode.UNAUTHENTICATED, anonymous.model_info)
            assert "authorization" in e.details(), e
            expect_error(grpc.StatusCode.UNAUTHENTICATED, anonymous.stream_wav, SHORT)
            expect_error(grpc.StatusCode.UNAUTHENTICATED, lambda: anonymous.watch("py-keyed").wait_subscribed())
        with sentio_client.connect(addr, api_key="wrong", timeout=DEADLINE) as wrong:
            expect_error(grpc.StatusCode.UNAUTHENTICATED, wrong.classify_file, SHORT)
        with sentio_client.connect(addr, api_key="secret-two", timeout=DEADLINE) as client:
            assert list(client.model_info().labels) == labels
            assert client.classify_file(SHORT).emotion in labels
            watched = watch_in_thread(client.watch("py-keyed", timeout=DEADLINE))
            stream = client.stream_wav(SHORT, stream_id="py-keyed", timeout=DEADLINE)
            sent = list(stream)
            assert sent and stream.summary.reason == pb.END_REASON_COMPLETED
            assert [w.window_index for w in watch_result(watched)] == [w.window_index for w in sent]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=TMP, timeout=60)


def make_pki() -> None:
    """A CA, and a server (localhost) and a client certificate it signed."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=sentio-py-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, usage, san in (("server", "serverAuth", "subjectAltName=DNS:localhost\n"), ("client", "clientAuth", "")):
        (TMP / f"{name}.ext").write_text(f"{san}basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                         f"extendedKeyUsage={usage}\n")
        openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
                str(int(time.time() * 1000)), "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")


def test_mutual_tls(labels) -> None:
    make_pki()
    flags = ["--tls-cert", TMP / "server.pem", "--tls-key", TMP / "server.key", "--tls-client-ca", TMP / "ca.pem"]
    with server("tls", *map(str, flags)) as addr:
        tls = dict(root_certificates=TMP / "ca.pem", server_name="localhost", timeout=DEADLINE)
        with sentio_client.connect(addr, client_cert=TMP / "client.pem",
                                   client_key=(TMP / "client.key").read_text(), **tls) as client:
            assert list(client.model_info().labels) == labels
            assert client.classify_file(SHORT).emotion in labels
            stream = client.stream_wav(SHORT, timeout=DEADLINE)
            assert list(stream) and stream.summary.reason == pb.END_REASON_COMPLETED
        with sentio_client.connect(addr, **tls) as no_client_cert:
            expect_error(grpc.StatusCode.UNAVAILABLE, no_client_cert.model_info)
        with sentio_client.connect(addr, timeout=DEADLINE) as plaintext:
            expect_error(grpc.StatusCode.UNAVAILABLE, plaintext.model_info)


def main() -> None:
    if not __debug__:
        sys.exit("test_live.py checks with assert: run it without -O")
    print(f"sentio_client from {os.path.dirname(sentio_client.__file__)}, server {BIN}", flush=True)
    assert os.access(BIN, os.X_OK), f"no server binary at {BIN} (set SENTIO_BIN)"
    started = time.monotonic()
    with server("plain") as addr, sentio_client.connect(addr, timeout=DEADLINE) as client:
        labels = test_model_info(client)
        test_stream(client, labels)
        test_stream_errors(client)
        test_watch(client, labels)
        test_classify(client, labels)
        test_cli(addr, labels)
    print("ok: model info, streams, watches, Classify, errors, sentio-py")
    test_api_keys(labels)
    print("ok: API keys")
    if shutil.which("openssl"):
        test_mutual_tls(labels)
        print("ok: mutual TLS")
    else:
        print("skipped: mutual TLS (no openssl)")
    print(f"all passed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
