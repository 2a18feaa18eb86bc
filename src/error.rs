//! The library's one error type. Every fallible step of the pipeline returns it, so that a
//! caller (the CLI, the gRPC layer) can map each variant to one clear message and status.
//!
//! A variant caused by another crate's error keeps it as its `source()` and does not repeat
//! it in its own message (anyhow's `{:#}` and [`chain`] print the whole cause chain).

use std::path::PathBuf;

/// Everything that can go wrong between bytes and predictions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The audio bytes are malformed: empty, truncated, non-finite samples, undecodable.
    #[error("invalid audio: {0}")]
    InvalidAudio(String),
    /// Well-formed audio that Sentio does not handle (a codec or layout it has no decoder for).
    #[error("unsupported audio: {0}")]
    UnsupportedAudio(String),
    /// The container decoder rejected the bytes.
    #[error("invalid audio: cannot {doing}")]
    Decode {
        doing: &'static str,
        #[source]
        source: symphonia::core::errors::Error,
    },
    /// A sample rate outside the range the resampler accepts.
    #[error("unsupported sample rate {rate} Hz: must be between {min} and {max} Hz")]
    SampleRate { rate: u64, min: u32, max: u32 },
    /// The resampler failed on a block of audio.
    #[error("invalid audio: resampler")]
    Resample(#[from] rubato::ResampleError),
    /// A feature, window or stream configuration that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No resampler can be built between these rates.
    #[error("invalid configuration: resampler for {from_hz} Hz -> {to_hz} Hz")]
    ResamplerSetup {
        from_hz: u32,
        to_hz: u32,
        #[source]
        source: rubato::ResamplerConstructionError,
    },
    /// A model card that contradicts itself or its weights.
    #[error("model error: {0}")]
    Model(String),
    /// A model card that is not valid JSON for its schema.
    #[error("model error: model.json")]
    Card(#[from] serde_json::Error),
    /// Tensor work failed: weights that do not load, a forward pass, a device.
    #[error("model error")]
    Tensor(#[from] candle_core::Error),
    /// Weights whose tensors do not match the card's architecture.
    #[error("model error: model.safetensors does not fit model.json")]
    WeightsMismatch(#[source] candle_core::Error),
    /// A CUDA device that cannot be opened.
    #[error("invalid configuration: cannot open CUDA device {ordinal}")]
    Device {
        ordinal: usize,
        #[source]
        source: candle_core::Error,
    },
    /// A file Sentio was told to read.
    #[error("cannot read {}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The gRPC transport (bind, TLS, reflection) could not start or failed.
    #[error("server: {what}")]
    Server {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("I/O error")]
    Io(#[from] std::io::Error),
}

/// An error and its causes, joined with ": " (what a gRPC status or a log line carries).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_and_printed_once() {
        let err = Error::File {
            path: "model.json".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(chain(&err), "cannot read model.json: no such file");
    }
}
