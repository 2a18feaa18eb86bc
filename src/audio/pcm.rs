//! Raw sample decoding for streamed chunks: little-endian s16 and f32 PCM and 8-bit G.711
//! (mu-law, A-law), interleaved channels downmixed to mono. Chunks may split a frame
//! anywhere; the partial frame is carried to the next chunk, never dropped.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The sample encodings a stream may carry (a clap value for the CLIs, with the usual
/// aliases).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    #[value(name = "s16le", aliases = ["s16", "pcm_s16le"])]
    S16Le,
    #[value(name = "f32le", aliases = ["f32", "pcm_f32le"])]
    F32Le,
    #[value(name = "mulaw", aliases = ["ulaw", "mu-law", "pcmu"])]
    MuLaw,
    #[value(name = "alaw", aliases = ["a-law", "pcma"])]
    ALaw,
}

impl SampleFormat {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            SampleFormat::S16Le => 2,
            SampleFormat::F32Le => 4,
            SampleFormat::MuLaw | SampleFormat::ALaw => 1,
        }
    }
}

impl std::str::FromStr for SampleFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "s16le" | "s16" | "pcm_s16le" => Ok(SampleFormat::S16Le),
            "f32le" | "f32" | "pcm_f32le" => Ok(SampleFormat::F32Le),
            "mulaw" | "ulaw" | "mu-law" | "pcmu" => Ok(SampleFormat::MuLaw),
            "alaw" | "a-law" | "pcma" => Ok(SampleFormat::ALaw),
            other => Err(Error::Config(format!(
                "unknown sample format {other:?}: expected s16le, f32le, mulaw or alaw"
            ))),
        }
    }
}

/// The most channels a stream may interleave.
pub const MAX_CHANNELS: usize = 32;

/// Turns byte chunks into mono f32 samples in [-1, 1] (f32 input is taken as is, but must be
/// finite).
#[derive(Debug)]
pub struct PcmDecoder {
    format: SampleFormat,
    channels: usize,
    /// Bytes of an incomplete frame left over from the previous chunk.
    carry: Vec<u8>,
    /// Frames decoded so far, for error messages that say where.
    frames_decoded: u64,
    /// Keep every channel's sample (interleaved) instead of averaging each frame to mono.
    keep_channels: bool,
}

impl PcmDecoder {
    pub fn new(format: SampleFormat, channels: usize) -> Result<Self> {
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(Error::Config(format!(
                "channels must be within 1..={MAX_CHANNELS}, got {channels}"
            )));
        }
        Ok(Self {
            format,
            channels,
            carry: Vec::new(),
            frames_decoded: 0,
            keep_channels: false,
        })
    }

    /// A decoder that appends every channel's samples, still interleaved, instead of their
    /// mean (for channels analysed separately).
    pub fn keeping_channels(format: SampleFormat, channels: usize) -> Result<Self> {
        Ok(Self {
            keep_channels: true,
            ..Self::new(format, channels)?
        })
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    fn frame_bytes(&self) -> usize {
        self.format.bytes_per_sample() * self.channels
    }

    /// Bytes held back because they do not yet make a whole frame.
    pub fn pending_bytes(&self) -> usize {
        self.carry.len()
    }

    /// Decodes one chunk, appending mono samples to `out` (or every channel's, interleaved,
    /// for a decoder `keeping_channels`). On error nothing is appended and
    /// the decoder is left as it was before the call.
    pub fn decode(&mut self, chunk: &[u8], out: &mut Vec<f32>) -> Result<()> {
        let (start_len, carried, frames_before) =
            (out.len(), self.carry.clone(), self.frames_decoded);
        let result = self.decode_chunk(chunk, out);
        if result.is_err() {
            out.truncate(start_len);
            self.carry = carried;
            self.frames_decoded = frames_before;
        }
        result
    }

    /// Completes the frame the last chunk left partial, then decodes the rest of the chunk
    /// where it lies (no copy: at 100 small messages a second per stream this is hot).
    fn decode_chunk(&mut self, mut chunk: &[u8], out: &mut Vec<f32>) -> Result<()> {
        let frame = self.frame_bytes();
        if !self.carry.is_empty() {
            let fill = (frame - self.carry.len()).min(chunk.len());
            self.carry.extend_from_slice(&chunk[..fill]);
            chunk = &chunk[fill..];
            if self.carry.len() < frame {
                return Ok(());
            }
            let partial = std::mem::take(&mut self.carry);
            self.decode_frames(&partial, out)?;
        }
        let whole = chunk.len() / frame * frame;
        self.decode_frames(&chunk[..whole], out)?;
        self.carry.extend_from_slice(&chunk[whole..]);
        Ok(())
    }

    fn decode_frames(&mut self, bytes: &[u8], out: &mut Vec<f32>) -> Result<()> {
        if self.channels == 1 || self.keep_channels {
            self.decode_samples(bytes, out)?;
        } else {
            self.decode_downmixed(bytes, out)?;
        }
        self.frames_decoded += (bytes.len() / self.frame_bytes()) as u64;
        Ok(())
    }

    /// Every sample is an output sample (mono, or channels kept): one tight loop per format.
    fn decode_samples(&self, bytes: &[u8], out: &mut Vec<f32>) -> Result<()> {
        let start = out.len();
        match self.format {
            SampleFormat::S16Le => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0),
            ),
            SampleFormat::F32Le => {
                out.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                // One branch-free pass over the chunk; the slow search runs only on bad input.
                let valid = out[start..]
                    .iter()
                    .fold(true, |ok, v| ok & (v.abs() <= super::MAX_FLOAT_SAMPLE));
                let first_bad = (!valid)
                    .then(|| {
                        (out[start..].iter())
                            .position(|v| super::float_sample_problem(*v).is_some())
                    })
                    .flatten();
                if let Some(at) = first_bad {
                    return Err(self.float_error(out[start + at], at / self.channels));
                }
            }
            SampleFormat::MuLaw => {
                out.extend(bytes.iter().map(|&b| mulaw_to_linear(b) as f32 / 32768.0))
            }
            SampleFormat::ALaw => {
                out.extend(bytes.iter().map(|&b| alaw_to_linear(b) as f32 / 32768.0))
            }
        }
        Ok(())
    }

    /// Each frame's channels averaged to one sample.
    fn decode_downmixed(&self, bytes: &[u8], out: &mut Vec<f32>) -> Result<()> {
        let bps = self.format.bytes_per_sample();
        for (index, frame) in bytes.chunks_exact(self.frame_bytes()).enumerate() {
            // Summed in f64: finite f32 channels near f32::MAX overflow an f32 sum to
            // infinity, while their mean is finite (found by fuzz/pcm_decode).
            let mut sum = 0.0f64;
            for sample in frame.chunks_exact(bps) {
                sum += self.sample(sample, index)? as f64;
            }
            out.push((sum / self.channels as f64) as f32);
        }
        Ok(())
    }

    fn float_error(&self, value: f32, frame_in_chunk: usize) -> Error {
        let problem = super::float_sample_problem(value).unwrap_or("is invalid");
        Error::InvalidAudio(format!(
            "f32 sample {value} at frame {} {problem}",
            self.frames_decoded + frame_in_chunk as u64
        ))
    }

    fn sample(&self, bytes: &[u8], frame_in_chunk: usize) -> Result<f32> {
        Ok(match self.format {
            SampleFormat::S16Le => i16::from_le_bytes([bytes[0], bytes[1]]) as f32 / 32768.0,
            SampleFormat::F32Le => {
                let value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                if super::float_sample_problem(value).is_some() {
                    return Err(self.float_error(value, frame_in_chunk));
                }
                value
            }
            SampleFormat::MuLaw => mulaw_to_linear(bytes[0]) as f32 / 32768.0,
            SampleFormat::ALaw => alaw_to_linear(bytes[0]) as f32 / 32768.0,
        })
    }
}

