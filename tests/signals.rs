//! Signals to the real binary: SIGTERM under load drains every open stream (served until the
//! drain timeout, then each gets its in-flight windows and its summary, and the process exits
//! 0); SIGHUP reloads API keys; SIGSTOP, a server stalled while a client floods it with tiny
//! messages, does not cost that client its connection.

mod common;

use std::time::Duration;

use common::process::ServerProcess;
use common::*;
use sentio::proto::stream_emotions_response::Response;
use sentio::proto::{AudioEncoding, GetModelInfoRequest, StreamConfig};
use tokio_stream::wrappers::ReceiverStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_delivers_every_window_and_summary() {
    let mut server = ServerProcess::start(&["--drain-timeout-s", "2"]).await;
    let audio = speech_bytes();
    let config = StreamConfig {
        include_silence: true,
        ..config(AudioEncoding::PcmS16le, 16_000)
    };
    let (first_prediction, mut predicted) = tokio::sync::mpsc::channel::<()>(64);
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut client = server.client().await;
        let (audio, config, first_prediction) =
            (audio.clone(), config.clone(), first_prediction.clone());
        streams.push(tokio::spawn(async move {
            // A live call: 100 ms of audio every 100 ms, until the server ends the stream.
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let feeder = tokio::spawn(async move {
                tx.send(requests(config, &[], 1).remove(0)).await.unwrap();
                let mut ticks = tokio::time::interval(Duration::from_millis(100));
                for chunk in audio.chunks(3_200).cycle() {
                    ticks.tick().await;
                    let message = requests(Default::default(), chunk, chunk.len()).remove(1);
                    if tx.send(message).await.is_err() {
                        break;
                    }
                }
            });
            let mut inbound = client
                .stream_emotions(ReceiverStream::new(rx))
                .await
                .unwrap()
                .into_inner();
            let mut result = StreamResult::default();
            loop {
                match inbound.message().await {
                    Ok(Some(m)) => match m.response {
                        Some(Response::Prediction(p)) => {
                            if result.predictions.is_empty() {
                                first_prediction.send(()).await.unwrap();
                            }
                            result.predictions.push(p);
                        }
                        Some(Response::Summary(s)) => result.summary = Some(s),
                        _ => {}
                    },
                    Ok(None) => break,
                    Err(status) => {
                        result.status = Some(status);
                        break;
                    }
                }
            }
            feeder.abort();
            result
        }));
    }
    // Every stream is live and has had a prediction; then the operator stops the server.
    for _ in 0..20 {
        predicted.recv().await.unwrap();
    }
    server.signal("TERM");
    for stream in streams {
        let result = stream.await.unwrap();
        assert!(result.status.is_none(), "{:?}", result.status);
        let summary = result.summary.expect("a summary");
        assert_eq!(summary.end_reason, "server shutting down");
        // Every window the server cut was delivered, in order, none missing.
        assert_eq!(summary.windows, result.predictions.len() as u64);
        for (i, p) in result.predictions.iter().enumerate() {
            assert_eq!(p.window_index, i as u64);
        }
    }
    let status = server.wait_exit(Duration::from_secs(15)).await;
    assert!(status.expect("exited").success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_api_keys() {
    let dir = std::env::temp_dir().join(format!("sentio-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.txt");
    std::fs::write(&keys, "key-one\n").unwrap();
    let server = ServerProcess::start(&["--api-keys-file", keys.to_str().unwrap()]).await;
    let mut client = server.client().await;
    let mut call = async |key: &str| {
        let mut request = tonic::Request::new(GetModelInfoRequest {});
        let value = format!("Bearer {key}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
        client
            .get_model_info(request)
            .await
            .map(|_| ())
            .map_err(|s| s.code())
    };
    assert_eq!(call("key-one").await, Ok(()));
    assert_eq!(call("key-two").await, Err(tonic::Code::Unauthenticated));
    std::fs::write(&keys, "key-two\n").unwrap();
    server.signal("HUP");
    let mut reloaded = false;
    for _ in 0..100 {
        if call("key-two").await.is_ok() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "key-two was not accepted after SIGHUP");
    assert_eq!(call("key-one").await, Err(tonic::Code::Unauthenticated));
    let _ = std::fs::remove_dir_all(dir);
}

/// Calls that survive a stalled server: two streams on one connection send one-sample
/// messages (each its own tiny HTTP/2 DATA frame, as most gRPC stacks send them) while the
/// server is stopped (SIGSTOP) for 3 s, so thousands of frames are queued unread when it
/// resumes. h2 closes a connection whose unread small frames pass a budget tied to its
/// windows (GOAWAY ENHANCE_YOUR_CALM); with hyper's default windows this killed both calls.
/// Both must end normally, with every window of the audio they sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_keeps_a_connection_flooded_with_one_sample_messages() {
    const SAMPLES: usize = 80_000; // 5 s at 16 kHz: four windows with a 1 s hop
    let server = ServerProcess::start(&[]).await;
    let client = server.client().await;
    let audio = speech_bytes();
    let mut streams = Vec::new();
    for _ in 0..2 {
        let (mut client, audio) = (client.clone(), audio.clone());
        streams.push(tokio::spawn(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let feeder = tokio::spawn(async move {
                let config = config(AudioEncoding::PcmS16le, 16_000);
                tx.send(requests(config, &[], 1).remove(0)).await.unwrap();
                for (i, sample) in audio.chunks(2).cycle().take(SAMPLES).enumerate() {
                    let message = requests(Default::default(), sample, 2).remove(1);
                    if tx.send(message).await.is_err() {
                        break;
                    }
                    // Let the transport flush each message alone (tonic coalesces messages
                    // that are already queued into one frame).
                    if i % 2 == 0 {
                        std::thread::sleep(Duration::from_micros(5));
                        tokio::task::yield_now().await;
                    }
                }
            });
            let mut inbound = client
                .stream_emotions(ReceiverStream::new(rx))
                .await
                .unwrap()
                .into_inner();
            let mut result = StreamResult::default();
            loop {
                match inbound.message().await {
                    Ok(Some(m)) => match m.response {
                        Some(Response::Prediction(p)) => result.predictions.push(p),
                        Some(Response::Summary(s)) => result.summary = Some(s),
                        _ => {}
                    },
                    Ok(None) => break,
                    Err(status) => {
                        result.status = Some(status);
                        break;
                    }
                }
            }
            feeder.await.unwrap();
            result
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.signal("STOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.signal("CONT");
    for stream in streams {
        let result = stream.await.unwrap();
        assert!(
            result.status.is_none(),
            "stream failed: {:?}",
            result.status
        );
        let summary = result.summary.expect("a summary");
        assert_eq!(summary.audio_ms, 5_000);
        assert_eq!(summary.windows, result.predictions.len() as u64);
    }
}
