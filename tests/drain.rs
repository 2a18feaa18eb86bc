//! Draining on a real server: open calls go on being served after SIGTERM while new ones
//! are refused, calls still open at the drain timeout get their summary, and readiness
//! turns unavailable as the drain starts.

mod common;

use common::*;
use sentio::proto::emotion_recognizer_client::EmotionRecognizerClient;
use sentio::proto::stream_emotions_response::Response;
use sentio::proto::{AudioEncoding, EndReason};

/// Opens a stream, sends `audio` and waits for its first `predictions` predictions; the
/// request side stays open through the returned sender.
async fn open_call_answered(
    server: &TestServer,
    audio: &[u8],
    predictions: usize,
) -> (
    tokio::sync::mpsc::Sender<sentio::proto::StreamEmotionsRequest>,
    tonic::Streaming<sentio::proto::StreamEmotionsResponse>,
    EmotionRecognizerClient<tonic::transport::Channel>,
) {
    let mut client = server.client().await;
    let first = requests(config(AudioEncoding::PcmS16le, 16_000), audio, 3_200);
    let (tx, mut inbound) = open_stream(&mut client, first).await;
    let mut seen = 0;
    while seen < predictions {
        if let Some(Response::Prediction(_)) = inbound.message().await.unwrap().unwrap().response {
            seen += 1;
        }
    }
    (tx, inbound, client)
}

/// Everything the stream still sends: its predictions and summary.
async fn rest_of(
    inbound: &mut tonic::Streaming<sentio::proto::StreamEmotionsResponse>,
) -> (
    Vec<sentio::proto::WindowPrediction>,
    sentio::proto::StreamSummary,
) {
    let (mut predictions, mut summary) = (Vec::new(), None);
    while let Some(message) = inbound.message().await.unwrap() {
        match message.response {
            Some(Response::Prediction(p)) => predictions.push(p),
            Some(Response::Summary(s)) => summary = Some(s),
            _ => {}
        }
    }
    (predictions, summary.expect("a summary"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_and_a_drain_lets_open_calls_finish() {
    let mut server = TestServer::start(|c| c.drain_timeout_s = 60).await;
    let mut health = server.health().await;
    for service in ["", "sentio.v1.EmotionRecognizer"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            status.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    // A call in progress: 2.5 s sent, its first window answered, the request side open.
    let speech = speech_bytes();
    let (tx, mut inbound, mut other) = open_call_answered(&server, &speech[..80_000], 1).await;
    server.shutdown();

    // New calls on the call's own connection are refused (GOAWAY, or the server's own
    // UNAVAILABLE in the moment before it)...
    let mut refused = None;
    for _ in 0..100 {
        let (_new_tx, new_rx) = tokio::sync::mpsc::channel(1);
        match other
            .stream_emotions(tokio_stream::wrappers::ReceiverStream::new(new_rx))
            .await
        {
            Err(status) => {
                refused = Some(status);
                break;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let refused = refused.expect("new streams are refused while draining");
    // The server's own refusal is UNAVAILABLE; after the GOAWAY, tonic's client refuses the
    // stream itself and, depending on the race, reports UNAVAILABLE, CANCELLED ("connection
    // closed" for new streams) or INTERNAL carrying the GOAWAY itself (seen in a fresh-clone
    // CI run). Either way the stream was never served.
    let after_goaway = refused.code() == tonic::Code::Internal
        && format!("{refused:?}").contains("GoAway(b\"\", NO_ERROR, Remote)");
    assert!(
        matches!(
            refused.code(),
            tonic::Code::Unavailable | tonic::Code::Cancelled
        ) || after_goaway,
        "{refused:?}"
    );

    // ...while the open call goes on: audio sent after SIGTERM is still answered.
    for message in requests(Default::default(), &speech[80_000..208_000], 3_200)
        .into_iter()
        .skip(1)
    {
        tx.send(message).await.unwrap();
    }
    drop(tx);
    let (predictions, summary) = rest_of(&mut inbound).await;
    assert_eq!(summary.reason(), EndReason::Completed);
    assert_eq!(summary.audio_ms, 6500);
    // Windows 0..=5 (the last a 1.5 s tail); window 0 was read before the drain.
    assert_eq!(summary.windows, 6);
    let indices: Vec<u64> = predictions.iter().map(|p| p.window_index).collect();
    assert_eq!(indices, (1..6).collect::<Vec<_>>());
    server.task.await.unwrap().unwrap();
}

/// A call still open when the drain timeout passes gets its in-flight windows and a
/// summary that says why it ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_open_past_the_drain_timeout_end_with_their_summary() {
    let mut server = TestServer::start(|c| c.drain_timeout_s = 1).await;
    let (tx, mut inbound, _) = open_call_answered(&server, &speech_bytes()[..112_000], 2).await;
    server.shutdown();
    let (predictions, summary) = rest_of(&mut inbound).await;
    assert_eq!(summary.end_reason, "server shutting down");
    assert_eq!(summary.reason(), EndReason::ServerShutdown);
    assert_eq!(summary.audio_ms, 3500);
    // Windows at 0 and 1 s are whole; the 1.5 s tail from 2 s is flushed at the timeout.
    assert_eq!((predictions.len() + 2, summary.windows), (3, 3));
    drop(tx);
    server.task.await.unwrap().unwrap();
}

/// `/healthz` answers while the process runs; `/readyz` is 200 while serving and 503 from the
/// moment a drain starts, while open streams are still being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_unavailable_when_the_drain_starts() {
    let mut server = TestServer::start(|c| c.drain_timeout_s = 30).await;
    let status_line = |response: String| response.lines().next().unwrap_or("").to_string();
    assert_eq!(
        status_line(http_get(server.metrics_addr, "/healthz").await),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        status_line(http_get(server.metrics_addr, "/readyz").await),
        "HTTP/1.1 200 OK"
    );
    // A call in progress keeps the server draining (not stopped) while readiness is checked.
    let mut client = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(requests(config(AudioEncoding::PcmS16le, 16_000), &[], 1).remove(0))
        .await
        .unwrap();
    let mut inbound = client
        .stream_emotions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    inbound.message().await.unwrap().expect("stream started");
    server.shutdown();
    let mut ready = String::new();
    for _ in 0..100 {
        ready = status_line(http_get(server.metrics_addr, "/readyz").await);
        if ready != "HTTP/1.1 200 OK" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ready, "HTTP/1.1 503 Service Unavailable");
    assert_eq!(
        status_line(http_get(server.metrics_addr, "/healthz").await),
        "HTTP/1.1 200 OK"
    );
    drop(tx);
    while inbound.message().await.unwrap().is_some() {}
    server.task.await.unwrap().unwrap();
}
