//! `sentio-client bench` against a real server on 127.0.0.1, on a contact-center call shape
//! (8 kHz mu-law in 20 ms frames) with a clip whose length is not a multiple of the chunk:
//! every window is answered, and the load generator's latency agrees with the server's own
//! `latency_us` (a window timed against the wrong chunk, e.g. after the clip loops, would be
//! off by whole chunks).

use sentio::audio::{SampleFormat, decode_path, pcm::encode};
use sentio::model::Model;
use sentio::serve::ServeConfig;

const CLIENT: &str = env!("CARGO_BIN_EXE_sentio-client");

async fn start_server() -> std::net::SocketAddr {
    let model = Model::default_model(&candle_core::Device::Cpu).unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    tokio::spawn(sentio::serve::serve(
        grpc,
        None,
        ServeConfig::defaults(),
        model,
        std::future::pending(),
    ));
    addr
}

/// `samples` as a 16-bit PCM WAV file.
fn wav(samples: &[f32], rate: u32) -> Vec<u8> {
    let data = encode(samples, SampleFormat::S16Le);
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_latency_agrees_with_the_server_on_a_call_shape() {
    let addr = start_server().await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/speech_long_16k.wav"
    );
    let audio = decode_path(std::path::Path::new(path)).unwrap();
    // 3.637 s: not a multiple of the 20 ms frame, the 1 s hop or the 2 s window.
    let clip = &audio.samples[..(3.637 * 16_000.0) as usize];
    let dir = std::env::temp_dir().join(format!("sentio-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("clip_3637ms.wav");
    std::fs::write(&file, wav(clip, 16_000)).unwrap();

    let output = tokio::process::Command::new(CLIENT)
        .args(["--addr", &format!("http://{addr}"), "bench", "--json"])
        .args(["--streams", "4", "--duration", "9", "--chunk-ms", "20"])
        .args(["--encoding", "mulaw", "--rate", "8000"])
        .arg("--file")
        .arg(&file)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let step: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    // 4 streams of about 9 s with a 1 s hop: several windows each, across two clip loops.
    assert!(step["windows"].as_u64().unwrap() >= 20, "{step}");
    assert_eq!(step["lost_windows"], 0, "{step}");
    assert_eq!(step["errors"], serde_json::json!({}), "{step}");
    // The server's clock starts when the chunk arrives, ours when we sent it: never above.
    assert_eq!(step["server_latency_over_client"], 0, "{step}");
    // And ours is not a chunk or more above it, as timing a window against the wrong chunk
    // (or a clock that restarts at the loop) would make it.
    let client_p50 = step["latency_ms"]["p50"].as_f64().unwrap();
    let server_p50 = step["server_latency_ms"]["p50"].as_f64().unwrap();
    assert!(client_p50 - server_p50 < 20.0, "{step}");
    std::fs::remove_dir_all(&dir).ok();
}
