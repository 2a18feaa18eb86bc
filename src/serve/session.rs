//! One task per stream: read the config, then audio; decode -> pipeline -> batcher; send
//! each window's prediction in window order as soon as it and all earlier ones are ready.
//! At most `max_windows_in_flight` windows wait for the model; beyond that the session stops
//! reading, and a client that stops reading its responses stalls only itself.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use super::batcher::{Batcher, Reply};
use super::config::ServeConfig;
use super::metrics;
use super::status::counted;
use super::stream_config::{accept, check_chunk};
use crate::audio::PcmDecoder;
use crate::classify::WindowResult;
use crate::model::ModelCard;
use crate::pipeline::{PreparedWindow, WindowPipeline};
use crate::proto::{
    EmotionScore, StreamConfig, StreamEmotionsRequest, StreamEmotionsResponse, StreamStarted,
    StreamSummary, WindowPrediction, stream_emotions_request::Request,
    stream_emotions_response::Response,
};

/// What every session shares.
pub struct SessionContext {
    pub card: ModelCard,
    pub batcher: Batcher,
    pub config: ServeConfig,
    /// Cancelled on SIGTERM: sessions stop reading, finish their windows and summarize.
    pub shutdown: CancellationToken,
}

type Outbound = mpsc::Sender<Result<StreamEmotionsResponse, Status>>;

/// A window waiting to be sent, in order.
enum Pending {
    Ready(WindowResult, Instant),
    Waiting(PreparedWindow, Instant, oneshot::Receiver<Reply>),
}

fn scores(labels: &[String], probabilities: &[f32]) -> Vec<EmotionScore> {
    labels
        .iter()
        .zip(probabilities)
        .map(|(l, &p)| EmotionScore {
            emotion: l.clone(),
            probability: p,
        })
        .collect()
}

fn message(response: Response) -> Result<StreamEmotionsResponse, Status> {
    Ok(StreamEmotionsResponse {
        response: Some(response),
    })
}

