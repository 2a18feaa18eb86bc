//! Sentio: streaming speech-emotion recognition.
//!
//! The pipeline, one module per stage: [`audio`] (decode, resample, window) ->
//! [`features`] (librosa-compatible, incremental per hop) -> [`pipeline`] (windows ready
//! for the model) -> [`serve`] (sessions, the cross-client batcher, the model thread).

pub mod audio;
pub mod classify;
pub mod config;
pub mod error;
pub mod features;
pub mod model;
pub mod panics;
pub mod pipeline;
#[cfg(feature = "plots")]
pub mod plot_font;
pub mod proto;
pub mod report;
pub mod serve;
pub mod telemetry;

pub use config::FeatureConfig;
pub use error::{Error, Result};
