//! One task per stream: read the config, then audio; decode -> pipeline -> batcher; send
//! each window's prediction in window order as soon as it and all earlier ones are ready.
//! At most `max_windows_in_flight` windows wait for the model; beyond that the session stops
//! reading, and a client that stops reading its responses stalls only itself.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::arrivals::ChunkArrivals;
use super::config::ServeConfig;
use super::metrics;
use super::model_swap::{Models, ServingModel};
use super::ordered::{Pending, next_ready, send_window, submit};
use super::outcome::{EndReason, Outcome, Summary};
use super::status::{fail, inbound_failed};
use super::stream_config::{Accepted, accept, check_chunk};
use crate::audio::PcmDecoder;
use crate::pipeline::{PreparedWindow, WindowPipeline};
use crate::proto::{
    SpeakerAdaptation, StreamConfig, StreamEmotionsRequest, StreamEmotionsResponse, StreamStarted,
    stream_emotions_request::Request, stream_emotions_response::Response,
};

/// What every session shares.
pub struct SessionContext {
    /// The model new streams get (each keeps the one it started with).
    pub models: Arc<Models>,
    pub config: ServeConfig,
    /// Cancelled on SIGTERM: new streams are refused, open ones go on being served.
    pub draining: CancellationToken,
    /// Cancelled when the drain timeout passes: open sessions stop reading, finish their
    /// windows and summarize.
    pub shutdown: CancellationToken,
}

pub(crate) type Outbound = mpsc::Sender<Result<StreamEmotionsResponse, Status>>;

/// A stream's requests: a gRPC call's, or the telephony connector's for one track.
pub trait Inbound: Stream<Item = Result<StreamEmotionsRequest, Status>> + Unpin + Send {}
impl<T: Stream<Item = Result<StreamEmotionsRequest, Status>> + Unpin + Send> Inbound for T {}

/// The next request; `None` once the sender half-closed.
async fn next_request(inbound: &mut impl Inbound) -> Result<Option<StreamEmotionsRequest>, Status> {
    inbound.next().await.transpose()
}

/// Probabilities as the proto's label-probability pairs.
pub(crate) fn message(response: Response) -> Result<StreamEmotionsResponse, Status> {
    Ok(StreamEmotionsResponse {
        response: Some(response),
    })
}