/// Runs a stream to its end. Returns the outcome label for metrics.
pub async fn run(
    ctx: Arc<SessionContext>,
    mut inbound: Streaming<StreamEmotionsRequest>,
    out: Outbound,
    id: u64,
) -> &'static str {
    let idle = Duration::from_secs(ctx.config.idle_timeout_s.max(1));
    // The config must come first.
    let first = tokio::select! {
        first = tokio::time::timeout(idle, inbound.message()) => first,
        _ = ctx.shutdown.cancelled() => return "cancelled",
    };
    let config = match first {
        Ok(Ok(Some(StreamEmotionsRequest {
            request: Some(Request::Config(config)),
        }))) => config,
        Ok(Ok(Some(_))) => {
            return fail(
                &out,
                Status::invalid_argument(
                    "the first message must be a StreamConfig; audio came first",
                ),
            )
            .await;
        }
        Ok(Ok(None)) => {
            return fail(
                &out,
                Status::invalid_argument("the stream ended before its StreamConfig"),
            )
            .await;
        }
        Ok(Err(status)) => return inbound_failed(&out, status).await,
        Err(_) => {
            return fail(
                &out,
                Status::deadline_exceeded(format!("no StreamConfig within {} s", idle.as_secs())),
            )
            .await;
        }
    };
    let accepted = match accept(&config, &ctx.card, &ctx.config, id) {
        Ok(a) => a,
        Err(status) => return fail(&out, status).await,
    };
    // The session runs inside the "stream" span (service.rs instruments it); a span entered
    // with a guard across awaits would stay entered on the worker thread for other streams'
    // tasks, nesting every open stream into every log line (found by the soak).
    let span = tracing::Span::current();
    span.record("stream_id", accepted.stream_id.as_str());
    span.record("encoding", tracing::field::debug(accepted.format));
    span.record("rate", accepted.rate);
    let (mut decoder, mut pipeline) = match PcmDecoder::new(accepted.format, accepted.channels)
        .and_then(|d| {
            Ok((
                d,
                WindowPipeline::new(
                    &ctx.card,
                    accepted.rate,
                    accepted.spec,
                    ctx.config.silence_dbfs,
                )?,
            ))
        }) {
        Ok(parts) => parts,
        Err(e) => return fail(&out, e.into()).await,
    };
    let effective = StreamConfig {
        channels: accepted.channels as u32,
        window_ms: accepted.spec.window_ms,
        hop_ms: accepted.spec.hop_ms,
        stream_id: accepted.stream_id.clone(),
        ..config
    };
    let started = StreamStarted {
        stream_id: accepted.stream_id.clone(),
        model_id: ctx.card.id.clone(),
        config: Some(effective),
        model_sample_rate_hz: ctx.card.features.sr,
    };
    if out.send(message(Response::Started(started))).await.is_err() {
        return "cancelled";
    }
    tracing::info!("stream started");

    let mut summary = Summary::new(ctx.card.labels.len());
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut samples = Vec::new();
    let mut prepared = Vec::new();
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(ctx.config.max_stream_duration_s);
    let cap = ctx.config.max_windows_in_flight.max(1);
    let end_reason: String = loop {
        let can_read = pending.len() < cap;
        tokio::select! {
            biased;
            _ = ctx.shutdown.cancelled() => break "server shutting down".into(),
            _ = tokio::time::sleep_until(deadline) => break format!("max stream duration of {} s reached", ctx.config.max_stream_duration_s),
            ready = next_ready(&mut pending, &ctx.card.labels), if !pending.is_empty() => {
                let Some(window) = ready else { continue };
                if !send_window(&ctx, &out, &mut summary, window, accepted.include_silence).await {
                    return "cancelled";
                }
            }
            msg = tokio::time::timeout(idle, inbound.message()), if can_read => match msg {
                Err(_) => break format!("idle timeout: no audio for {} s", idle.as_secs()),
                Ok(Err(status)) => return inbound_failed(&out, status).await,
                Ok(Ok(None)) => break "completed".into(),
                Ok(Ok(Some(StreamEmotionsRequest { request: Some(Request::Audio(chunk)) }))) => {
                    if let Err(status) = check_chunk(chunk.len(), &accepted, &ctx.config) {
                        return fail(&out, status).await;
                    }
                    let arrived = Instant::now();
                    samples.clear();
                    prepared.clear();
                    let step = decoder.decode(&chunk, &mut samples).and_then(|_| pipeline.push(&samples, &mut prepared));
                    if let Err(e) = step {
                        return fail(&out, Status::invalid_argument(format!("audio chunk rejected: {e}"))).await;
                    }
                    metrics::audio_received(samples.len() as f64 / accepted.rate as f64);
                    submit(&ctx, &mut pending, prepared.drain(..), arrived).await;
                }
                Ok(Ok(Some(StreamEmotionsRequest { request: Some(Request::Config(_)) }))) => {
                    return fail(&out, Status::invalid_argument("StreamConfig sent twice: it must be the first message only")).await;
                }
                Ok(Ok(Some(StreamEmotionsRequest { request: None }))) => {
                    return fail(&out, Status::invalid_argument("empty StreamEmotionsRequest: set config or audio")).await;
                }
            },
        }
    };
    // The end: flush the tail, let every window in flight finish, then summarize.
    if end_reason == "completed" && decoder.pending_bytes() != 0 {
        return fail(
            &out,
            Status::invalid_argument(format!(
                "the stream ended with {} bytes of an incomplete sample frame",
                decoder.pending_bytes()
            )),
        )
        .await;
    }
    let arrived = Instant::now();
    prepared.clear();
    if let Err(e) = pipeline.finish(&mut prepared) {
        return fail(&out, e.into()).await;
    }
    submit(&ctx, &mut pending, prepared.drain(..), arrived).await;
    while !pending.is_empty() {
        if let Some(window) = next_ready(&mut pending, &ctx.card.labels).await
            && !send_window(&ctx, &out, &mut summary, window, accepted.include_silence).await
        {
            return "cancelled";
        }
    }
    let summary = summary.finish(&ctx.card.labels, pipeline.audio_ms(), end_reason.clone());
    tracing::info!(windows = summary.windows, reason = %end_reason, "stream ended");
    if out.send(message(Response::Summary(summary))).await.is_err() {
        return "cancelled";
    }
    if end_reason == "completed" {
        "completed"
    } else {
        "limited"
    }
}

