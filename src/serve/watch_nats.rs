//! The watch hub over NATS (`--nats-url`): each stream's responses go to the subject
//! `sentio.watch.<stream id in hex>` (ids may hold characters NATS subjects reserve), and a
//! watch on any replica subscribes to it. Core NATS, no persistence: a watch sees what is
//! published after it subscribed, as in-process.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Code, Status};

use super::watch::{WatchEvent, WatchEvents};
use crate::proto::StreamEmotionsResponse;

/// Responses waiting to go to NATS; beyond this (NATS unreachable for a while), newer ones
/// are dropped and counted rather than held by the streams.
const PUBLISH_QUEUE: usize = 65_536;

const SUBJECT_PREFIX: &str = "sentio.watch";

/// A connection to NATS and the task that publishes to it in order.
pub struct NatsBus {
    client: async_nats::Client,
    queue: mpsc::Sender<(String, Bytes)>,
}

/// The subject of a stream id.
pub fn subject(stream_id: &str) -> String {
    let mut subject = String::with_capacity(SUBJECT_PREFIX.len() + 1 + 2 * stream_id.len());
    subject.push_str(SUBJECT_PREFIX);
    subject.push('.');
    for byte in stream_id.bytes() {
        subject.push_str(&format!("{byte:02x}"));
    }
    subject
}

/// An event on the wire: a tag byte, then the response's protobuf (0) or the end's status
/// code as a big-endian i32 and its message (1).
fn encode(event: &WatchEvent) -> Bytes {
    let mut buf = BytesMut::new();
    match event {
        WatchEvent::Message(message) => {
            buf.put_u8(0);
            message.encode(&mut buf).expect("BytesMut grows");
        }
        WatchEvent::Ended(code, text) => {
            buf.put_u8(1);
            buf.put_i32(*code as i32);
            buf.put_slice(text.as_bytes());
        }
    }
    buf.freeze()
}

fn decode(payload: &[u8]) -> Result<WatchEvent, Status> {
    let bad = || Status::internal("a malformed watch event came through NATS");
    match payload.split_first() {
        Some((0, message)) => StreamEmotionsResponse::decode(message)
            .map(WatchEvent::Message)
            .map_err(|_| bad()),
        Some((1, rest)) if rest.len() >= 4 => {
            let code = i32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
            let text = String::from_utf8_lossy(&rest[4..]).into_owned();
            Ok(WatchEvent::Ended(Code::from_i32(code), text))
        }
        _ => Err(bad()),
    }
}

impl NatsBus {
    /// Connects (retrying in the background if NATS is not up yet).
    pub async fn connect(url: &str) -> crate::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("sentio {}", env!("CARGO_PKG_VERSION")))
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| crate::Error::Server {
                what: "NATS connection",
                source: Box::new(e),
            })?;
        let (queue, mut pending) = mpsc::channel::<(String, Bytes)>(PUBLISH_QUEUE);
        let publisher = client.clone();
        tokio::spawn(async move {
            while let Some((subject, payload)) = pending.recv().await {
                if let Err(e) = publisher.publish(subject, payload).await {
                    tracing::warn!(error = %e, "a watch event was not published to NATS");
                }
            }
        });
        Ok(Self { client, queue })
    }

    pub fn publish(&self, stream_id: &str, event: &WatchEvent) {
        if self
            .queue
            .try_send((subject(stream_id), encode(event)))
            .is_err()
        {
            super::metrics::watch_event_dropped();
        }
    }

    /// Subscribes, and waits until NATS has the subscription (a flush), so that nothing
    /// published after this returns is missed.
    pub async fn subscribe(&self, stream_id: &str) -> Result<WatchEvents, Status> {
        let unavailable = |e: &dyn std::fmt::Display| Status::unavailable(format!("NATS: {e}"));
        let subscriber = self
            .client
            .subscribe(subject(stream_id))
            .await
            .map_err(|e| unavailable(&e))?;
        self.client.flush().await.map_err(|e| unavailable(&e))?;
        Ok(Box::pin(subscriber.map(|m| decode(&m.payload))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{StreamSummary, stream_emotions_response::Response};

    #[test]
    fn events_round_trip_and_subjects_are_safe() {
        let summary = WatchEvent::Message(StreamEmotionsResponse {
            response: Some(Response::Summary(StreamSummary {
                windows: 7,
                dominant_emotion: "sad".into(),
                ..Default::default()
            })),
        });
        let ended = WatchEvent::Ended(Code::InvalidArgument, "bad chunk".into());
        for event in [summary, ended] {
            assert_eq!(decode(&encode(&event)).unwrap(), event);
        }
        assert!(decode(&[7, 1]).is_err() && decode(&[]).is_err());
        assert_eq!(subject("MZ1:in.*>"), "sentio.watch.4d5a313a696e2e2a3e");
    }
}
