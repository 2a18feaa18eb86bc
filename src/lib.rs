//! Sentio: streaming speech-emotion recognition.
//!
//! The pipeline, one module per stage: [`audio`] (decode, resample, window) ->
//! [`features`] (librosa-compatible, incremental per hop) -> the model.

pub mod audio;
pub mod config;
pub mod error;
pub mod features;
pub mod model;

pub use config::FeatureConfig;
pub use error::{Error, Result};
