//! Whole-file decoding through symphonia: WAV (and AIFF, including AIFF files misnamed .wav),
//! FLAC, Ogg Vorbis and MP3, downmixed to mono at the file's own sample rate.

use std::io::Cursor;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error::{Error, Result};

/// Mono samples in [-1, 1] and the rate they were recorded at.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedAudio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl DecodedAudio {
    pub fn duration_seconds(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

/// Decodes a file from disk; the extension is only a hint, the content decides.
pub fn decode_path(path: &Path) -> Result<DecodedAudio> {
    let bytes = std::fs::read(path)?;
    let extension = path.extension().and_then(|e| e.to_str());
    decode_file(bytes, extension)
}

/// Decodes a whole file held in memory. `extension_hint` helps the probe but is not trusted.
pub fn decode_file(bytes: Vec<u8>, extension_hint: Option<&str>) -> Result<DecodedAudio> {
    let mut channels = decode_file_channels(bytes, extension_hint, false)?;
    Ok(channels.remove(0))
}

/// Like [`decode_file`], but with `separate` one mono signal per channel of the file
/// instead of their mean.
pub fn decode_file_channels(
    bytes: Vec<u8>,
    extension_hint: Option<&str>,
    separate: bool,
) -> Result<Vec<DecodedAudio>> {
    // symphonia 0.5.5 panics on some malformed files (a WAV stating 0 Hz, ADPCM with more
    // than two channels, header arithmetic that overflows where overflow checks are on; found
    // by fuzz/container_decode). A bad file is the caller's mistake: it gets an error, not a
    // crashed CLI or an INTERNAL status. Nothing outlives the closure, so no broken state
    // can leak out of it.
    crate::panics::catch_input_panic(|| decode_unguarded(bytes, extension_hint, separate))
        .unwrap_or_else(|what| {
            Err(Error::InvalidAudio(format!(
                "the decoder failed on this file: {what}"
            )))
        })
}

fn decode_unguarded(
    bytes: Vec<u8>,
    extension_hint: Option<&str>,
    separate: bool,
) -> Result<Vec<DecodedAudio>> {
    if bytes.is_empty() {
        return Err(Error::InvalidAudio("the file is empty".into()));
    }
    let stream = MediaSourceStream::new(
        Box::new(Cursor::new(bytes)),
        MediaSourceStreamOptions::default(),
    );
    let mut hint = Hint::new();
    if let Some(ext) = extension_hint {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| describe(e, "recognise the container"))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| Error::UnsupportedAudio("the file has no audio track".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let sample_rate = params
        .sample_rate
        .ok_or_else(|| Error::InvalidAudio("the file does not state its sample rate".into()))?;
    if sample_rate == 0 {
        return Err(Error::InvalidAudio(
            "the file states a sample rate of 0 Hz".into(),
        ));
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| describe(e, "open a decoder"))?;

    let channels = decode_track(format.as_mut(), decoder.as_mut(), track_id, separate)?;
    if channels.iter().all(|c| c.is_empty()) {
        return Err(Error::InvalidAudio(
            "the file holds no audio samples".into(),
        ));
    }
    for samples in &channels {
        let problem = samples
            .iter()
            .enumerate()
            .find_map(|(i, &s)| super::float_sample_problem(s).map(|p| (i, s, p)));
        if let Some((index, value, problem)) = problem {
            return Err(Error::InvalidAudio(format!(
                "sample {index} ({value}) {problem}"
            )));
        }
    }
    Ok(channels
        .into_iter()
        .map(|samples| DecodedAudio {
            samples,
            sample_rate,
        })
        .collect())
}

/// Every packet of one track, decoded and downmixed to mono (one signal), or with
/// `separate` one signal per channel.
fn decode_track(
    format: &mut dyn symphonia::core::formats::FormatReader,
    decoder: &mut dyn symphonia::core::codecs::Decoder,
    track_id: u32,
    separate: bool,
) -> Result<Vec<Vec<f32>>> {
    let mut outputs: Vec<Vec<f32>> = vec![Vec::new()];
    let mut buffer: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(describe(e, "read a packet")),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A corrupt packet in the middle of a long file is skipped, as players do.
            Err(SymphoniaError::DecodeError(_)) if !outputs[0].is_empty() => continue,
            Err(e) => return Err(describe(e, "decode audio")),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let buf = buffer.get_or_insert_with(|| SampleBuffer::new(decoded.capacity() as u64, spec));
        if buf.capacity() < decoded.capacity() * channels {
            *buf = SampleBuffer::new(decoded.capacity() as u64, spec);
        }
        buf.copy_interleaved_ref(decoded);
        if !separate {
            downmix(buf.samples(), channels, &mut outputs[0]);
            continue;
        }
        if outputs[0].is_empty() && outputs.len() != channels {
            outputs.resize(channels, Vec::new());
        }
        if outputs.len() != channels {
            return Err(Error::InvalidAudio(format!(
                "the file's channel count changes from {} to {channels} mid-track",
                outputs.len()
            )));
        }
        for frame in buf.samples().chunks_exact(channels) {
            outputs.iter_mut().zip(frame).for_each(|(o, &s)| o.push(s));
        }
    }
    Ok(outputs)
}

/// Averages interleaved channels into mono (librosa's `to_mono`).
fn downmix(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() * scale),
    );
}

fn describe(err: SymphoniaError, doing: &'static str) -> Error {
    match err {
        SymphoniaError::Unsupported(what) => {
            Error::UnsupportedAudio(format!("cannot {doing}: {what}"))
        }
        SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::InvalidAudio(format!("cannot {doing}: the file is truncated"))
        }
        source => Error::Decode { doing, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono PCM WAV file stating the given sample rate, with 4 samples of silence.
    fn pcm_wav(sample_rate: u32) -> Vec<u8> {
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&1u16.to_le_bytes()); // PCM
        fmt.extend_from_slice(&1u16.to_le_bytes()); // channels
        fmt.extend_from_slice(&sample_rate.to_le_bytes());
        fmt.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // bytes per second
        fmt.extend_from_slice(&2u16.to_le_bytes()); // block alignment
        fmt.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        let data = [0u8; 8];
        let mut wav = b"RIFF".to_vec();
        wav.extend_from_slice(&((4 + 8 + fmt.len() + 8 + data.len()) as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        wav.extend_from_slice(&fmt);
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
        wav.extend_from_slice(&data);
        wav
    }

    #[test]
    fn a_decoder_panic_is_an_invalid_file() {
        assert_eq!(decode_file(pcm_wav(8000), None).unwrap().samples, [0.0; 4]);
        // symphonia 0.5.5 panics on a WAV stating 0 Hz ("TimeBase cannot have 0 numerator
        // or denominator") before our own check of the rate can run.
        let err = decode_file(pcm_wav(0), Some("wav")).unwrap_err();
        assert!(matches!(err, Error::InvalidAudio(_)), "{err}");
        assert!(err.to_string().contains("decoder failed"), "{err}");
    }
}
