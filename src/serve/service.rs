//! The gRPC service, kept thin: admission (stream limit, draining), then hand-off to a
//! session task, the Classify pipeline, or the model card.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::classify_input::{decode_request, per_channel_response};
use super::launch::{Responses, StreamLauncher};
use super::model_swap::ServingModel;
use super::status::counted;
use super::stream_config::separate_channels;
use super::watch::WatchEvent;
use crate::audio::DecodedAudio;
use crate::classify::{WindowResult, aggregate};
use crate::pipeline::{PreparedWindow, hop_granularity_ms};
use crate::proto::emotion_recognizer_server::EmotionRecognizer;
use crate::proto::{
    AudioEncoding, ChannelMode, ClassifyRequest, ClassifyResponse, GetModelInfoRequest, ModelInfo,
    StreamEmotionsRequest, StreamEmotionsResponse, WatchStreamRequest,
};
use crate::report::classify_response;
use candle_core::DeviceLocation;

pub struct EmotionService {
    pub launcher: Arc<StreamLauncher>,
}

#[tonic::async_trait]
impl EmotionRecognizer for EmotionService {
    type StreamEmotionsStream = Responses;
    type WatchStreamStream =
        Pin<Box<dyn Stream<Item = Result<StreamEmotionsResponse, Status>> + Send>>;

    async fn stream_emotions(
        &self,
        request: Request<Streaming<StreamEmotionsRequest>>,
    ) -> Result<Response<Self::StreamEmotionsStream>, Status> {
        let (metadata, _, inbound) = request.into_parts();
        self.launcher
            .open(inbound, Some(&metadata))
            .map(Response::new)
    }

    async fn watch_stream(
        &self,
        request: Request<WatchStreamRequest>,
    ) -> Result<Response<Self::WatchStreamStream>, Status> {
        let stream_id = request.into_inner().stream_id;
        if stream_id.is_empty() || stream_id.len() > 256 {
            return Err(counted(Status::invalid_argument(
                "stream_id must be 1 to 256 bytes",
            )));
        }
        let events = self.launcher.watch.subscribe(&stream_id).await?;
        let responses = events.map(|event| match event? {
            WatchEvent::Message(message) => Ok(message),
            WatchEvent::Ended(code, message) => Err(Status::new(
                code,
                format!("the watched stream ended: {message}"),
            )),
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn classify(
        &self,
        request: Request<ClassifyRequest>,
    ) -> Result<Response<ClassifyResponse>, Status> {
        let span = tracing::info_span!("classify", bytes = request.get_ref().audio.len());
        crate::telemetry::adopt_remote_parent(&span, request.metadata());
        self.classify_clip(request.into_inner())
            .instrument(span)
            .await
    }

    async fn get_model_info(
        &self,
        _request: Request<GetModelInfoRequest>,
    ) -> Result<Response<ModelInfo>, Status> {
        let model = self.launcher.ctx.models.current();
        let (card, device) = (&model.card, model.device);
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
            device: crate::model::device_name(device),
            device_type: device_type(device) as i32,
            device_ordinal: match device {
                DeviceLocation::Cpu => 0,
                DeviceLocation::Cuda { gpu_id } | DeviceLocation::Metal { gpu_id } => gpu_id as u32,
            },
            license: card.license.clone(),
            training_data: card.training_data(),
            speaker_adaptation: card.adaptation.is_some(),
        }))
    }
}

impl EmotionService {
    /// Classify's work, inside its span.
    async fn classify_clip(
        &self,
        request: ClassifyRequest,
    ) -> Result<Response<ClassifyResponse>, Status> {
        let separate = separate_channels(request.channel_mode, request.channels.max(1) as usize)
            .map_err(counted)?;
        let channels = self.decode_within_limits(request, separate).await?;
        // The whole call runs on the model current when it began.
        let model = self.launcher.ctx.models.current();
        let card = model.card.clone();
        let silence = self.launcher.ctx.config.silence_dbfs;
        let prepared = tokio::task::spawn_blocking(move || {
            channels
                .iter()
                .map(|audio| crate::classify::prepare_clip(&card, audio, silence))
                .collect::<crate::Result<Vec<_>>>()
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| counted(e.into()))?;
        // Every channel's windows go to the batcher together, then split back.
        let all: Vec<PreparedWindow> = prepared.iter().flat_map(|(w, _)| w.clone()).collect();
        let mut results = self.predict_windows(&model, &all).await?.into_iter();
        let labels = &model.card.labels;
        let audio_ms = prepared.first().map_or(0, |(_, ms)| *ms);
        let per_channel: Vec<Vec<WindowResult>> = prepared
            .iter()
            .map(|(windows, _)| results.by_ref().take(windows.len()).collect())
            .collect();
        let mut response = classify_response(
            labels,
            &model.card.id,
            &aggregate(labels, per_channel.concat(), audio_ms),
        );
        if separate {
            per_channel_response(labels, &per_channel, &mut response);
        }
        Ok(Response::new(response))
    }

    /// Decodes a Classify payload (one signal, or one per channel with `separate`),
    /// enforcing the byte, rate, channel and duration limits.
    async fn decode_within_limits(
        &self,
        request: ClassifyRequest,
        separate: bool,
    ) -> Result<Vec<DecodedAudio>, Status> {
        let config = &self.launcher.ctx.config;
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
        let decoded = tokio::task::spawn_blocking(move || decode_request(request, separate))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(counted)?;
        let audio = &decoded[0];
        // A container's channels are downmixed by the decoder unless kept separate; raw
        // audio declares its own.
        super::stream_config::within_limits(
            audio.sample_rate,
            if raw { channels } else { decoded.len() },
            config,
        )
        .map_err(counted)?;
        if separate {
            separate_channels(ChannelMode::Separate as i32, decoded.len()).map_err(counted)?;
        }
        if audio.duration_seconds() > max_seconds as f64 {
            return Err(counted(Status::resource_exhausted(format!(
                "{:.1} s of audio exceed the Classify limit of {max_seconds} s",
                audio.duration_seconds()
            ))));
        }
        Ok(decoded)
    }

    /// Every speech window through the shared batcher (submitted together, so they batch
    /// with each other and with open streams); silent windows get no probabilities.
    async fn predict_windows(
        &self,
        model: &ServingModel,
        prepared: &[PreparedWindow],
    ) -> Result<Vec<WindowResult>, Status> {
        let mut replies = Vec::with_capacity(prepared.len());
        for window in prepared {
            let reply = match &window.input {
                Some(input) => Some(model.batcher.submit(input.clone()).await),
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
            results.push(WindowResult::new(&model.card.labels, window, probabilities));
        }
        Ok(results)
    }
}

fn device_type(device: DeviceLocation) -> crate::proto::ComputeDevice {
    use crate::proto::ComputeDevice as D;
    match device {
        DeviceLocation::Cpu => D::Cpu,
        DeviceLocation::Cuda { .. } => D::Cuda,
        DeviceLocation::Metal { .. } => D::Metal,
    }
}
