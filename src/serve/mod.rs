//! The streaming gRPC server: the service, per-stream sessions, the cross-client batcher
//! and its model thread, Prometheus metrics, health, reflection and graceful draining.

mod arrivals;
pub mod auth;
pub mod batcher;
mod classify_input;
pub mod config;
pub mod launch;
pub mod media_ws;
pub mod metrics;
pub mod model_swap;
mod ordered;
pub mod outcome;
pub mod oversized;
pub mod service;
pub mod session;
pub mod status;
pub mod stream_config;
pub mod tls;
pub mod twilio;
pub mod watch;
pub mod watch_nats;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use batcher::{Batcher, BatcherConfig, Inference};
pub use config::{LogFormat, ServeConfig};

use crate::model::{Model, ModelCard, ModelSource};
use crate::proto::emotion_recognizer_server::EmotionRecognizerServer;
use launch::StreamLauncher;
use model_swap::Models;
use service::EmotionService;
use session::SessionContext;
use watch::WatchHub;

/// TLS from the certificate, key and optional client CA files, watched for changes.
fn tls(config: &ServeConfig) -> crate::Result<Option<Arc<tls::ReloadingTls>>> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let tls = tls::ReloadingTls::load(tls::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: config.tls_client_ca.clone(),
    })?;
    tls.watch();
    Ok(Some(tls))
}

/// What the server runs windows through: the model's card, where it runs, and the forward
/// pass. A `Model` converts into one; tests wrap the real model to inject faults.
pub struct Engine {
    pub card: ModelCard,
    pub device: candle_core::DeviceLocation,
    pub inference: Arc<dyn Inference>,
}

impl From<Model> for Engine {
    fn from(model: Model) -> Self {
        Self {
            card: model.card.clone(),
            device: model.device().location(),
            inference: Arc::new(model),
        }
    }
}

/// Protobuf framing around the largest payload (audio bytes plus a few small fields).
const MESSAGE_OVERHEAD_BYTES: usize = 64 * 1024;

/// The gRPC service name, as health checks report it.
pub const SERVICE_NAME: &str = "sentio.v1.EmotionRecognizer";

/// Serves until `shutdown` resolves, then drains: health turns NOT_SERVING, connections get
/// an HTTP/2 GOAWAY and new streams UNAVAILABLE, so clients start new calls elsewhere, while
/// open streams go on being served until they end. Streams still open when the drain
/// timeout passes stop reading, finish their windows and get their summary (reason
/// `END_REASON_SERVER_SHUTDOWN`).
pub async fn serve(
    grpc: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: ServeConfig,
    engine: impl Into<Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> crate::Result<()> {
    let batcher_config = BatcherConfig {
        max_batch_size: config.max_batch_size.max(1),
        max_batch_delay: config.max_batch_delay(),
        queue_capacity: config.queue_capacity.max(1),
    };
    let (draining, stop) = (CancellationToken::new(), CancellationToken::new());
    serve_metrics(metrics_listener, draining.clone());
    let models = Arc::new(Models::start(engine.into(), batcher_config));
    if let ModelSource::Dir(dir) = &config.model {
        models.watch_dir(dir.clone(), crate::model::parse_device(&config.device)?);
    }
    let ctx = Arc::new(SessionContext {
        models: models.clone(),
        config: config.clone(),
        draining: draining.clone(),
        shutdown: stop.clone(),
    });
    let tracker = TaskTracker::new();
    let watch = match &config.nats_url {
        Some(url) => WatchHub::with_nats(watch_nats::NatsBus::connect(url).await?),
        None => WatchHub::local(),
    };
    let launcher = Arc::new(StreamLauncher {
        ctx: ctx.clone(),
        streams: Arc::new(Semaphore::new(config.max_streams)),
        tracker: tracker.clone(),
        next_id: AtomicU64::new(1),
        watch: Arc::new(watch),
    });
    let keys = api_keys(&config)?;
    if let Some(addr) = config.media_ws_addr {
        let connector = media_ws::MediaConnector {
            launcher: launcher.clone(),
            keys: keys.clone(),
        };
        media_ws::serve(TcpListener::bind(addr).await?, Arc::new(connector));
    }
    let service = EmotionService { launcher };
    let (health_reporter, health_service) = serve_health(&config).await?;
    let reflection = reflection_service()?;
    let recognizer = authenticated(service, &config, keys)?;
    // Tonic's graceful shutdown (GOAWAY, no new connections) starts with the drain and lets
    // open streams run; `drained` fires once every session has ended.
    let (server_stop, drained) = (CancellationToken::new(), CancellationToken::new());
    let drain = tokio::spawn(drain_on(
        shutdown,
        config.drain_timeout(),
        Drain {
            draining,
            sessions: stop.clone(),
            tracker: tracker.clone(),
            health: health_reporter.clone(),
            server_stop: server_stop.clone(),
            drained: drained.clone(),
        },
    ));
    let server_stop_signal = server_stop.clone();
    let server = server_builder(&config)?
        .layer(tower::util::MapResponseLayer::new(
            oversized::oversized_is_resource_exhausted,
        ))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(recognizer)
        .serve_with_incoming_shutdown(tls::incoming(grpc, tls(&config)?), async move {
            server_stop_signal.cancelled().await
        });
    let grace = async {
        drained.cancelled().await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    };
    tokio::select! {
        result = server => result.map_err(|e| crate::Error::Server {
            what: "gRPC transport",
            source: Box::new(e),
        })?,
        _ = grace => tracing::info!("closing remaining connections"),
    }
    drain.abort();
    // Whatever still holds a session context (a media WebSocket that never started a call)
    // lets go; the model threads end once nothing holds their models.
    stop.cancel();
    let workers = models.take_workers();
    drop((ctx, models));
    let joined =
        tokio::task::spawn_blocking(move || workers.into_iter().for_each(|w| drop(w.join())));
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, joined).await;
    tracing::info!("stopped");
    Ok(())
}

