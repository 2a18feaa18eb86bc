//! Several replicas: with `--nats-url`, a call's media arrives on one `sentio` process and
//! is watched on another, through a real `nats-server` (Debian's package; `.ci/run`
//! installs it).

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::ServerProcess;
use common::twilio::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// `nats-server` on a free loopback port, stopped on drop.
struct Nats {
    child: Child,
    url: String,
}

impl Nats {
    /// `None` where `nats-server` is not installed (`cargo test` on a fresh machine needs
    /// only the Rust toolchain), unless `SENTIO_REQUIRE_NATS` is set, as `.ci/run` sets it
    /// after installing nats-server: then its absence fails the test.
    async fn start() -> Option<Self> {
        let addr = free_addr();
        let installed = [
            "nats-server",
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
        ]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok());
        let Some(binary) = installed else {
            assert!(
                std::env::var_os("SENTIO_REQUIRE_NATS").is_none(),
                "nats-server is not installed (apt-get install nats-server)"
            );
            eprintln!("SKIPPED: nats-server is not installed (apt-get install nats-server)");
            return None;
        };
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(addr).await;
        Some(Self {
            child,
            url: format!("nats://{addr}"),
        })
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_on_one_replica_is_watched_on_another_through_nats() {
    let Some(nats) = Nats::start().await else {
        return;
    };
    let media = free_addr();
    let media_flag = media.to_string();
    let media_replica =
        ServerProcess::start(&["--nats-url", &nats.url, "--media-ws-addr", &media_flag]).await;
    let watch_replica = ServerProcess::start(&["--nats-url", &nats.url]).await;
    let mut watcher_client = watch_replica.client().await;
    let watchers = [
        watch(&mut watcher_client, &format!("{SID}:inbound")).await,
        watch(&mut watcher_client, &format!("{SID}:outbound")).await,
    ];
    let (inbound, outbound) = (
        track_audio("speech_long_16k.wav"),
        track_audio("speech_16k.wav"),
    );
    let mut socket = connect(media, "").await.unwrap();
    twilio_call(&mut socket, SID, &inbound, &outbound).await;
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Normal));
    for watcher in watchers {
        let watched = tokio::time::timeout(Duration::from_secs(60), watcher)
            .await
            .expect("the watch ends with the call")
            .unwrap();
        assert!(watched.status.is_none(), "{:?}", watched.status);
        assert!(watched.started);
        let summary = watched.summary.expect("the summary crosses NATS");
        assert_eq!(summary.audio_ms, 10_000);
        assert!(summary.speech_windows >= 8, "{summary:?}");
        assert_eq!(watched.predictions.len() as u64, summary.speech_windows);
    }
    drop(media_replica);
}
