//! Admission of a stream's config: every field checked, defaults filled in, one clear
//! INVALID_ARGUMENT message per mistake.

use tonic::Status;

use super::config::ServeConfig;
use crate::audio::SampleFormat;
use crate::audio::pcm::MAX_CHANNELS;
use crate::audio::resample::validate_rate;
use crate::model::ModelCard;
use crate::pipeline::WindowSpec;
use crate::proto::{AudioEncoding, ChannelMode, SpeakerAdaptation, StreamConfig};

/// Most channels analysed separately in one stream or recording: each costs what a stream
/// costs, so a wider frame is mixed, or split over several streams.
pub const MAX_SEPARATE_CHANNELS: usize = 8;

/// Whether `channel_mode` asks for channels analysed separately, checked against `channels`.
pub fn separate_channels(channel_mode: i32, channels: usize) -> Result<bool, Status> {
    match ChannelMode::try_from(channel_mode) {
        Ok(ChannelMode::Unspecified | ChannelMode::Mix) => Ok(false),
        Ok(ChannelMode::Separate) if channels > MAX_SEPARATE_CHANNELS => {
            Err(Status::invalid_argument(format!(
                "CHANNEL_MODE_SEPARATE takes at most {MAX_SEPARATE_CHANNELS} channels, got {channels}: mix them, or split them over several streams"
            )))
        }
        Ok(ChannelMode::Separate) => Ok(true),
        Err(_) => Err(Status::invalid_argument(format!(
            "channel_mode {channel_mode} is not a known ChannelMode"
        ))),
    }
}

/// Whether a stream adapts to its caller: `speaker_adaptation` against what the model can.
pub fn adapts(speaker_adaptation: i32, card: &ModelCard) -> Result<bool, Status> {
    let trained = card.adaptation.is_some();
    match SpeakerAdaptation::try_from(speaker_adaptation) {
        Ok(SpeakerAdaptation::Unspecified) => Ok(trained),
        Ok(SpeakerAdaptation::Off) => Ok(false),
        Ok(SpeakerAdaptation::On) if trained => Ok(true),
        Ok(SpeakerAdaptation::On) => Err(Status::invalid_argument(format!(
            "config.speaker_adaptation: model {} was not trained to adapt to its caller (ModelInfo.speaker_adaptation is false)",
            card.id
        ))),
        Err(_) => Err(Status::invalid_argument(format!(
            "config.speaker_adaptation {speaker_adaptation} is not a known SpeakerAdaptation"
        ))),
    }
}

/// Validated stream configuration.
pub struct Accepted {
    pub format: SampleFormat,
    pub channels: usize,
    pub rate: u32,
    pub spec: WindowSpec,
    pub stream_id: String,
    pub include_silence: bool,
    /// The call time of the first sample (`resume_at_ms`), a multiple of the hop.
    pub resume_at_ms: u64,
    /// Each channel analysed on its own (`CHANNEL_MODE_SEPARATE`).
    pub separate_channels: bool,
    /// Windows read against the caller's running spectrum.
    pub adapt: bool,
}

impl Accepted {
    /// Index of the stream's first window on the call's timeline.
    pub fn first_window_index(&self) -> u64 {
        self.resume_at_ms / self.spec.hop_ms.max(1) as u64
    }
}

/// The operator's narrower limits (`--min/max-sample-rate-hz`, `--max-channels`) on top of
/// what the decoders support.
pub fn within_limits(rate: u32, channels: usize, limits: &ServeConfig) -> Result<(), Status> {
    if rate < limits.min_sample_rate_hz || rate > limits.max_sample_rate_hz {
        return Err(Status::invalid_argument(format!(
            "sample_rate_hz {rate} is outside this server's allowed range {}..={} Hz",
            limits.min_sample_rate_hz, limits.max_sample_rate_hz
        )));
    }
    if channels > limits.max_channels {
        return Err(Status::invalid_argument(format!(
            "{channels} channels exceed this server's limit of {}",
            limits.max_channels
        )));
    }
    Ok(())
}

