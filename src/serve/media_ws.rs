//! The telephony media-stream connector (`--media-ws-addr`): Twilio Media Streams on a
//! WebSocket at `/twilio`. Each track of a call (inbound: the caller, outbound: the agent)
//! becomes a stream `<streamSid>:<track>` of 8 kHz mu-law, served like a gRPC stream
//! (admission, batching, drain) and watched with `WatchStream`. A protocol violation closes
//! that WebSocket with a close code (`twilio::close`) and a logged reason; its streams end
//! as cancelled, and nothing else is affected.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::auth::ApiKeys;
use super::launch::{Responses, StreamLauncher};
use super::metrics;
use super::twilio::{Action, Call, ProtocolError, close};
use crate::proto::{
    AudioEncoding, StreamConfig, StreamEmotionsRequest, stream_emotions_request::Request,
};

/// Twilio's messages are under 1 KB (a `start` with custom parameters a few KB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A track's requests, as its session reads them.
type TrackSender = mpsc::Sender<Result<StreamEmotionsRequest, Status>>;

pub struct MediaConnector {
    pub launcher: Arc<StreamLauncher>,
    pub keys: Option<Arc<ApiKeys>>,
}

/// Serves the connector on its own listener.
pub fn serve(listener: TcpListener, connector: Arc<MediaConnector>) {
    let app = axum::Router::new()
        .route("/twilio", axum::routing::get(upgrade))
        .with_state(connector);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "media-stream endpoint stopped");
        }
    });
}

#[derive(Deserialize)]
struct Params {
    /// An API key, when the server requires one (or in `start.customParameters.apiKey`).
    key: Option<String>,
}

async fn upgrade(
    State(connector): State<Arc<MediaConnector>>,
    Query(params): Query<Params>,
    ws: WebSocketUpgrade,
) -> Response {
    if connector.launcher.ctx.draining.is_cancelled() {
        let reply = "the server is draining; connect to another instance\n";
        return (http::StatusCode::SERVICE_UNAVAILABLE, reply).into_response();
    }
    let authorized = match (&connector.keys, &params.key) {
        (None, _) => true,
        (Some(keys), Some(key)) if keys.check_token(key).is_ok() => true,
        (Some(_), Some(_)) => {
            return (http::StatusCode::UNAUTHORIZED, "invalid API key\n").into_response();
        }
        (Some(_), None) => false,
    };
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let span = tracing::info_span!("media_stream", stream_sid = tracing::field::Empty);
            let _ =
                tracing::Instrument::instrument(serve_call(socket, connector, authorized), span)
                    .await;
        })
}

/// One WebSocket: its messages until `stop`, a violation, a lost connection or shutdown.
async fn serve_call(mut socket: WebSocket, connector: Arc<MediaConnector>, authorized: bool) {
    let mut tracks = Vec::new();
    let end = read_call(&mut socket, &connector, authorized, &mut tracks).await;
    let (code, reason) = match &end {
        Some(ProtocolError { code, reason }) => (*code, reason.as_str()),
        None => (close::GOING_AWAY, "connection lost"),
    };
    if code == close::NORMAL {
        tracing::info!("media stream stopped");
    } else {
        tracing::info!(close_code = code, reason, "media stream closed");
        // The streams did not end as the call did: their watchers get CANCELLED.
        for track in &tracks {
            let _ = track
                .send(Err(Status::cancelled(format!(
                    "media stream closed: {reason}"
                ))))
                .await;
        }
    }
    drop(tracks);
    metrics::media_stream_closed(code);
    if end.is_some() {
        let frame = CloseFrame {
            code,
            reason: truncate(reason, 120).into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
}

/// Reads the call's messages, opening its tracks' streams into `tracks`; the close it ends
/// with, or `None` if the connection was lost.
async fn read_call(
    socket: &mut WebSocket,
    connector: &MediaConnector,
    mut authorized: bool,
    tracks: &mut Vec<TrackSender>,
) -> Option<ProtocolError> {
    let ctx = &connector.launcher.ctx;
    let idle = Duration::from_secs(ctx.config.idle_timeout_s.max(1));
    let mut call = Call::default();
    loop {
        let message = tokio::select! {
            message = tokio::time::timeout(idle, socket.recv()) => message,
            _ = ctx.shutdown.cancelled() => return Some(closing(close::GOING_AWAY, "the server is shutting down")),
        };
        let text = match message {
            Err(_) => {
                let reason = format!("no message within {} s", idle.as_secs());
                return Some(closing(close::POLICY, &reason));
            }
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return None,
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(Message::Binary(_)))) => {
                return Some(closing(
                    close::UNSUPPORTED,
                    "a binary frame: Twilio sends JSON text",
                ));
            }
            Ok(Some(Ok(_))) => continue,
        };
        let action = match call.handle(text.as_str()) {
            Ok(action) => action,
            Err(e) => return Some(e),
        };
        match action {
            Action::None => {}
            Action::Stop => return Some(closing(close::NORMAL, "stop")),
            Action::Audio { track, mulaw } => {
                let audio = StreamEmotionsRequest {
                    request: Some(Request::Audio(mulaw)),
                };
                if tracks[track].send(Ok(audio)).await.is_err() {
                    // The stream ended on the server's side (a limit, or the drain timeout).
                    return Some(closing(
                        close::GOING_AWAY,
                        "the track's stream was ended by the server",
                    ));
                }
            }
            Action::Start {
                stream_sid,
                call_sid,
                tracks: names,
                api_key,
            } => {
                if !authorized {
                    let valid = connector.keys.as_ref().zip(api_key.as_deref());
                    if valid.is_none_or(|(keys, key)| keys.check_token(key).is_err()) {
                        return Some(closing(
                            close::POLICY,
                            "no valid API key (URL `key` or custom parameter `apiKey`)",
                        ));
                    }
                    authorized = true;
                }
                tracing::Span::current().record("stream_sid", stream_sid.as_str());
                tracing::info!(call_sid, tracks = ?names, "media stream started");
                for name in names {
                    match open_track(&connector.launcher, &format!("{stream_sid}:{name}")) {
                        Ok(sender) => tracks.push(sender),
                        Err(status) => {
                            return Some(closing(close::TRY_AGAIN_LATER, status.message()));
                        }
                    }
                }
            }
        }
    }
}

/// Starts one track's stream and a task that takes its responses (they reach watchers on
/// the way).
fn open_track(launcher: &StreamLauncher, stream_id: &str) -> Result<TrackSender, Status> {
    let (sender, requests) = mpsc::channel(8);
    let config = StreamConfig {
        encoding: AudioEncoding::Mulaw as i32,
        sample_rate_hz: 8000,
        channels: 1,
        stream_id: stream_id.to_string(),
        ..Default::default()
    };
    let first = StreamEmotionsRequest {
        request: Some(Request::Config(config)),
    };
    sender.try_send(Ok(first)).expect("a new channel has room");
    let responses: Responses = launcher.open(ReceiverStream::new(requests), None)?;
    tokio::spawn(async move {
        let mut responses = responses;
        while let Some(response) = responses.next().await {
            if let Err(status) = response {
                tracing::info!(%status, "a media track's stream ended with an error");
            }
        }
    });
    Ok(sender)
}

/// How the connection ends: its close code and reason (`stop` included).
fn closing(code: u16, reason: &str) -> ProtocolError {
    ProtocolError {
        code,
        reason: reason.to_string(),
    }
}

/// At most `max` bytes, on a character boundary (a close frame's reason is at most 123).
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