/// gRPC health, SERVING until the drain; also on its own plaintext port when configured
/// (kubelet gRPC probes speak plaintext, so with TLS on health needs a port of its own).
async fn serve_health(
    config: &ServeConfig,
) -> crate::Result<(
    tonic_health::server::HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
)> {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<EmotionRecognizerServer<EmotionService>>()
        .await;
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    if let Some(addr) = config.health_addr {
        let listener = TcpListener::bind(addr).await?;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service.clone())
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
    }
    Ok((reporter, service))
}

/// Prometheus text on `/metrics`, on its own listener.
/// The HTTP port: Prometheus `/metrics` (with the process's own metrics), `/healthz` (the
/// process answers) and `/readyz` (the model is loaded and the server is not draining: 503
/// once SIGTERM has come).
fn serve_metrics(listener: Option<TcpListener>, draining: CancellationToken) {
    let prometheus = metrics::install();
    let Some(listener) = listener else {
        return;
    };
    let process = metrics_process::Collector::default();
    process.describe();
    let render = move || {
        process.collect();
        std::future::ready(metrics::render(&prometheus))
    };
    let ready = move || {
        let status = if draining.is_cancelled() {
            (http::StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        } else {
            (http::StatusCode::OK, "ready\n")
        };
        std::future::ready(status)
    };
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(render))
        .route(
            "/healthz",
            axum::routing::get(|| std::future::ready("ok\n")),
        )
        .route("/readyz", axum::routing::get(ready));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
}

/// The recognizer with its message limits, behind the API-key check when keys are set.
fn authenticated(
    service: EmotionService,
    config: &ServeConfig,
    keys: Option<Arc<auth::ApiKeys>>,
) -> crate::Result<
    tonic::service::interceptor::InterceptedService<
        EmotionRecognizerServer<EmotionService>,
        impl tonic::service::Interceptor + Clone + use<>,
    >,
