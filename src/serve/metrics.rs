//! Every Prometheus metric Sentio exports: names, units, help texts and buckets in one
//! place, recorded through small helpers so call sites stay readable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const BATCH_BUCKETS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
];

pub const ACTIVE_STREAMS: &str = "sentio_active_streams";
pub const STREAMS: &str = "sentio_streams_total";
pub const AUDIO_SECONDS: &str = "sentio_audio_received_seconds_total";
pub const BUILD_INFO: &str = "sentio_build_info";
pub const WINDOWS: &str = "sentio_windows_total";
pub const BATCH_SIZE: &str = "sentio_batch_size";
pub const QUEUE_WAIT: &str = "sentio_queue_wait_seconds";
pub const QUEUE_DEPTH: &str = "sentio_queue_depth";
pub const INFERENCE: &str = "sentio_inference_seconds";
pub const WINDOW_LATENCY: &str = "sentio_window_latency_seconds";
pub const ERRORS: &str = "sentio_errors_total";
pub const MODEL_PANICS: &str = "sentio_model_panics_total";
pub const WATCH_DROPPED: &str = "sentio_watch_events_dropped_total";
pub const MEDIA_STREAMS: &str = "sentio_media_streams_total";

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), &BATCH_BUCKETS)
                })
                .expect("bucket lists are non-empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding application's).
            let _ = metrics::set_global_recorder(recorder);
            describe();
            // Histograms buffer every sample until upkeep folds them into their buckets; a
            // recorder built by hand gets no upkeep task, so an unscraped server grew by every
            // window's latency (5 MB a minute at 1,280 streams, found by the soak).
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("sentio-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .expect("spawning the metrics upkeep thread");
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        MODEL_PANICS,
        "Forward passes that panicked; their windows failed with INTERNAL, the model thread went on."
    );
    describe_gauge!(ACTIVE_STREAMS, "Streams currently open.");
    describe_counter!(
        STREAMS,
        "Streams ended, by outcome (completed, limited, cancelled, error)."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; its labels name the server version and the loaded model."
    );
    describe_counter!(WINDOWS, "Windows analysed, by top emotion (or silence).");
    describe_histogram!(BATCH_SIZE, "Windows per model forward pass.");
    describe_histogram!(
        QUEUE_WAIT,
        Unit::Seconds,
        "Time a window waited in the batch queue."
    );
    describe_gauge!(QUEUE_DEPTH, "Windows waiting in the batch queue.");
    describe_histogram!(
        INFERENCE,
        Unit::Seconds,
        "Duration of one batched forward pass."
    );
    describe_histogram!(
        WINDOW_LATENCY,
        Unit::Seconds,
        "From a window's last sample arriving to its prediction being sent."
    );
    describe_counter!(
        ERRORS,
        "Requests and streams that ended in an error, by gRPC code."
    );
    describe_counter!(
        WATCH_DROPPED,
        "Watch events not published to NATS because its queue was full."
    );
    describe_counter!(
        MEDIA_STREAMS,
        "Telephony media-stream WebSockets, by how they ended (close code)."
    );
}

pub fn stream_opened() {
    gauge!(ACTIVE_STREAMS).increment(1.0);
}

pub fn stream_closed(outcome: super::outcome::Outcome) {
    gauge!(ACTIVE_STREAMS).decrement(1.0);
    counter!(STREAMS, "outcome" => outcome.label()).increment(1);
}

/// Microseconds of audio received. The metrics crate's counters are integers, and a
/// counter of seconds must be fractional, so this one is rendered by [`render`].
static AUDIO_RECEIVED_US: AtomicU64 = AtomicU64::new(0);

pub fn audio_received_us(us: u64) {
    AUDIO_RECEIVED_US.fetch_add(us, Ordering::Relaxed);
}

/// The Prometheus text page: every recorded metric, plus the audio-received counter.
pub fn render(handle: &PrometheusHandle) -> String {
    let seconds = AUDIO_RECEIVED_US.load(Ordering::Relaxed) as f64 / 1e6;
    format!(
        "{}# HELP {AUDIO_SECONDS} Seconds of audio received.\n# TYPE {AUDIO_SECONDS} counter\n{AUDIO_SECONDS} {seconds}\n",
        handle.render()
    )
}

pub fn build_info(model_id: &str) {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "model_id" => model_id.to_string())
        .set(1.0);
}

/// A model no longer given to new streams (`build_info` is 1 for the current one only).
pub fn build_info_retired(model_id: &str) {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "model_id" => model_id.to_string())
        .set(0.0);
}

pub fn window(emotion: &str) {
    counter!(WINDOWS, "emotion" => emotion.to_string()).increment(1);
}

pub fn batch(size: usize, took: Duration) {
    histogram!(BATCH_SIZE).record(size as f64);
    histogram!(INFERENCE).record(took.as_secs_f64());
}

pub fn queue_wait(waited: Duration) {
    histogram!(QUEUE_WAIT).record(waited.as_secs_f64());
}

pub fn queue_depth(depth: usize) {
    gauge!(QUEUE_DEPTH).set(depth as f64);
}

pub fn window_latency(latency: Duration) {
    histogram!(WINDOW_LATENCY).record(latency.as_secs_f64());
}

pub fn error(code: tonic::Code) {
    counter!(ERRORS, "code" => format!("{code:?}")).increment(1);
}

pub fn model_panic() {
    counter!(MODEL_PANICS).increment(1);
}

pub fn watch_event_dropped() {
    counter!(WATCH_DROPPED).increment(1);
}

pub fn media_stream_closed(close_code: u16) {
    counter!(MEDIA_STREAMS, "close_code" => close_code.to_string()).increment(1);
}