pub fn accept(
    config: &StreamConfig,
    card: &ModelCard,
    limits: &ServeConfig,
    fallback_id: u64,
) -> Result<Accepted, Status> {
    let format = match AudioEncoding::try_from(config.encoding) {
        Ok(AudioEncoding::PcmS16le) => SampleFormat::S16Le,
        Ok(AudioEncoding::PcmF32le) => SampleFormat::F32Le,
        Ok(AudioEncoding::Mulaw) => SampleFormat::MuLaw,
        Ok(AudioEncoding::Alaw) => SampleFormat::ALaw,
        Ok(AudioEncoding::Unspecified) => {
            return Err(Status::invalid_argument(
                "config.encoding is required (PCM_S16LE, PCM_F32LE, MULAW or ALAW)",
            ));
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "config.encoding {} is not a known AudioEncoding",
                config.encoding
            )));
        }
    };
    let rate = validate_rate(config.sample_rate_hz as u64)
        .map_err(|e| Status::invalid_argument(format!("config.sample_rate_hz: {e}")))?;
    let channels = if config.channels == 0 {
        1
    } else {
        config.channels as usize
    };
    if channels > MAX_CHANNELS {
        return Err(Status::invalid_argument(format!(
            "config.channels {channels} exceeds the limit of {MAX_CHANNELS}"
        )));
    }
    within_limits(rate, channels, limits)?;
    let separate_channels = separate_channels(config.channel_mode, channels)
        .map_err(|s| Status::invalid_argument(format!("config.{}", s.message())))?;
    let spec = WindowSpec::resolve(card, config.window_ms, config.hop_ms)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    if config.stream_id.len() > 256 {
        return Err(Status::invalid_argument(
            "config.stream_id is longer than 256 bytes",
        ));
    }
    // The id goes into logs and metrics labels: no control characters (forged log lines).
    if config.stream_id.chars().any(char::is_control) {
        return Err(Status::invalid_argument(
            "config.stream_id contains control characters",
        ));
    }
    // Whole hops only, so that resumed window indices and times stay on the call's grid.
    if !config
        .resume_at_ms
        .is_multiple_of(spec.hop_ms.max(1) as u64)
    {
        return Err(Status::invalid_argument(format!(
            "config.resume_at_ms ({}) must be a multiple of hop_ms ({}): resend audio from a window start",
            config.resume_at_ms, spec.hop_ms
        )));
    }
    let adapt = adapts(config.speaker_adaptation, card)?;
    let stream_id = if config.stream_id.is_empty() {
        format!("stream-{fallback_id}")
    } else {
        config.stream_id.clone()
    };
    Ok(Accepted {
        format,
        channels,
        rate,
        spec,
        stream_id,
        include_silence: config.include_silence,
        resume_at_ms: config.resume_at_ms,
        separate_channels,
        adapt,
    })
}

/// Longest audio one chunk may carry. Every window a chunk completes is prepared at once, so
/// this (with the overlap limit of `WindowSpec`) bounds a stream's transient memory to a few
/// MB whatever its config; live callers send 20-200 ms per chunk.
pub const MAX_CHUNK_SECONDS: u64 = 10;

/// A chunk's size, in bytes (`--max-chunk-bytes`) and in seconds of audio.
pub fn check_chunk(bytes: usize, stream: &Accepted, limits: &ServeConfig) -> Result<(), Status> {
    if bytes > limits.max_chunk_bytes {
        return Err(Status::resource_exhausted(format!(
            "an audio chunk of {bytes} bytes exceeds the limit of {} bytes; send smaller chunks",
            limits.max_chunk_bytes
        )));
    }
    let frame_bytes = (stream.format.bytes_per_sample() * stream.channels) as u64;
    let max_frames = MAX_CHUNK_SECONDS * stream.rate as u64;
    if bytes as u64 / frame_bytes.max(1) > max_frames {
        return Err(Status::resource_exhausted(format!(
            "an audio chunk of {bytes} bytes holds more than {MAX_CHUNK_SECONDS} s of audio; stream audio as it arrives"
        )));
    }
    Ok(())
}
