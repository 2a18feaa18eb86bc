//! `sentio-client stream -` against a real server on 127.0.0.1: raw audio on stdin is
//! streamed as it arrives, and raw input without its format is refused with a clear error.

use std::process::Stdio;
use std::time::Duration;

use sentio::audio::{SampleFormat, decode_path, pcm::encode};
use sentio::model::Model;
use sentio::serve::ServeConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const CLIENT: &str = env!("CARGO_BIN_EXE_sentio-client");

/// Starts the server with the shipped model; returns its gRPC address.
async fn start_server() -> std::net::SocketAddr {
    let model = Model::default_model(&candle_core::Device::Cpu).unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let config = ServeConfig::defaults();
    tokio::spawn(sentio::serve::serve(
        grpc,
        None,
        config,
        model,
        std::future::pending(),
    ));
    addr
}

fn speech_s16le() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/speech_long_16k.wav"
    );
    let audio = decode_path(std::path::Path::new(path)).unwrap();
    assert_eq!(audio.sample_rate, 16_000);
    encode(&audio.samples, SampleFormat::S16Le)
}

/// Predictions arrive while stdin is still open: the client does not wait for its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_is_streamed_as_it_arrives() {
    let addr = start_server().await;
    let mut child = Command::new(CLIENT)
        .args(["--addr", &format!("http://{addr}"), "stream", "-"])
        .args(["--format", "s16le", "--rate", "16000", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    // Enough audio for the first 2 s window, then stdin stays open.
    let audio = speech_s16le();
    let first = audio.len().min(16_000 * 2 * 3);
    stdin.write_all(&audio[..first]).await.unwrap();
    stdin.flush().await.unwrap();
    let prediction = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("\"type\":\"prediction\"") {
                return line;
            }
        }
        panic!("stdout ended without a prediction");
    };
    // A guard against a hang, not a latency bound: before this change the client read
    // stdin to its end and printed nothing until then.
    let line = tokio::time::timeout(Duration::from_secs(60), prediction)
        .await
        .expect("a prediction while stdin is still open");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["index"], 0, "{line}");

    // Closing stdin ends the stream with its summary.
    stdin.write_all(&audio[first..]).await.unwrap();
    drop(stdin);
    let mut summary = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("\"type\":\"summary\"") {
            summary = Some(line);
        }
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "client exited with {status}");
    assert!(summary.is_some(), "no summary after stdin closed");
}

/// Raw stdin has no header: without --format and --rate the client says what it needs.
#[tokio::test]
async fn raw_stdin_without_its_format_is_refused() {
    for args in [&["stream", "-"][..], &["stream", "-", "--rate", "8000"]] {
        let out = Command::new(CLIENT)
            .args(["--addr", "http://127.0.0.1:9"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--format") && stderr.contains("--rate"),
            "{stderr}"
        );
    }
}
