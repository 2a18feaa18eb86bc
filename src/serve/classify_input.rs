//! A Classify request's audio and, with `CHANNEL_MODE_SEPARATE`, its answer per channel.

use tonic::Status;

use crate::audio::container::decode_file_channels;
use crate::audio::{DecodedAudio, PcmDecoder, SampleFormat};
use crate::classify::{SpeechMean, WindowResult};
use crate::proto::{AudioEncoding, ClassifyRequest, ClassifyResponse};
use crate::report::{channel_summary, window_prediction};

/// A Classify payload: a container file, or raw samples with their format; one signal, or
/// with `separate` one per channel.
pub(crate) fn decode_request(
    request: ClassifyRequest,
    separate: bool,
) -> Result<Vec<DecodedAudio>, Status> {
    let invalid = |e: crate::Error| Status::invalid_argument(crate::error::chain(&e));
    let format = match AudioEncoding::try_from(request.encoding) {
        Ok(AudioEncoding::Unspecified) => {
            return decode_file_channels(request.audio, None, separate).map_err(invalid);
        }
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
    let channels = request.channels.max(1) as usize;
    let mut decoder = if separate {
        PcmDecoder::keeping_channels(format, channels)
    } else {
        PcmDecoder::new(format, channels)
    }
    .map_err(invalid)?;
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
    let signals = if separate { channels } else { 1 };
    Ok((0..signals)
        .map(|c| DecodedAudio {
            samples: samples.iter().skip(c).step_by(signals).copied().collect(),
            sample_rate: rate,
        })
        .collect())
}

/// Fills a Classify answer's per-channel parts: every channel's windows (in window order,
/// channel 0 first for the same window) and each channel's decision.
pub(crate) fn per_channel_response(
    labels: &[String],
    per_channel: &[Vec<WindowResult>],
    response: &mut ClassifyResponse,
) {
    let mut windows = Vec::new();
    response.channels.clear();
    for (channel, results) in per_channel.iter().enumerate() {
        let mut rule = SpeechMean::new(labels.len());
        for w in results {
            rule.add(w.probabilities.as_deref());
            windows.push(crate::proto::WindowPrediction {
                channel: channel as u32,
                ..window_prediction(labels, w)
            });
        }
        response
            .channels
            .push(channel_summary(labels, channel as u32, &rule));
    }
    windows.sort_by_key(|w| (w.window_index, w.channel));
    response.windows = windows;
}
