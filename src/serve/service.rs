//! The gRPC service, kept thin: admission (stream limit, draining), then hand-off to a
//! session task, the Classify pipeline, or the model card.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::metrics;
use super::session::{self, SessionContext};
use super::status::counted;
use crate::audio::{DecodedAudio, PcmDecoder, SampleFormat, decode_file};
use crate::classify::{WindowResult, aggregate};
use crate::pipeline::{PreparedWindow, hop_granularity_ms};
use crate::proto::emotion_recognizer_server::EmotionRecognizer;
use crate::proto::{
    AudioEncoding, ClassifyRequest, ClassifyResponse, GetModelInfoRequest, ModelInfo,
    StreamEmotionsRequest, StreamEmotionsResponse,
};
use crate::report::classify_response;
use candle_core::DeviceLocation;

pub struct EmotionService {
    pub ctx: Arc<SessionContext>,
    pub streams: Arc<Semaphore>,
    pub tracker: TaskTracker,
    pub next_id: AtomicU64,
    pub device: DeviceLocation,
}

#[tonic::async_trait]
impl EmotionRecognizer for EmotionService {
    type StreamEmotionsStream = ReceiverStream<Result<StreamEmotionsResponse, Status>>;

    async fn stream_emotions(
        &self,
        request: Request<Streaming<StreamEmotionsRequest>>,
    ) -> Result<Response<Self::StreamEmotionsStream>, Status> {
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
        let inbound = request.into_inner();
        metrics::stream_opened();
        let span = tracing::info_span!(
            "stream",
            stream_id = tracing::field::Empty,
            encoding = tracing::field::Empty,
            rate = tracing::field::Empty
        );
        self.tracker.spawn(
            async move {
                let outcome = session::run(ctx, inbound, tx, id).await;
                metrics::stream_closed(outcome);
                drop(permit);
            }
            .instrument(span),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn classify(
        &self,
        request: Request<ClassifyRequest>,
    ) -> Result<Response<ClassifyResponse>, Status> {
        let audio = self.decode_within_limits(request.into_inner()).await?;
        let card = self.ctx.card.clone();
        let silence = self.ctx.config.silence_dbfs;
        let (prepared, audio_ms) = tokio::task::spawn_blocking(move || {
            crate::classify::prepare_clip(&card, &audio, silence)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| counted(e.into()))?;
        let results = self.predict_windows(&prepared).await?;
        let labels = &self.ctx.card.labels;
        let clip = aggregate(labels, results, audio_ms);
        Ok(Response::new(classify_response(
            labels,
            &self.ctx.card.id,
            &clip,
        )))
    }

    async fn get_model_info(
        &self,
        _request: Request<GetModelInfoRequest>,
    ) -> Result<Response<ModelInfo>, Status> {
        let card = &self.ctx.card;
        Ok(Response::new(ModelInfo {
            model_id: card.id.clone(),
            kind: card.kind(),
            labels: card.labels.clone(),
            sample_rate_hz: card.features.sr,
            default_window_ms: card.window_ms,
            default_hop_ms: card.hop_ms,
            min_window_ms: card.min_window_ms,
            max_window_ms: card.max_window_ms,
            hop_granularity_ms: hop_granularity_ms(card),
            version: env!("CARGO_PKG_VERSION").to_string(),
            metrics_json: card.metrics.to_string(),
            device: crate::model::device_name(self.device),
            device_type: device_type(self.device) as i32,
            device_ordinal: match self.device {
                DeviceLocation::Cpu => 0,
                DeviceLocation::Cuda { gpu_id } | DeviceLocation::Metal { gpu_id } => gpu_id as u32,
            },
            license: card.license.clone(),
            training_data: card.training_data(),
        }))
    }
}

impl EmotionService {
    /// Decodes a Classify payload, enforcing the byte, rate, channel and duration limits.
    async fn decode_within_limits(&self, request: ClassifyRequest) -> Result<DecodedAudio, Status> {
        let config = &self.ctx.config;
        if request.audio.len() > config.max_classify_bytes {
            return Err(counted(Status::resource_exhausted(format!(
                "{} bytes of audio exceed the Classify limit of {} bytes; stream long recordings instead",
                request.audio.len(),
                config.max_classify_bytes
            ))));
        }
        let max_seconds = config.max_classify_seconds;
        let channels = request.channels.max(1) as usize;
        let raw = request.encoding != AudioEncoding::Unspecified as i32;
        let audio = tokio::task::spawn_blocking(move || decode_request(request))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(counted)?;
        // A container's channels are downmixed by the decoder; raw audio declares its own.
        super::stream_config::within_limits(
            audio.sample_rate,
            if raw { channels } else { 1 },
            config,
        )
        .map_err(counted)?;
        if audio.duration_seconds() > max_seconds as f64 {
            return Err(counted(Status::resource_exhausted(format!(
                "{:.1} s of audio exceed the Classify limit of {max_seconds} s",
                audio.duration_seconds()
            ))));
        }
        Ok(audio)
    }

    /// Every speech window through the shared batcher (submitted together, so they batch
    /// with each other and with open streams); silent windows get no probabilities.
    async fn predict_windows(
        &self,
        prepared: &[PreparedWindow],
    ) -> Result<Vec<WindowResult>, Status> {
        let mut replies = Vec::with_capacity(prepared.len());
        for window in prepared {
            let reply = match &window.input {
                Some(input) => Some(self.ctx.batcher.submit(input.clone()).await),
                None => None,
            };
            replies.push(reply);
        }
        let mut results = Vec::with_capacity(prepared.len());
        for (window, reply) in prepared.iter().zip(replies) {
            let probabilities = match reply {
                Some(r) => Some(
                    r.await
                        .map_err(|_| Status::internal("model worker stopped"))?
                        .map_err(|e| counted(Status::internal(crate::error::chain(&e))))?,
                ),
                None => None,
            };
            results.push(WindowResult::new(
                &self.ctx.card.labels,
                window,
                probabilities,
            ));
        }
        Ok(results)
    }
}

/// A Classify payload: a container file, or raw samples with their format.
fn decode_request(request: ClassifyRequest) -> Result<DecodedAudio, Status> {
    let invalid = |e: crate::Error| Status::invalid_argument(crate::error::chain(&e));
    let format = match AudioEncoding::try_from(request.encoding) {
        Ok(AudioEncoding::Unspecified) => return decode_file(request.audio, None).map_err(invalid),
        Ok(AudioEncoding::PcmS16le) => SampleFormat::S16Le,
        Ok(AudioEncoding::PcmF32le) => SampleFormat::F32Le,
        Ok(AudioEncoding::Mulaw) => SampleFormat::MuLaw,
        Ok(AudioEncoding::Alaw) => SampleFormat::ALaw,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "encoding {} is not a known AudioEncoding",
                request.encoding
            )));
        }
    };
    let rate =
        crate::audio::resample::validate_rate(request.sample_rate_hz as u64).map_err(invalid)?;
    let mut decoder = PcmDecoder::new(format, request.channels.max(1) as usize).map_err(invalid)?;
    let mut samples = Vec::new();
    decoder
        .decode(&request.audio, &mut samples)
        .map_err(invalid)?;
    if decoder.pending_bytes() != 0 {
        return Err(Status::invalid_argument(format!(
            "raw audio ends with {} bytes of an incomplete frame",
            decoder.pending_bytes()
        )));
    }
    if samples.is_empty() {
        return Err(Status::invalid_argument("no audio samples"));
    }
    Ok(DecodedAudio {
        samples,
        sample_rate: rate,
    })
}

fn device_type(device: DeviceLocation) -> crate::proto::ComputeDevice {
    use crate::proto::ComputeDevice as D;
    match device {
        DeviceLocation::Cpu => D::Cpu,
        DeviceLocation::Cuda { .. } => D::Cuda,
        DeviceLocation::Metal { .. } => D::Metal,
    }
}