/// Runs a stream to its end: its config, then audio until the client half-closes or a limit
/// ends it, then the tail and the summary.
pub async fn run(
    ctx: Arc<SessionContext>,
    mut inbound: impl Inbound,
    out: Outbound,
    id: u64,
) -> Outcome {
    let idle = Duration::from_secs(ctx.config.idle_timeout_s.max(1));
    let result = async {
        let config = read_config(&ctx, &mut inbound, &out, idle).await?;
        let mut stream = Session::start(&ctx, config, id, &out).await?;
        let end = stream.serve(&ctx, &mut inbound, &out, idle).await?;
        stream.finish(&out, end).await
    };
    match result.await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

/// The first message, which must be the stream's config.
async fn read_config(
    ctx: &SessionContext,
    inbound: &mut impl Inbound,
    out: &Outbound,
    idle: Duration,
) -> Result<StreamConfig, Outcome> {
    let first = tokio::select! {
        first = tokio::time::timeout(idle, next_request(inbound)) => first,
        _ = ctx.shutdown.cancelled() => return Err(Outcome::Cancelled),
    };
    let status = match first {
        Ok(Ok(Some(StreamEmotionsRequest {
            request: Some(Request::Config(config)),
        }))) => return Ok(config),
        Ok(Ok(Some(_))) => {
            Status::invalid_argument("the first message must be a StreamConfig; audio came first")
        }
        Ok(Ok(None)) => Status::invalid_argument("the stream ended before its StreamConfig"),
        Ok(Err(status)) => return Err(inbound_failed(out, status).await),
        Err(_) => Status::deadline_exceeded(format!("no StreamConfig within {} s", idle.as_secs())),
    };
    Err(fail(out, status).await)
}

/// An accepted stream's state.
struct Session {
    /// The model this stream started on, kept to its end.
    model: Arc<ServingModel>,
    accepted: Accepted,
    decoder: PcmDecoder,
    /// One pipeline, or one per channel when channels are analysed separately.
    pipelines: Vec<WindowPipeline>,
    summary: Summary,
    pending: VecDeque<Pending>,
    samples: Vec<f32>,
    /// One channel's samples, split out of `samples` (separate channels only).
    channel_samples: Vec<f32>,
    prepared: Vec<(u32, PreparedWindow)>,
    windows: Vec<PreparedWindow>,
    /// Input samples decoded so far (the audio-received counter adds whole microseconds).
    samples_received: u64,
    arrivals: ChunkArrivals,
}

impl Session {
    /// Checks the config against the model and limits, and answers `StreamStarted`.
    async fn start(
        ctx: &SessionContext,
        config: StreamConfig,
        id: u64,
        out: &Outbound,
    ) -> Result<Self, Outcome> {
        let model = ctx.models.current();
        let card = &model.card;
        let accepted = match accept(&config, card, &ctx.config, id) {
            Ok(a) => a,
            Err(status) => return Err(fail(out, status).await),
        };
        // The session runs inside the "stream" span (service.rs instruments it); a span
        // entered with a guard across awaits would stay entered on the worker thread for
        // other streams' tasks, nesting every open stream into every log line (the soak).
        let span = tracing::Span::current();
        span.record("stream_id", accepted.stream_id.as_str());
        span.record("encoding", tracing::field::debug(accepted.format));
        span.record("rate", accepted.rate);
        let separate = accepted.separate_channels;
        let parts = if separate {
            PcmDecoder::keeping_channels(accepted.format, accepted.channels)
        } else {
            PcmDecoder::new(accepted.format, accepted.channels)
        }
        .and_then(|d| {
            let silence = ctx.config.silence_dbfs;
            let pipelines = (0..if separate { accepted.channels } else { 1 })
                .map(|_| {
                    let pipeline =
                        WindowPipeline::new(card, accepted.rate, accepted.spec, silence)?;
                    Ok(if accepted.adapt {
                        pipeline
                    } else {
                        pipeline.without_adaptation()
                    })
                })
                .collect::<crate::Result<Vec<_>>>()?;
            Ok((d, pipelines))
        });
        let (decoder, pipelines) = match parts {
            Ok(parts) => parts,
            Err(e) => return Err(fail(out, e.into()).await),
        };
        let effective = StreamConfig {
            channels: accepted.channels as u32,
            window_ms: accepted.spec.window_ms,
            hop_ms: accepted.spec.hop_ms,
            stream_id: accepted.stream_id.clone(),
            speaker_adaptation: if accepted.adapt {
                SpeakerAdaptation::On
            } else {
                SpeakerAdaptation::Off
            } as i32,
            ..config
        };
        let started = StreamStarted {
            stream_id: accepted.stream_id.clone(),
            model_id: card.id.clone(),
            config: Some(effective),
            model_sample_rate_hz: card.features.sr,
        };
        if out.send(message(Response::Started(started))).await.is_err() {
            return Err(Outcome::Cancelled);
        }
        tracing::info!("stream started");
        let arrivals = ChunkArrivals::new(accepted.rate);
        Ok(Self {
            model: model.clone(),
            summary: Summary::new(
                card.labels.len(),
                if separate { accepted.channels } else { 0 },
            ),
            accepted,
            decoder,
            pipelines,
            pending: VecDeque::new(),
            samples: Vec::new(),
            channel_samples: Vec::new(),
            prepared: Vec::new(),
            windows: Vec::new(),
            samples_received: 0,
            arrivals,
        })
    }

    /// Reads audio and sends windows in order until the client half-closes or a limit or
    /// shutdown ends the stream. At most `max_windows_in_flight` windows wait for the
    /// model; beyond that it stops reading.
    async fn serve(
        &mut self,
        ctx: &SessionContext,
        inbound: &mut impl Inbound,
        out: &Outbound,
        idle: Duration,
    ) -> Result<EndReason, Outcome> {
        let max_s = ctx.config.max_stream_duration_s;
        let cap = ctx.config.max_windows_in_flight.max(1);
        // Created once, not per message: a fresh timer or cancellation waiter per message
        // is a lock on a shared wheel or list, 100 times a second per browser stream.
        let deadline = tokio::time::sleep(Duration::from_secs(max_s));
        let shutdown = ctx.shutdown.cancelled();
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(deadline, shutdown, idle_timer);
        // Idle time counts while the session is ready to read: from the last message, or
        // from when reading resumed after the in-flight cap paused it.
        let mut idle_since = tokio::time::Instant::now();
        let mut was_reading = true;
        loop {
            let can_read = self.pending.len() < cap;
            if can_read && !was_reading {
                idle_since = tokio::time::Instant::now();
            }
            was_reading = can_read;
            tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(EndReason::Shutdown),
                _ = &mut deadline => return Ok(EndReason::MaxDuration(max_s)),
                ready = next_ready(&mut self.pending, &self.model.card.labels), if !self.pending.is_empty() => {
                    let Some(window) = ready else { continue };
                    if !send_window(&self.model, out, &mut self.summary, window, &self.accepted).await {
                        return Err(Outcome::Cancelled);
                    }
                }
                msg = next_request(inbound), if can_read => {
                    idle_since = tokio::time::Instant::now();
                    match msg {
                        Err(status) => return Err(inbound_failed(out, status).await),
                        Ok(None) => return Ok(EndReason::Completed),
                        Ok(Some(StreamEmotionsRequest { request: Some(Request::Audio(chunk)) })) => {
                            if let Err(status) = self.accept_chunk(ctx, &chunk).await {
                                return Err(fail(out, status).await);
                            }
                        }
                        Ok(Some(StreamEmotionsRequest { request: Some(Request::Config(_)) })) => {
                            return Err(fail(out, Status::invalid_argument("StreamConfig sent twice: it must be the first message only")).await);
                        }
                        Ok(Some(StreamEmotionsRequest { request: None })) => {
                            return Err(fail(out, Status::invalid_argument("empty StreamEmotionsRequest: set config or audio")).await);
                        }
                    }
                }
                _ = &mut idle_timer, if can_read => {
                    if idle_since.elapsed() >= idle {
                        return Ok(EndReason::IdleTimeout(idle.as_secs()));
                    }
                    // Messages came since it was set: wait out the rest from the last one.
                    idle_timer.as_mut().reset(idle_since + idle);
                }
            }
        }
    }

    /// Decodes a chunk, cuts its windows and submits them to the model.
    async fn accept_chunk(&mut self, ctx: &SessionContext, chunk: &[u8]) -> Result<(), Status> {
        check_chunk(chunk.len(), &self.accepted, &ctx.config)?;
        let arrived = Instant::now();
        self.samples.clear();
        self.prepared.clear();
        self.decoder
            .decode(chunk, &mut self.samples)
            .and_then(|_| self.push_channels())
            .map_err(|e| {
                Status::invalid_argument(format!(
                    "audio chunk rejected: {}",
                    crate::error::chain(&e)
                ))
            })?;
        let rate = self.accepted.rate as u64;
        let before_us = self.samples_received * 1_000_000 / rate;
        self.samples_received += (self.samples.len() / self.pipelines.len()) as u64;
        metrics::audio_received_us(self.samples_received * 1_000_000 / rate - before_us);
        self.arrivals.record(self.samples_received, arrived);
        let windows = self.prepared.drain(..);
        submit(&self.model, &mut self.pending, windows, &mut self.arrivals).await;
        Ok(())
    }

    /// Feeds the decoded samples to the pipeline, or each channel's to its own; windows go
    /// to `prepared` in window order, channel 0 first for the same window.
    fn push_channels(&mut self) -> crate::Result<()> {
        let channels = self.pipelines.len();
        for (channel, pipeline) in self.pipelines.iter_mut().enumerate() {
            let samples = if channels == 1 {
                &self.samples
            } else {
                self.channel_samples.clear();
                let split = self.samples.iter().skip(channel).step_by(channels);
                self.channel_samples.extend(split);
                &self.channel_samples
            };
            self.windows.clear();
            pipeline.push(samples, &mut self.windows)?;
            let tagged = self.windows.drain(..).map(|w| (channel as u32, w));
            self.prepared.extend(tagged);
        }
        self.prepared
            .sort_by_key(|(channel, w)| (w.index, *channel));
        Ok(())
    }

    /// The end: flush the tail, let every window in flight finish, then summarize.
    async fn finish(mut self, out: &Outbound, end: EndReason) -> Result<Outcome, Outcome> {
        if end == EndReason::Completed && self.decoder.pending_bytes() != 0 {
            let status = Status::invalid_argument(format!(
                "the stream ended with {} bytes of an incomplete sample frame",
                self.decoder.pending_bytes()
            ));
            return Err(fail(out, status).await);
        }
        self.prepared.clear();
        for (channel, pipeline) in self.pipelines.iter_mut().enumerate() {
            self.windows.clear();
            if let Err(e) = pipeline.finish(&mut self.windows) {
                return Err(fail(out, e.into()).await);
            }
            let tagged = self.windows.drain(..).map(|w| (channel as u32, w));
            self.prepared.extend(tagged);
        }
        self.prepared
            .sort_by_key(|(channel, w)| (w.index, *channel));
        let windows = self.prepared.drain(..);
        submit(&self.model, &mut self.pending, windows, &mut self.arrivals).await;
        while !self.pending.is_empty() {
            if let Some(window) = next_ready(&mut self.pending, &self.model.card.labels).await
                && !send_window(&self.model, out, &mut self.summary, window, &self.accepted).await
            {
                return Err(Outcome::Cancelled);
            }
        }
        let summary =
            self.summary
                .finish(&self.model.card.labels, self.pipelines[0].audio_ms(), end);
        tracing::info!(windows = summary.windows, reason = %summary.end_reason, "stream ended");
        if out.send(message(Response::Summary(summary))).await.is_err() {
            return Err(Outcome::Cancelled);
        }
        Ok(if end == EndReason::Completed {
            Outcome::Completed
        } else {
            Outcome::Limited
        })
    }
}