> {
    // One limit for every method: Classify carries whole files, streams small chunks (the
    // session enforces --max-chunk-bytes with a clear status of its own).
    let limit = config.max_chunk_bytes.max(config.max_classify_bytes) + MESSAGE_OVERHEAD_BYTES;
    let recognizer = EmotionRecognizerServer::new(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(tonic::service::interceptor::InterceptedService::new(
        recognizer,
        move |request: tonic::Request<()>| {
            if let Some(keys) = &keys {
                keys.check(&request).map_err(status::counted)?;
            }
            Ok(request)
        },
    ))
}

/// The API keys, watched for changes, when a keys file is configured.
fn api_keys(config: &ServeConfig) -> crate::Result<Option<Arc<auth::ApiKeys>>> {
    let Some(path) = &config.api_keys_file else {
        return Ok(None);
    };
    let keys = auth::ApiKeys::load(path)?;
    auth::watch(keys.clone());
    Ok(Some(keys))
}

/// What a drain acts on.
struct Drain {
    /// New streams are refused.
    draining: CancellationToken,
    /// Open streams stop reading and summarize.
    sessions: CancellationToken,
    tracker: TaskTracker,
    health: tonic_health::server::HealthReporter,
    /// Tonic's graceful shutdown: GOAWAY, no new connections.
    server_stop: CancellationToken,
    /// Every session has ended.
    drained: CancellationToken,
}

/// How long streams told to stop may take to flush their windows and summaries.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits for `shutdown`, then drains: NOT_SERVING, new streams refused, GOAWAY sent; open
/// streams run until they end or `drain_timeout` passes, when they are told to stop.
async fn drain_on(
    shutdown: impl Future<Output = ()>,
    drain_timeout: std::time::Duration,
    drain: Drain,
) {
    shutdown.await;
    tracing::info!(
        timeout_s = drain_timeout.as_secs(),
        open_streams = drain.tracker.len(),
        "draining: open streams are served until they end"
    );
    drain
        .health
        .set_not_serving::<EmotionRecognizerServer<EmotionService>>()
        .await;
    drain.draining.cancel();
    drain.server_stop.cancel();
    drain.tracker.close();
    if tokio::time::timeout(drain_timeout, drain.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open_streams = drain.tracker.len(),
            "drain timeout: ending the streams still open"
        );
        drain.sessions.cancel();
        if tokio::time::timeout(FLUSH_TIMEOUT, drain.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some streams did not flush their windows in time");
        }
    }
    drain.drained.cancel();
}

/// gRPC reflection over the public API and health, so grpcurl needs no proto files.
fn reflection_service() -> crate::Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| crate::Error::Server {
            what: "reflection",
            source: Box::new(e),
        })
}

/// HTTP/2 flow-control windows (see `server_builder`).
const STREAM_WINDOW_BYTES: u32 = 256 * 1024;
const CONNECTION_WINDOW_BYTES: u32 = 32 * 1024 * 1024;

/// The transport's limits, each against an abuse `tests/abuse.rs` runs (TLS and its
/// handshake timeout are `tls::incoming`'s).
fn server_builder(config: &ServeConfig) -> crate::Result<tonic::transport::Server> {
    use std::time::Duration;
    let mut builder = tonic::transport::Server::builder()
        // A peer that stops answering PINGs for 20 s is closed (dead NATs, half-open TCP).
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_concurrent_streams(config.max_streams_per_connection)
        // Metadata per request: a larger header block is refused before any handler runs.
        .http2_max_header_list_size(16 * 1024)
        // Rapid reset (CVE-2023-44487): more than 20 streams reset before being served, or
        // 1024 streams the server had to reset, and the connection gets GOAWAY.
        .http2_max_pending_accept_reset_streams(Some(20))
        .http2_max_local_error_reset_streams(Some(1024))
        // h2 closes a connection (GOAWAY ENHANCE_YOUR_CALM) when its small DATA frames
        // (< 256 B, e.g. one-sample or 20 ms G.711 messages) sit unread past a budget of half
        // the connection window. With hyper's 1 MiB windows one stream that fell 2,000
        // one-sample messages behind killed every call on its connection. A small stream
        // window bounds what one stream can queue (256 KiB: 0.7 s of 48 kHz stereo f32), a
        // large connection window raises the budget (16 MiB): one stream can no longer trip
        // it, and telephony frames need over 200 stalled streams on one connection.
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES);
    if let Some(age) = config.max_connection_age_s {
        builder = builder
            .max_connection_age(Duration::from_secs(age))
            .max_connection_age_grace(config.drain_timeout());
    }
    Ok(builder)
}
