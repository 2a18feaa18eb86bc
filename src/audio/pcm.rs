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
        let frame = self.frame_bytes();
        let start_len = out.len();
        let saved_carry = self.carry.clone();
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(chunk);
        let whole = bytes.len() / frame * frame;
        match self.decode_frames(&bytes[..whole], out) {
            Ok(()) => {
                self.carry = bytes[whole..].to_vec();
                Ok(())
            }
            Err(err) => {
                out.truncate(start_len);
                self.carry = saved_carry;
                Err(err)
            }
        }
    }

    fn decode_frames(&mut self, bytes: &[u8], out: &mut Vec<f32>) -> Result<()> {
        let bps = self.format.bytes_per_sample();
        for frame in bytes.chunks_exact(self.frame_bytes()) {
            // Summed in f64: finite f32 channels near f32::MAX overflow an f32 sum to
            // infinity, while their mean is finite (found by fuzz/pcm_decode).
            let mut sum = 0.0f64;
            for sample in frame.chunks_exact(bps) {
                let value = self.sample(sample)?;
                if self.keep_channels {
                    out.push(value);
                }
                sum += value as f64;
            }
            if !self.keep_channels {
                out.push((sum / self.channels as f64) as f32);
            }
            self.frames_decoded += 1;
        }
        Ok(())
    }

    fn sample(&self, bytes: &[u8]) -> Result<f32> {
        Ok(match self.format {
            SampleFormat::S16Le => i16::from_le_bytes([bytes[0], bytes[1]]) as f32 / 32768.0,
            SampleFormat::F32Le => {
                let value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                if let Some(problem) = super::float_sample_problem(value) {
                    return Err(Error::InvalidAudio(format!(
                        "f32 sample {value} at frame {} {problem}",
                        self.frames_decoded
                    )));
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
mod tests {
    use super::*;

    #[test]
    fn channels_are_kept_interleaved_or_averaged() {
        let bytes = encode(&[0.5, -0.25, 0.25, 0.75], SampleFormat::S16Le);
        let (mut mixed, mut kept) = (Vec::new(), Vec::new());
        PcmDecoder::new(SampleFormat::S16Le, 2)
            .unwrap()
            .decode(&bytes, &mut mixed)
            .unwrap();
        let mut separate = PcmDecoder::keeping_channels(SampleFormat::S16Le, 2).unwrap();
        // A frame split across chunks still decodes whole.
        separate.decode(&bytes[..3], &mut kept).unwrap();
        separate.decode(&bytes[3..], &mut kept).unwrap();
        assert_eq!(mixed, [0.125, 0.5]);
        assert_eq!(kept, [0.5, -0.25, 0.25, 0.75]);
    }

    #[test]
    fn g711_round_trips_every_code() {
        for byte in 0..=255u8 {
            let linear = mulaw_to_linear(byte);
            // 0x7F and 0xFF both decode to 0 (the two signed zeros of mu-law).
            if linear != 0 {
                assert_eq!(linear_to_mulaw(linear), byte, "mu-law {byte:#x}");
            }
            assert_eq!(
                linear_to_alaw(alaw_to_linear(byte)),
                byte,
                "A-law {byte:#x}"
            );
        }
    }

    /// A phone line's codec keeps speech-level audio within G.711's ~38 dB SNR.
    #[test]
    fn g711_round_trip_keeps_length_and_quantizes_within_its_snr() {
        let tone: Vec<f32> = (0..8000)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin())
            .collect();
        let power = |y: &[f32]| y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        for format in [SampleFormat::MuLaw, SampleFormat::ALaw] {
            let out = round_trip(&tone, format);
            assert_eq!(out.len(), tone.len());
            let noise: Vec<f32> = tone.iter().zip(&out).map(|(a, b)| a - b).collect();
            let snr = 10.0 * (power(&tone) / power(&noise)).log10();
            assert!((30.0..50.0).contains(&snr), "{format:?}: SNR {snr:.1} dB");
        }
        assert_eq!(round_trip(&tone, SampleFormat::F32Le), tone);
    }

    #[test]
    fn g711_known_values() {
        assert_eq!(mulaw_to_linear(0xFF), 0);
        assert_eq!(mulaw_to_linear(0x80), 32_124);
        assert_eq!(mulaw_to_linear(0x00), -32_124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0xAA), 32_256);
        assert_eq!(alaw_to_linear(0x2A), -32_256);
    }

    #[test]
    fn odd_bytes_are_carried_across_chunks() {
        let samples = [0.5f32, -0.25, 0.125, -1.0];
        let bytes = encode(&samples, SampleFormat::S16Le);
        let mut decoder = PcmDecoder::new(SampleFormat::S16Le, 1).unwrap();
        let mut out = Vec::new();
        for chunk in [&bytes[..1], &bytes[1..4], &bytes[4..5], &bytes[5..]] {
            decoder.decode(chunk, &mut out).unwrap();
        }
        assert_eq!(out, samples);
        assert_eq!(decoder.pending_bytes(), 0);
    }

    #[test]
    fn stereo_is_averaged_to_mono() {
        let mut decoder = PcmDecoder::new(SampleFormat::F32Le, 2).unwrap();
        let bytes = encode(&[0.5, 0.25, -1.0, 1.0], SampleFormat::F32Le);
        let mut out = Vec::new();
        decoder.decode(&bytes, &mut out).unwrap();
        assert_eq!(out, [0.375, 0.0]);
    }

    #[test]
    fn non_finite_floats_are_rejected_without_partial_output() {
        let mut decoder = PcmDecoder::new(SampleFormat::F32Le, 1).unwrap();
        let bytes = encode(&[0.1, f32::NAN, 0.2], SampleFormat::F32Le);
        let mut out = Vec::new();
        let err = decoder.decode(&bytes, &mut out).unwrap_err();
        assert!(err.to_string().contains("not finite"), "{err}");
        assert!(out.is_empty());
        let bytes = encode(&[f32::INFINITY], SampleFormat::F32Le);
        assert!(decoder.decode(&bytes, &mut out).is_err());
    }

    #[test]
    fn floats_beyond_int16_scale_are_rejected() {
        // Floats holding int16 values are accepted (the model ignores level); 1e19 squared
        // over a frame would overflow the power spectrum (found by fuzz/pcm_decode).
        let mut decoder = PcmDecoder::new(SampleFormat::F32Le, 2).unwrap();
        let bytes = encode(&[32_768.0, 32_766.0, -1.5, -0.5], SampleFormat::F32Le);
        let mut out = Vec::new();
        decoder.decode(&bytes, &mut out).unwrap();
        assert_eq!(out, [32_767.0, -1.0]);
        for loud in [32_769.0, 1.0e19, -f32::MAX] {
            let bytes = encode(&[0.0, loud], SampleFormat::F32Le);
            let err = decoder.decode(&bytes, &mut out).unwrap_err();
            assert!(err.to_string().contains("out of range"), "{err}");
        }
    }

    #[test]
    fn channel_counts_are_validated() {
        assert!(PcmDecoder::new(SampleFormat::S16Le, 0).is_err());
        assert!(PcmDecoder::new(SampleFormat::S16Le, 1000).is_err());
    }
}
