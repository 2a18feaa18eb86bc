//! Watching streams someone else sends (`WatchStream`): every stream's responses pass a
//! [`Tapped`] wrapper on their way to the sender, which publishes them by stream id to the
//! [`WatchHub`]; watchers subscribe by id. On one machine the hub is an in-process map of
//! broadcast channels; with `--nats-url` every replica publishes to NATS (one subject per
//! stream id) and watches come from there, so the watcher and the stream may be on
//! different replicas.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::broadcast;
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Status};

use super::watch_nats::NatsBus;
use crate::proto::{StreamEmotionsResponse, stream_emotions_response::Response};

/// Messages a slow watcher may fall behind by before its watch ends with DATA_LOSS (about
/// four minutes of one-second windows).
const WATCH_BUFFER: usize = 256;

/// What watchers of a stream receive.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    /// A message the stream's sender got.
    Message(StreamEmotionsResponse),
    /// The stream ended without a summary: the sender's status (CANCELLED if it went away).
    Ended(Code, String),
}

/// The watchers' side of every stream of this server.
pub struct WatchHub {
    local: Mutex<HashMap<String, broadcast::Sender<WatchEvent>>>,
    /// Local subscriptions open, so that publishing skips the map when nobody watches.
    local_watchers: AtomicUsize,
    nats: Option<NatsBus>,
}

/// A watch's events, ending after the stream's summary or end.
pub type WatchEvents = Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send>>;

impl WatchHub {
    /// In-process watching only.
    pub fn local() -> Self {
        Self {
            local: Mutex::new(HashMap::new()),
            local_watchers: AtomicUsize::new(0),
            nats: None,
        }
    }

    /// Watching through NATS: every replica sharing the server sees every stream.
    pub fn with_nats(nats: NatsBus) -> Self {
        Self {
            nats: Some(nats),
            ..Self::local()
        }
    }

    /// Whether anyone may receive events: NATS (other replicas) or a local watch.
    pub fn wants_events(&self) -> bool {
        self.nats.is_some() || self.local_watchers.load(Ordering::Relaxed) > 0
    }

    pub fn publish(&self, stream_id: &str, event: WatchEvent) {
        if let Some(nats) = &self.nats {
            nats.publish(stream_id, &event);
            return;
        }
        if self.local_watchers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut local = self.local.lock().expect("watch map lock");
        if let Some(sender) = local.get(stream_id)
            && sender.send(event).is_err()
        {
            // Every watcher of this id has gone.
            local.remove(stream_id);
        }
    }

    /// The events of `stream_id` from now on: until its summary, its end, or (a stream that
    /// has not started) until the watcher cancels.
    pub async fn subscribe(self: &Arc<Self>, stream_id: &str) -> Result<WatchEvents, Status> {
        let events: WatchEvents = match &self.nats {
            Some(nats) => nats.subscribe(stream_id).await?,
            None => {
                let receiver = {
                    let mut local = self.local.lock().expect("watch map lock");
                    let sender = local
                        .entry(stream_id.to_string())
                        .or_insert_with(|| broadcast::channel(WATCH_BUFFER).0);
                    sender.subscribe()
                };
                let guard = LocalWatcher::new(self.clone(), stream_id);
                let events = tokio_stream::wrappers::BroadcastStream::new(receiver).map(move |e| {
                    let _keep = &guard;
                    e.map_err(|lagged| {
                        Status::data_loss(format!("the watcher fell behind the stream: {lagged}"))
                    })
                });
                Box::pin(events)
            }
        };
        Ok(Box::pin(UntilEnd {
            events,
            done: false,
        }))
    }
}

/// Counts a local subscription while it lives, and drops its id's channel with the last
/// (dropped after the subscription's receiver).
struct LocalWatcher(Arc<WatchHub>, String);

impl LocalWatcher {
    fn new(hub: Arc<WatchHub>, stream_id: &str) -> Self {
        hub.local_watchers.fetch_add(1, Ordering::Relaxed);
        Self(hub, stream_id.to_string())
    }
}

impl Drop for LocalWatcher {
    fn drop(&mut self) {
        self.0.local_watchers.fetch_sub(1, Ordering::Relaxed);
        let mut local = self.0.local.lock().expect("watch map lock");
        if local.get(&self.1).is_some_and(|s| s.receiver_count() == 0) {
            local.remove(&self.1);
        }
    }
}

/// Ends a watch right after the summary, the stream's end or an error (the channel
/// itself stays open for other streams of the id).
struct UntilEnd {
    events: WatchEvents,
    done: bool,
}

impl Stream for UntilEnd {
    type Item = Result<WatchEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let polled = self.events.as_mut().poll_next(cx);
        if let Poll::Ready(Some(event)) = &polled {
            self.done = match event {
                Ok(WatchEvent::Message(m)) => matches!(m.response, Some(Response::Summary(_))),
                Ok(WatchEvent::Ended(..)) | Err(_) => true,
            };
        }
        polled
    }
}

/// A stream's responses on their way to its sender, published to the hub as they pass.
/// The stream id is learnt from its `StreamStarted`; a stream that ends without a summary
/// or an error status (its sender went away) is published as ended with CANCELLED.
pub struct Tapped<S> {
    inner: S,
    hub: Arc<WatchHub>,
    stream_id: Option<String>,
    ended: bool,
}

impl<S> Tapped<S> {
    pub fn new(inner: S, hub: Arc<WatchHub>) -> Self {
        Self {
            inner,
            hub,
            stream_id: None,
            ended: false,
        }
    }

    fn publish(&mut self, item: &Result<StreamEmotionsResponse, Status>) {
        if let Ok(StreamEmotionsResponse {
            response: Some(Response::Started(started)),
        }) = item
        {
            self.stream_id = Some(started.stream_id.clone());
        }
        self.ended |= match item {
            Ok(message) => matches!(message.response, Some(Response::Summary(_))),
            Err(_) => true,
        };
        // Nobody watching: no copy of the message.
        let Some(id) = self
            .stream_id
            .as_deref()
            .filter(|_| self.hub.wants_events())
        else {
            return;
        };
        let event = match item {
            Ok(message) => WatchEvent::Message(message.clone()),
            Err(status) => WatchEvent::Ended(status.code(), status.message().to_string()),
        };
        self.hub.publish(id, event);
    }
}

impl<S> Stream for Tapped<S>
where
    S: Stream<Item = Result<StreamEmotionsResponse, Status>> + Unpin,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(item)) = &polled {
            self.publish(item);
        }
        polled
    }
}

impl<S> Drop for Tapped<S> {
    fn drop(&mut self) {
        if let (Some(id), false) = (&self.stream_id, self.ended) {
            let event = WatchEvent::Ended(Code::Cancelled, "the stream's sender went away".into());
            self.hub.publish(id, event);
        }
    }
}
