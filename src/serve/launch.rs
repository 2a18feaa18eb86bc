//! Opening a stream, for the gRPC service and the telephony connector alike: admission
//! (draining, the stream limit), a session task the drain waits for, and the tap that
//! publishes its responses to watchers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::task::TaskTracker;
use tonic::Status;
use tracing::Instrument;

use super::metrics;
use super::session::{self, Inbound, SessionContext};
use super::status::counted;
use super::watch::{Tapped, WatchHub};
use crate::proto::StreamEmotionsResponse;

/// A stream's responses, as its sender receives them.
pub type Responses = Tapped<ReceiverStream<Result<StreamEmotionsResponse, Status>>>;

pub struct StreamLauncher {
    pub ctx: Arc<SessionContext>,
    pub streams: Arc<Semaphore>,
    pub tracker: TaskTracker,
    pub next_id: AtomicU64,
    pub watch: Arc<WatchHub>,
}

impl StreamLauncher {
    /// Starts a session on `inbound`, or refuses it: UNAVAILABLE (with gRPC's retry
    /// pushback) while draining, RESOURCE_EXHAUSTED at the stream limit.
    ///
    /// `trace_context` is the call's gRPC metadata: its `traceparent`, if any, becomes the
    /// parent of the stream's span.
    pub fn open(
        &self,
        inbound: impl Inbound + 'static,
        trace_context: Option<&tonic::metadata::MetadataMap>,
    ) -> Result<Responses, Status> {
        if self.ctx.draining.is_cancelled() {
            // gRPC's retry pushback: a client retry policy may retry at once, elsewhere.
            let mut status =
                Status::unavailable("the server is draining; reconnect to another instance");
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", "0".parse().expect("ascii"));
            return Err(counted(status));
        }
        let permit = self.streams.clone().try_acquire_owned().map_err(|_| {
            counted(Status::resource_exhausted(format!(
                "the server is at its limit of {} concurrent streams",
                self.ctx.config.max_streams
            )))
        })?;
        let (tx, rx) = mpsc::channel(self.ctx.config.max_windows_in_flight.max(1) + 2);
        let ctx = self.ctx.clone();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        metrics::stream_opened();
        let span = tracing::info_span!(
            "stream",
            stream_id = tracing::field::Empty,
            encoding = tracing::field::Empty,
            rate = tracing::field::Empty
        );
        if let Some(metadata) = trace_context {
            crate::telemetry::adopt_remote_parent(&span, metadata);
        }
        self.tracker.spawn(
            async move {
                let outcome = session::run(ctx, inbound, tx, id).await;
                metrics::stream_closed(outcome);
                drop(permit);
            }
            .instrument(span),
        );
        Ok(Tapped::new(ReceiverStream::new(rx), self.watch.clone()))
    }
}