/// The request stream broke. A message over the transport limit or one that is not valid
/// protobuf is the caller's mistake and gets a clear status; anything else means the
/// client went away, and there is no one left to tell.
async fn inbound_failed(out: &Outbound, status: Status) -> &'static str {
    match status.code() {
        tonic::Code::OutOfRange if status.message().contains("too large") => {
            let message = format!("message rejected: {}", status.message());
            fail(out, Status::resource_exhausted(message)).await
        }
        tonic::Code::Internal if status.message().contains("decode") => {
            let message = format!("malformed request: {}", status.message());
            fail(out, Status::invalid_argument(message)).await
        }
        _ => {
            tracing::info!(%status, "client went away");
            "cancelled"
        }
    }
}

async fn fail(out: &Outbound, status: Status) -> &'static str {
    tracing::info!(code = ?status.code(), message = status.message(), "stream rejected");
    let _ = out.send(Err(counted(status))).await;
    "error"
}

async fn submit(
    ctx: &SessionContext,
    pending: &mut VecDeque<Pending>,
    windows: impl Iterator<Item = PreparedWindow>,
    arrived: Instant,
) {
    for mut window in windows {
        match window.input.take() {
            Some(input) => {
                let reply = ctx.batcher.submit(input).await;
                pending.push_back(Pending::Waiting(window, arrived, reply));
            }
            None => pending.push_back(Pending::Ready(
                WindowResult::new(&ctx.card.labels, &window, None),
                arrived,
            )),
        }
    }
}

/// Waits for the oldest pending window; `None` if its inference failed (already counted).
async fn next_ready(
    pending: &mut VecDeque<Pending>,
    labels: &[String],
) -> Option<Result<(WindowResult, Instant), String>> {
    let result = match pending.front_mut()? {
        Pending::Ready(..) => None,
        Pending::Waiting(_, _, reply) => Some(reply.await),
    };
    let front = pending.pop_front()?;
    Some(match (front, result) {
        (Pending::Ready(w, at), _) => Ok((w, at)),
        (Pending::Waiting(window, at, _), Some(Ok(Ok(p)))) => {
            Ok((WindowResult::new(labels, &window, Some(p)), at))
        }
        (Pending::Waiting(..), Some(Ok(Err(e)))) => Err(e.to_string()),
        (Pending::Waiting(..), _) => Err("the model worker stopped".into()),
    })
}

/// Sends one window; false when the stream cannot go on (client gone, inference failed).
async fn send_window(
    ctx: &SessionContext,
    out: &Outbound,
    summary: &mut Summary,
    ready: Result<(WindowResult, Instant), String>,
    include_silence: bool,
) -> bool {
    let (window, arrived) = match ready {
        Ok(w) => w,
        Err(reason) => {
            let _ = out
                .send(Err(counted(Status::internal(format!(
                    "inference failed for a window: {reason}"
                )))))
                .await;
            return false;
        }
    };
    let labels = &ctx.card.labels;
    let (emotion, confidence) = (window.emotion.clone(), window.confidence);
    summary.add(window.probabilities.as_deref());
    metrics::window(&emotion);
    if window.probabilities.is_none() && !include_silence {
        return true;
    }
    let prediction = WindowPrediction {
        window_index: window.index,
        start_ms: window.start_ms,
        end_ms: window.end_ms,
        scores: window
            .probabilities
            .as_deref()
            .map(|p| scores(labels, p))
            .unwrap_or_default(),
        emotion,
        confidence,
        speech: window.speech,
        latency_us: arrived.elapsed().as_micros() as u64,
    };
    let sent = out
        .send(message(Response::Prediction(prediction)))
        .await
        .is_ok();
    metrics::window_latency(arrived.elapsed());
    sent
}

/// Running totals for the stream's summary: the clip decision rule over every window.
struct Summary(crate::classify::SpeechMean);

impl Summary {
    fn new(classes: usize) -> Self {
        Self(crate::classify::SpeechMean::new(classes))
    }

    fn add(&mut self, probabilities: Option<&[f32]>) {
        self.0.add(probabilities);
    }

    fn finish(self, labels: &[String], audio_ms: u64, end_reason: String) -> StreamSummary {
        let dominant_emotion = self.0.decision(labels).0;
        StreamSummary {
            audio_ms,
            windows: self.0.windows(),
            speech_windows: self.0.speech_windows(),
            mean_scores: scores(labels, &self.0.mean()),
            dominant_emotion,
            end_reason,
        }
    }
}
