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
