//! A Twilio Media Streams client (a real WebSocket) and a `WatchStream` watcher, for the
//! connector's tests.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use sentio::audio::pcm::encode;
use sentio::audio::{SampleFormat, StreamResampler, decode_path};
use sentio::proto::WatchStreamRequest;
use sentio::proto::emotion_recognizer_client::EmotionRecognizerClient;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tonic::transport::Channel;

use super::{StreamResult, fixture};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) const SID: &str = "MZ18ad3ab5a668481ce02b83e7395059f0";

pub(crate) fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// 10 s of 8 kHz mu-law: the caller is the long speech fixture, the agent another clip.
pub(crate) fn track_audio(name: &str) -> Vec<u8> {
    let speech = decode_path(&fixture(name)).unwrap().samples;
    let looped: Vec<f32> = speech.iter().cycle().take(160_000).copied().collect();
    let narrow = StreamResampler::resample_all(16_000, 8_000, &looped).unwrap();
    encode(&narrow, SampleFormat::MuLaw)
}

pub(crate) async fn connect(addr: SocketAddr, query: &str) -> Result<Socket, String> {
    let url = format!("ws://{addr}/twilio{query}");
    for _ in 0..100 {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((socket, _)) => return Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Io(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("the connector never listened".into())
}

pub(crate) fn start_message(sid: &str, tracks: &str, custom: &str) -> String {
    format!(
        r#"{{"event":"start","sequenceNumber":"1","start":{{"accountSid":"AC1","streamSid":"{sid}","callSid":"CA1","tracks":{tracks},"customParameters":{{{custom}}},"mediaFormat":{{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}},"streamSid":"{sid}"}}"#
    )
}

pub(crate) fn media_message(sid: &str, track: &str, chunk: usize, mulaw: &[u8]) -> String {
    let payload = base64::engine::general_purpose::STANDARD.encode(mulaw);
    format!(
        r#"{{"event":"media","sequenceNumber":"{chunk}","media":{{"track":"{track}","chunk":"{chunk}","timestamp":"{}","payload":"{payload}"}},"streamSid":"{sid}"}}"#,
        (chunk - 1) * 20
    )
}

pub(crate) async fn send(socket: &mut Socket, text: String) {
    socket.send(Message::text(text)).await.unwrap();
}

/// The close code the server ends the WebSocket with.
pub(crate) async fn close_code(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) | Err(_) => return None,
        }
    }
}

/// A watch of `stream_id`, open (subscribed) when this returns.
pub(crate) async fn watch(
    client: &mut EmotionRecognizerClient<Channel>,
    stream_id: &str,
) -> tokio::task::JoinHandle<StreamResult> {
    let request = WatchStreamRequest {
        stream_id: stream_id.into(),
    };
    let mut events = client.watch_stream(request).await.unwrap().into_inner();
    tokio::spawn(async move {
        let mut result = StreamResult::default();
        loop {
            match events.message().await {
                Ok(Some(message)) => result.add(message),
                Ok(None) => break,
                Err(status) => {
                    result.status = Some(status);
                    break;
                }
            }
        }
        result
    })
}

/// The whole call: start, 20 ms frames of each track, a mark, stop.
pub(crate) async fn twilio_call(socket: &mut Socket, sid: &str, inbound: &[u8], outbound: &[u8]) {
    send(
        socket,
        r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.into(),
    )
    .await;
    send(socket, start_message(sid, r#"["inbound","outbound"]"#, "")).await;
    for (i, (a, b)) in inbound.chunks(160).zip(outbound.chunks(160)).enumerate() {
        send(socket, media_message(sid, "inbound", i + 1, a)).await;
        send(socket, media_message(sid, "outbound", i + 1, b)).await;
    }
    let mark = format!(
        r#"{{"event":"mark","sequenceNumber":"9","streamSid":"{sid}","mark":{{"name":"x"}}}}"#
    );
    send(socket, mark).await;
    let stop = format!(
        r#"{{"event":"stop","sequenceNumber":"9","streamSid":"{sid}","stop":{{"callSid":"CA1"}}}}"#
    );
    send(socket, stop).await;
}