/// G.711 mu-law byte to 16-bit linear PCM (ITU-T G.711, as in Sun's reference g711.c).
pub fn mulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// 16-bit linear PCM to a G.711 mu-law byte.
pub fn linear_to_mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut value = sample as i32;
    let sign = if value < 0 {
        value = -value;
        0x80
    } else {
        0
    };
    value = value.min(CLIP) + BIAS;
    let mut exponent = 7u8;
    let mut mask = 0x4000;
    while exponent > 0 && value & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = ((value >> (exponent + 3)) & 0x0F) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// G.711 A-law byte to 16-bit linear PCM.
pub fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let segment = (a >> 4) & 0x07;
    let mut magnitude = ((a & 0x0F) as i32) << 4;
    magnitude += if segment == 0 { 8 } else { 0x108 };
    if segment > 1 {
        magnitude <<= segment - 1;
    }
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// 16-bit linear PCM to a G.711 A-law byte.
pub fn linear_to_alaw(sample: i16) -> u8 {
    const SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut value = (sample as i32) >> 3;
    let mask = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let Some(segment) = SEGMENT_ENDS.iter().position(|&end| value <= end) else {
        return 0x7F ^ mask;
    };
    let shift = if segment < 2 { 1 } else { segment };
    let code = ((segment as i32) << 4) | ((value >> shift) & 0x0F);
    code as u8 ^ mask
}

/// Float sample in [-1, 1] to 16-bit PCM, saturating.
pub fn f32_to_i16(sample: f32) -> i16 {
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Encodes mono f32 samples in the given format (tests, the client, telephony simulation).
pub fn encode(samples: &[f32], format: SampleFormat) -> Vec<u8> {
    match format {
        SampleFormat::S16Le => samples
            .iter()
            .flat_map(|&s| f32_to_i16(s).to_le_bytes())
            .collect(),
        SampleFormat::F32Le => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        SampleFormat::MuLaw => samples
            .iter()
            .map(|&s| linear_to_mulaw(f32_to_i16(s)))
            .collect(),
        SampleFormat::ALaw => samples
            .iter()
            .map(|&s| linear_to_alaw(f32_to_i16(s)))
            .collect(),
    }
}

/// A G.711 (or 16-bit PCM) round trip: encode, then decode as a receiver would. Only the
/// companding formats change the samples beyond 16-bit rounding.
pub fn round_trip(samples: &[f32], format: SampleFormat) -> Vec<f32> {
    let bytes = encode(samples, format);
    match format {
        SampleFormat::MuLaw => bytes
            .iter()
            .map(|&b| mulaw_to_linear(b) as f32 / 32768.0)
            .collect(),
        SampleFormat::ALaw => bytes
            .iter()
            .map(|&b| alaw_to_linear(b) as f32 / 32768.0)
            .collect(),
        SampleFormat::S16Le => samples
            .iter()
            .map(|&s| f32_to_i16(s) as f32 / 32768.0)
            .collect(),
        SampleFormat::F32Le => samples.to_vec(),
    }
}

#[cfg(test)]
#[path = "pcm_tests.rs"]
mod tests;
