//! The model card (`model.json`): everything needed to run a model besides its weights, and
//! everything a user needs to judge it (data, metrics, license).

use serde::{Deserialize, Serialize};

use crate::config::FeatureConfig;
use crate::error::{Error, Result};

/// Which architecture the weights belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The reference notebook's Conv1D over a 162-value clip vector.
    Seed,
    /// Sentio's compact temporal CNN over a window's log-mel frames.
    Logmel,
}

/// Per-feature standardization learned on the training speakers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// `model.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Stable identifier reported to clients, e.g. "sentio-logmel-2026.11".
    pub id: String,
    pub kind: ModelKind,
    /// Output order of the network.
    pub labels: Vec<String>,
    /// The front end the model was trained with.
    pub features: FeatureConfig,
    /// Default analysis window and hop for streams, and the range a stream may ask for.
    pub window_ms: u32,
    pub hop_ms: u32,
    pub min_window_ms: u32,
    pub max_window_ms: u32,
    pub normalization: Normalization,
    /// Architecture hyper-parameters (kept as JSON: each kind reads its own).
    #[serde(default)]
    pub architecture: serde_json::Value,
    /// How it was trained: data, split, epochs, seed, duration.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Test-speaker metrics (UAR, accuracy, per class, per dataset).
    #[serde(default)]
    pub metrics: serde_json::Value,
    pub license: String,
}

impl ModelCard {
    pub fn from_json(text: &str) -> Result<Self> {
        let card: ModelCard =
            serde_json::from_str(text).map_err(|e| Error::Model(format!("model.json: {e}")))?;
        card.validate()?;
        Ok(card)
    }

    pub fn validate(&self) -> Result<()> {
        self.features.validate()?;
        if self.labels.is_empty() {
            return Err(Error::Model("model.json: no labels".into()));
        }
        let rate = self.features.sr as u64;
        let window = self.window_ms as u64 * rate / 1000;
        if !(self.min_window_ms <= self.window_ms && self.window_ms <= self.max_window_ms)
            || self.hop_ms == 0
            || self.hop_ms > self.window_ms
            || window < self.features.n_fft as u64
        {
            return Err(Error::Model(format!(
                "model.json: window {} ms (range {}..={}), hop {} ms do not fit n_fft {}",
                self.window_ms,
                self.min_window_ms,
                self.max_window_ms,
                self.hop_ms,
                self.features.n_fft
            )));
        }
        if self.normalization.mean.len() != self.normalization.std.len()
            || self
                .normalization
                .std
                .iter()
                .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(Error::Model(
                "model.json: normalization mean/std invalid".into(),
            ));
        }
        Ok(())
    }

    /// Milliseconds to samples at the model rate.
    pub fn ms_to_samples(&self, ms: u32) -> usize {
        (ms as u64 * self.features.sr as u64 / 1000) as usize
    }
}
