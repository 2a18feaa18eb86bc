//! Server configuration: one struct, filled by clap from flags or `SENTIO_*` environment
//! variables, passed whole to `serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::model::ModelSource;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address of the gRPC server.
    #[arg(long, env = "SENTIO_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Address of the Prometheus /metrics endpoint (loopback unless told otherwise).
    #[arg(long, env = "SENTIO_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: SocketAddr,
    /// The model: `builtin:default` (8 classes; weights for non-commercial research use
    /// only, CC BY-NC-SA 4.0), `builtin:crema-d` (6 classes, trained on CREMA-D only; ODbL
    /// 1.0/DbCL 1.0, commercial use allowed with attribution: pick it for commercial use),
    /// or a model directory (model.json + model.safetensors; its card states its licence).
    /// See NOTICE.
    #[arg(long, env = "SENTIO_MODEL", default_value_t)]
    pub model: ModelSource,
    /// Where the model runs: cpu or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, env = "SENTIO_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Threads one forward pass may use. One is the most work per core under load (no
    /// barrier spinning beside the gRPC threads); more lowers latency on idle cores.
    #[arg(long, env = "SENTIO_MODEL_THREADS", default_value_t = 1)]
    pub model_threads: usize,
    /// Most windows in one forward pass.
    #[arg(long, env = "SENTIO_MAX_BATCH_SIZE", default_value_t = 64)]
    pub max_batch_size: usize,
    /// Longest wait for a batch to fill, in milliseconds (0: run whatever is queued).
    #[arg(long, env = "SENTIO_MAX_BATCH_DELAY_MS", default_value_t = 0.0)]
    pub max_batch_delay_ms: f64,
    /// Windows that may wait for the model; when full, streams stop being read.
    #[arg(long, env = "SENTIO_QUEUE_CAPACITY", default_value_t = 4096)]
    pub queue_capacity: usize,
    /// Concurrent streams; one more gets RESOURCE_EXHAUSTED.
    #[arg(long, env = "SENTIO_MAX_STREAMS", default_value_t = 2000)]
    pub max_streams: usize,
    /// Streams one HTTP/2 connection may hold open at once (SETTINGS_MAX_CONCURRENT_STREAMS);
    /// a client opening more waits for one to end.
    #[arg(
        long,
        env = "SENTIO_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 1000
    )]
    pub max_streams_per_connection: u32,
    /// Windows of one stream queued or being computed before the stream stops being read.
    #[arg(long, env = "SENTIO_MAX_WINDOWS_IN_FLIGHT", default_value_t = 16)]
    pub max_windows_in_flight: usize,
    /// Windows quieter than this RMS level (dB full scale) are reported as silence.
    #[arg(long, env = "SENTIO_SILENCE_DBFS", default_value_t = crate::pipeline::DEFAULT_SILENCE_DBFS)]
    pub silence_dbfs: f32,
    /// Seconds a stream may stay open.
    #[arg(long, env = "SENTIO_MAX_STREAM_DURATION_S", default_value_t = 14_400)]
    pub max_stream_duration_s: u64,
    /// Seconds without any message before a stream is ended (silence still arrives as audio).
    #[arg(long, env = "SENTIO_IDLE_TIMEOUT_S", default_value_t = 60)]
    pub idle_timeout_s: u64,
    /// Lowest sample rate a caller may send, Hz (8000 to 192000 are supported).
    #[arg(long, env = "SENTIO_MIN_SAMPLE_RATE_HZ", default_value_t = 8_000)]
    pub min_sample_rate_hz: u32,
    /// Highest sample rate a caller may send, Hz.
    #[arg(long, env = "SENTIO_MAX_SAMPLE_RATE_HZ", default_value_t = 192_000)]
    pub max_sample_rate_hz: u32,
    /// Most interleaved channels a raw stream may carry (downmixed to mono; at most 32).
    #[arg(long, env = "SENTIO_MAX_CHANNELS", default_value_t = 32)]
    pub max_channels: usize,
    /// Largest audio chunk of a stream, in bytes (1 MiB is 2.7 s of 48 kHz stereo f32).
    #[arg(long, env = "SENTIO_MAX_CHUNK_BYTES", default_value_t = 1024 * 1024)]
    pub max_chunk_bytes: usize,
    /// Largest Classify file, in bytes.
    #[arg(long, env = "SENTIO_MAX_CLASSIFY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_classify_bytes: usize,
    /// Longest Classify recording, in seconds.
    #[arg(long, env = "SENTIO_MAX_CLASSIFY_SECONDS", default_value_t = 600)]
    pub max_classify_seconds: u64,
    /// On SIGTERM/SIGINT, seconds that open streams go on being served (new ones go
    /// elsewhere); streams still open then are ended with their windows and summary.
    #[arg(long, env = "SENTIO_DRAIN_TIMEOUT_S", default_value_t = 600)]
    pub drain_timeout_s: u64,
    /// Close client connections after this many seconds (they reconnect and re-resolve, so
    /// scale-outs get traffic); streams in progress get a grace period of the drain timeout.
    #[arg(long, env = "SENTIO_MAX_CONNECTION_AGE_S")]
    pub max_connection_age_s: Option<u64>,
    /// PEM certificate chain for TLS on the gRPC port (with --tls-key).
    #[arg(long, env = "SENTIO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, env = "SENTIO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate it signed (mutual TLS).
    #[arg(long, env = "SENTIO_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// A plaintext port serving only gRPC health (for Kubernetes probes when TLS is on).
    #[arg(long, env = "SENTIO_HEALTH_ADDR")]
    pub health_addr: Option<SocketAddr>,
    /// File of API keys, one per line; calls need `authorization: Bearer <key>`. Reloaded
    /// when it changes (checked every 2 s) and on SIGHUP.
    #[arg(long, env = "SENTIO_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Address of the telephony media-stream WebSocket (Twilio Media Streams at `/twilio`);
    /// off unless set. Each call's tracks become streams `<streamSid>:<track>` to watch.
    #[arg(long, env = "SENTIO_MEDIA_WS_ADDR")]
    pub media_ws_addr: Option<SocketAddr>,
    /// NATS server (e.g. nats://nats:4222) through which replicas share their streams'
    /// predictions, so `WatchStream` on any replica watches a stream on any other.
    #[arg(long, env = "SENTIO_NATS_URL")]
    pub nats_url: Option<String>,
    /// OTLP/gRPC collector (e.g. http://otel-collector:4317) to export the stream and
    /// Classify spans to, each under the caller's `traceparent`; off unless set.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Log format.
    #[arg(long, env = "SENTIO_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl ServeConfig {
    pub fn max_batch_delay(&self) -> Duration {
        Duration::from_secs_f64(self.max_batch_delay_ms.max(0.0) / 1000.0)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_s)
    }

    /// The defaults of every flag (loopback addresses), as `sentio serve` with no flags.
    pub fn defaults() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: ServeConfig,
        }
        Wrapper::parse_from(["sentio"]).config
    }
}
