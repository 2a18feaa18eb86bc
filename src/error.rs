//! The library's one error type. Every fallible step of the pipeline returns it, so that a
//! caller (the CLI, the gRPC layer) can map each variant to one clear message and status.

/// Everything that can go wrong between bytes and predictions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The audio bytes are malformed: empty, truncated, non-finite samples, undecodable.
    #[error("invalid audio: {0}")]
    InvalidAudio(String),
    /// Well-formed audio that Sentio does not handle (a codec or layout it has no decoder for).
    #[error("unsupported audio: {0}")]
    UnsupportedAudio(String),
    /// A sample rate outside the range the resampler accepts.
    #[error("unsupported sample rate {rate} Hz: must be between {min} and {max} Hz")]
    SampleRate { rate: u64, min: u32, max: u32 },
    /// A feature, window or stream configuration that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A model card or weights file that does not load, or a forward pass that failed.
    #[error("model error: {0}")]
    Model(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<candle_core::Error> for Error {
    fn from(err: candle_core::Error) -> Self {
        Error::Model(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
