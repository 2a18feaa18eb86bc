//! The model card (`model.json`): everything needed to run a model besides its weights, and
//! everything a user needs to judge it (data, metrics, license).

use serde::{Deserialize, Serialize};

use super::architecture::Architecture;
use crate::config::FeatureConfig;
use crate::error::{Error, Result};

/// Per-feature standardization learned on the training speakers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// `model.json`. Unknown fields are errors: a typo must not fall back to a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// Stable identifier reported to clients, e.g. "sentio-logmel-2026.11".
    pub id: String,
    /// Output order of the network.
    pub labels: Vec<String>,
    /// The front end the model was trained with.
    pub features: FeatureConfig,
    /// Default analysis window and hop for streams, and the range a stream may ask for.
    pub window_ms: u32,
    pub hop_ms: u32,
    pub min_window_ms: u32,
    pub max_window_ms: u32,
    #[serde(default)]
    pub normalization: Normalization,
    /// The network: `kind` and its hyper-parameters.
    pub architecture: Architecture,
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
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Model(format!("model.json: {e}")))?;
        migrate_first_format(&mut value);
        let card: ModelCard =
            serde_json::from_value(value).map_err(|e| Error::Model(format!("model.json: {e}")))?;
        card.validate()?;
        Ok(card)
    }

    /// The architecture's name (`architecture.kind`).
    pub fn kind(&self) -> String {
        self.architecture.name()
    }

    pub fn validate(&self) -> Result<()> {
        self.features.validate()?;
        if self.labels.is_empty() {
            return Err(Error::Model("model.json: no labels".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = self.labels.iter().find(|l| !seen.insert(l.as_str())) {
            return Err(Error::Model(format!(
                "model.json: label {dup:?} appears twice"
            )));
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
        self.architecture.spec().validate(self)
    }

    /// Milliseconds to samples at the model rate.
    pub fn ms_to_samples(&self, ms: u32) -> usize {
        (ms as u64 * self.features.sr as u64 / 1000) as usize
    }
}

/// Cards written before the architecture was typed kept `kind` at the top level, an
/// untyped `architecture` (null for the seed) and descriptive keys no network read: move
/// `kind` into `architecture` and drop those keys, so existing model directories load.
fn migrate_first_format(card: &mut serde_json::Value) {
    let Some(object) = card.as_object_mut() else {
        return;
    };
    let Some(kind) = object.remove("kind") else {
        return;
    };
    let mut architecture = match object.remove("architecture") {
        Some(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    architecture.remove("pooling");
    architecture.insert("kind".into(), kind);
    object.insert(
        "architecture".into(),
        serde_json::Value::Object(architecture),
    );
}
