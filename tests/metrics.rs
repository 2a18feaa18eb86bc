//! The metrics endpoint agrees with what clients received (its own test binary, so no other
//! test's streams are counted).

mod common;

use common::*;
use sentio::proto::AudioEncoding;

fn value(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_clients_received() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.client().await;
    let audio = speech_bytes();
    let mut windows = 0;
    for _ in 0..3 {
        let result = run_stream(
            &mut client,
            requests(config(AudioEncoding::PcmS16le, 16_000), &audio, 8_000),
        )
        .await;
        assert!(result.status.is_none());
        windows += result.predictions.len();
    }
    let bad = run_stream(
        &mut client,
        requests(config(AudioEncoding::PcmS16le, 0), &[], 1),
    )
    .await;
    assert!(bad.status.is_some());
    let body = server.metrics().await;
    assert!(body.contains("200 OK"), "{body}");
    assert_eq!(
        value(&body, "sentio_windows_total{"),
        windows as f64,
        "{body}"
    );
    assert_eq!(
        value(&body, "sentio_streams_total{outcome=\"completed\"}"),
        3.0,
        "{body}"
    );
    assert_eq!(
        value(&body, "sentio_streams_total{outcome=\"error\"}"),
        1.0,
        "{body}"
    );
    assert_eq!(
        value(&body, "sentio_errors_total{code=\"InvalidArgument\"}"),
        1.0,
        "{body}"
    );
    assert_eq!(value(&body, "sentio_active_streams"), 0.0, "{body}");
    assert_eq!(
        value(&body, "sentio_audio_received_seconds_total"),
        19.5,
        "{body}"
    );
    let build_info = format!(
        "sentio_build_info{{version=\"{}\",model_id=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        sentio::model::Model::default_model(&candle_core::Device::Cpu)
            .unwrap()
            .card
            .id
    );
    assert!(
        body.contains(&build_info),
        "{build_info} missing from\n{body}"
    );
    // The process's own metrics, from the metrics-process collector.
    assert!(
        value(&body, "process_resident_memory_bytes") > 1e6,
        "{body}"
    );
    assert!(value(&body, "process_open_fds") > 0.0, "{body}");
    assert_eq!(
        value(&body, "sentio_window_latency_seconds_count"),
        windows as f64,
        "{body}"
    );
    assert!(value(&body, "sentio_batch_size_count") >= 1.0);
}
