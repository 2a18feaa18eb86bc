//! The telephony media-stream connector and `WatchStream` on 127.0.0.1 with the shipped
//! model: a scripted Twilio call (connected, start, 10 s of 20 ms mu-law frames per track,
//! mark, stop) from a real WebSocket client, watched per track; each malformed message
//! closes its WebSocket with its code while another call goes on; API keys; watching a
//! gRPC stream.

mod common;

use std::time::Duration;

use common::twilio::*;
use common::*;
use futures_util::SinkExt;
use sentio::proto::{AudioEncoding, WatchStreamRequest};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_call_is_watched_track_by_track_with_every_window_and_the_summary() {
    let media = free_addr();
    let server = TestServer::start(|c| c.media_ws_addr = Some(media)).await;
    let mut client = server.client().await;
    let (inbound, outbound) = (
        track_audio("speech_long_16k.wav"),
        track_audio("speech_16k.wav"),
    );
    let watchers = [
        watch(&mut client, &format!("{SID}:inbound")).await,
        watch(&mut client, &format!("{SID}:outbound")).await,
    ];
    let mut socket = connect(media, "").await.unwrap();
    twilio_call(&mut socket, SID, &inbound, &outbound).await;
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Normal));
    for (watcher, audio) in watchers.into_iter().zip([&inbound, &outbound]) {
        let watched = watcher.await.unwrap();
        assert!(watched.status.is_none(), "{:?}", watched.status);
        assert!(watched.started);
        let summary = watched.summary.expect("the watcher gets the summary");
        assert_eq!(summary.audio_ms, 10_000);
        assert_eq!(watched.predictions.len() as u64, summary.speech_windows);
        assert!(summary.speech_windows >= 8, "{summary:?}");
        // The same audio streamed over gRPC gives the same windows.
        let direct = run_stream(
            &mut client,
            requests(config(AudioEncoding::Mulaw, 8_000), audio, 160),
        )
        .await;
        assert_eq!(watched.predictions.len(), direct.predictions.len());
        for (w, d) in watched.predictions.iter().zip(&direct.predictions) {
            assert_eq!(
                (w.window_index, w.emotion.as_str()),
                (d.window_index, d.emotion.as_str())
            );
            for (a, b) in w.scores.iter().zip(&d.scores) {
                assert!((a.probability - b.probability).abs() < 1e-4);
            }
        }
        assert_eq!(
            summary.dominant_emotion,
            direct.summary.unwrap().dominant_emotion
        );
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"sentio_media_streams_total{close_code="1000"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_malformed_message_closes_its_websocket_while_another_call_goes_on() {
    let media = free_addr();
    let server = TestServer::start(|c| c.media_ws_addr = Some(media)).await;
    let mut client = server.client().await;
    let healthy_sid = "MZhealthy";
    let watcher = watch(&mut client, &format!("{healthy_sid}:inbound")).await;
    let mut healthy = connect(media, "").await.unwrap();
    send(
        &mut healthy,
        start_message(healthy_sid, r#"["inbound"]"#, ""),
    )
    .await;
    let audio = track_audio("speech_long_16k.wav");
    let mut frames = audio.chunks(160).enumerate();
    let start = start_message("MZbad", r#"["inbound"]"#, "");
    let scripts: Vec<(Vec<String>, CloseCode)> = vec![
        (vec!["{not json".into()], CloseCode::Invalid),
        (vec![r#"{"event":"party"}"#.into()], CloseCode::Unsupported),
        (
            vec![media_message("MZbad", "inbound", 1, &[0xff; 160])],
            CloseCode::Policy,
        ),
        (
            vec![
                start.clone(),
                media_message("MZbad", "inbound", 1, &[0xff; 160])
                    .replace("\"payload\":\"", "\"payload\":\"!!"),
            ],
            CloseCode::Invalid,
        ),
        (
            vec![
                start.clone(),
                media_message("MZbad", "inbound", 2, &[0xff; 160]),
            ],
            CloseCode::Policy,
        ),
        (vec![start.clone(), start.clone()], CloseCode::Policy),
    ];
    for (messages, expected) in scripts {
        // The healthy call sends a second of audio between each bad one.
        for (i, frame) in frames.by_ref().take(50) {
            send(
                &mut healthy,
                media_message(healthy_sid, "inbound", i + 1, frame),
            )
            .await;
        }
        let mut bad = connect(media, "").await.unwrap();
        for message in &messages {
            send(&mut bad, message.clone()).await;
        }
        assert_eq!(close_code(&mut bad).await, Some(expected), "{messages:?}");
    }
    let mut bad = connect(media, "").await.unwrap();
    bad.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(close_code(&mut bad).await, Some(CloseCode::Unsupported));
    for (i, frame) in frames {
        send(
            &mut healthy,
            media_message(healthy_sid, "inbound", i + 1, frame),
        )
        .await;
    }
    send(
        &mut healthy,
        format!(r#"{{"event":"stop","streamSid":"{healthy_sid}"}}"#),
    )
    .await;
    assert_eq!(close_code(&mut healthy).await, Some(CloseCode::Normal));
    let watched = watcher.await.unwrap();
    assert!(watched.status.is_none(), "{:?}", watched.status);
    assert_eq!(watched.summary.unwrap().audio_ms, 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_and_watchers_need_an_api_key_when_the_server_does() {
    let keys = std::env::temp_dir().join(format!("sentio-media-keys-{}", std::process::id()));
    std::fs::write(&keys, "k-media\n").unwrap();
    let media = free_addr();
    let path = keys.clone();
    let server = TestServer::start(move |c| {
        c.media_ws_addr = Some(media);
        c.api_keys_file = Some(path);
    })
    .await;
    let refused = connect(media, "?key=wrong").await.unwrap_err();
    assert!(refused.contains("401"), "{refused}");
    let mut anonymous = connect(media, "").await.unwrap();
    send(
        &mut anonymous,
        start_message("MZanon", r#"["inbound"]"#, ""),
    )
    .await;
    assert_eq!(close_code(&mut anonymous).await, Some(CloseCode::Policy));
    let mut client = server.client().await;
    let request = WatchStreamRequest {
        stream_id: "MZkeyed:inbound".into(),
    };
    let status = client.watch_stream(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    // A key in the URL, or in the start message's custom parameters.
    let mut by_url = connect(media, "?key=k-media").await.unwrap();
    let mut by_parameter = connect(media, "").await.unwrap();
    send(
        &mut by_parameter,
        start_message("MZkeyed", r#"["inbound"]"#, r#""apiKey":"k-media""#),
    )
    .await;
    send(&mut by_url, start_message("MZurl", r#"["inbound"]"#, "")).await;
    for (socket, sid) in [(&mut by_url, "MZurl"), (&mut by_parameter, "MZkeyed")] {
        send(socket, media_message(sid, "inbound", 1, &[0xff; 160])).await;
        send(socket, format!(r#"{{"event":"stop","streamSid":"{sid}"}}"#)).await;
        assert_eq!(close_code(socket).await, Some(CloseCode::Normal));
    }
    std::fs::remove_file(&keys).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_stream_is_watched_and_a_cancelled_one_ends_its_watch() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.client().await;
    eprintln!("watching");
    let watcher = tokio::time::timeout(Duration::from_secs(5), watch(&mut client, "call-42"))
        .await
        .expect("watch opens");
    eprintln!("watch open");
    let stream_config = sentio::proto::StreamConfig {
        stream_id: "call-42".into(),
        ..config(AudioEncoding::PcmS16le, 16_000)
    };
    let sent = run_stream(&mut client, requests(stream_config, &speech_bytes(), 3200)).await;
    eprintln!("sent {:?}", sent.summary);
    let watched = tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("watch ends")
        .unwrap();
    // The very messages the sender got.
    assert!(watched.started && !sent.predictions.is_empty());
    assert_eq!(watched.predictions, sent.predictions);
    assert_eq!(watched.summary, sent.summary);
    // A sender that goes away ends its watchers' watch with CANCELLED.
    let watcher = watch(&mut client, "call-43").await;
    let stream_config = sentio::proto::StreamConfig {
        stream_id: "call-43".into(),
        ..config(AudioEncoding::PcmS16le, 16_000)
    };
    let first = requests(stream_config, &speech_bytes()[..64_000], 3200);
    let (tx, mut responses) = open_stream(&mut client, first).await;
    responses.message().await.unwrap();
    drop(responses);
    drop(tx);
    let watched = tokio::time::timeout(Duration::from_secs(30), watcher)
        .await
        .expect("the watch ends")
        .unwrap();
    assert_eq!(
        watched.status.map(|s| s.code()),
        Some(tonic::Code::Cancelled)
    );
}
