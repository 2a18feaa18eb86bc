//! A call survives a rollout: the server drains and stops, another takes its port, and
//! `sentio-client stream` resumes the same call on it, with window indices and times that
//! continue and no window lost or printed twice.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use sentio::model::Model;
use sentio::serve::ServeConfig;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const CLIENT: &str = env!("CARGO_BIN_EXE_sentio-client");

/// A server on `listener` that drains (1 s timeout) when `stop` fires.
fn serve(
    listener: tokio::net::TcpListener,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<sentio::Result<()>> {
    let model = Model::default_model(&candle_core::Device::Cpu).unwrap();
    let mut config = ServeConfig::defaults();
    config.drain_timeout_s = 1;
    tokio::spawn(sentio::serve::serve(listener, None, config, model, async {
        let _ = stop.await;
    }))
}

/// Binds `addr` again once the previous server has let it go.
async fn rebind(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} stayed taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_resumes_on_the_next_server_after_a_drain() {
    let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = first.local_addr().unwrap();
    let (stop_first, stopped) = tokio::sync::oneshot::channel();
    let first = serve(first, stopped);

    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/speech_long_16k.wav"
    );
    let mut child = Command::new(CLIENT)
        .args(["--addr", &format!("http://{addr}"), "stream", fixture])
        .args(["--realtime", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    // The call is live: its first window is answered; then the rollout stops the server.
    while let Some(line) = lines.next_line().await.unwrap() {
        let done = line.contains("\"type\":\"prediction\"");
        printed.push(line);
        if done {
            break;
        }
    }
    stop_first.send(()).unwrap();
    first.await.unwrap().unwrap();
    let (_keep, never) = tokio::sync::oneshot::channel();
    let _second = serve(rebind(addr).await, never);

    let rest = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push(line);
        }
    };
    // A guard against a hang, not a latency bound.
    tokio::time::timeout(Duration::from_secs(60), rest)
        .await
        .expect("the client finishes the call");
    let status = child.wait().await.unwrap();
    let events: Vec<serde_json::Value> = printed
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        status.success(),
        "client exited with {status}: {printed:#?}"
    );

    let windows: Vec<(u64, u64, u64)> = events
        .iter()
        .filter(|e| e["type"] == "prediction")
        .map(|e| {
            let field = |k: &str| e[k].as_u64().unwrap();
            (field("index"), field("start_ms"), field("end_ms"))
        })
        .collect();
    // Every window of the 6.5 s call once, on one timeline: 2 s windows every 1 s.
    let expected: Vec<(u64, u64, u64)> = (0..6)
        .map(|i| (i, i * 1000, (i * 1000 + 2000).min(6500)))
        .collect();
    assert_eq!(windows, expected, "{printed:#?}");
    let starts = events.iter().filter(|e| e["type"] == "started").count();
    assert_eq!(starts, 2, "one stream per server: {printed:#?}");
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "summary", "{printed:#?}");
    assert_eq!(summary["reason"], "completed", "{printed:#?}");
}
