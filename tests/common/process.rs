//! The real `sentio` binary as a child process on loopback ports, for what only a process
//! shows: its resident memory, and how it answers signals.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sentio::proto::emotion_recognizer_client::EmotionRecognizerClient;
use tonic::transport::Channel;

pub(crate) struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
}

fn free_port() -> SocketAddr {
    // The OS picks a free port; the server binds it again a moment later.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl ServerProcess {
    /// Starts `sentio serve` with extra flags and waits until it answers.
    pub(crate) async fn start(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[]).await
    }

    /// [`Self::start`] with extra environment variables.
    pub(crate) async fn start_with_env(extra: &[&str], vars: &[(&str, &str)]) -> Self {
        let (addr, metrics_addr) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_sentio"))
            .envs(vars.iter().copied())
            .arg("serve")
            .args(["--grpc-addr", &addr.to_string()])
            .args(["--metrics-addr", &metrics_addr.to_string()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the sentio binary");
        let server = Self {
            child,
            addr,
            metrics_addr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.try_client().await.is_none() {
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    async fn try_client(&self) -> Option<EmotionRecognizerClient<Channel>> {
        EmotionRecognizerClient::connect(format!("http://{}", self.addr))
            .await
            .ok()
    }

    /// A client on a connection of its own.
    pub(crate) async fn client(&self) -> EmotionRecognizerClient<Channel> {
        self.try_client().await.expect("connecting")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory, in bytes.
    pub(crate) fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kb * 1024
    }

    pub(crate) fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// One value from /metrics (0 when absent).
    pub(crate) async fn metric(&self, name: &str) -> f64 {
        let body = super::scrape_metrics(self.metrics_addr).await;
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Waits for the process to exit; its status, or None after `timeout`.
    pub(crate) async fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
