//! From bytes to mono samples at the model rate: raw PCM and G.711 chunks as streams send
//! them, whole files in any common container, streaming resampling, and windowing.

pub mod container;
pub mod pcm;
pub mod resample;
pub mod window;

pub use container::{DecodedAudio, decode_file, decode_path};
pub use pcm::{PcmDecoder, SampleFormat};
pub use resample::StreamResampler;
pub use window::{Window, WindowAssembler};

/// Lowest and highest input sample rates Sentio accepts.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
pub const MAX_SAMPLE_RATE: u32 = 192_000;

/// Largest float sample magnitude accepted. Full scale is ±1.0, but floats holding int16
/// values (up to ±32768) are a common mistake that the level-invariant model still reads
/// correctly; anything beyond cannot be audio, and near 1e16 a frame's power overflows f32.
pub const MAX_FLOAT_SAMPLE: f32 = 32_768.0;

/// Why a decoded float sample cannot be used, or None when it can.
pub fn float_sample_problem(value: f32) -> Option<&'static str> {
    if !value.is_finite() {
        Some("is not finite")
    } else if value.abs() > MAX_FLOAT_SAMPLE {
        Some("is out of range (float samples are full scale at ±1.0; at most ±32768 is accepted)")
    } else {
        None
    }
}
