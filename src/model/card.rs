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
    /// Present when the network was trained on windows read against the caller's running
    /// spectrum (`features::adaptation`); streams then adapt unless they opt out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptation: Option<crate::features::AdaptationConfig>,
}

impl ModelCard {
    pub fn from_json(text: &str) -> Result<Self> {
        let mut value: serde_json::Value = serde_json::from_str(text)?;
        migrate_first_format(&mut value);
        let card: ModelCard = serde_json::from_value(value)?;
        card.validate()?;
        Ok(card)
    }

    /// The corpora the weights were trained on (`training.data`, or every ensemble member's),
    /// sorted, without repeats.
    pub fn training_data(&self) -> Vec<String> {
        let mut data = std::collections::BTreeSet::new();
        let mut collect = |training: &serde_json::Value| {
            if let Some(list) = training.get("data").and_then(|d| d.as_array()) {
                data.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
            }
        };
        collect(&self.training);
        if let Some(members) = self.training.get("members").and_then(|m| m.as_array()) {
            members
                .iter()
                .filter_map(|m| m.get("training"))
                .for_each(&mut collect);
        }
        data.into_iter().collect()
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
        if let Some(adaptation) = &self.adaptation {
            if self.architecture.spec().input() != crate::model::ModelInput::LogMelFrames {
                return Err(Error::Model(
                    "model.json: adaptation needs a log-mel model".into(),
                ));
            }
            adaptation
                .validate(self.features.n_mels)
                .map_err(|e| Error::Model(format!("model.json: {e}")))?;
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

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use crate::model::Model;

    const CARD: &str = include_str!("../../models/logmel/model.json");
    const WEIGHTS: &[u8] = include_bytes!("../../models/logmel/model.safetensors");

    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut card: serde_json::Value = serde_json::from_str(CARD).unwrap();
        edit(&mut card);
        card.to_string()
    }

    fn load_error(card: &str) -> String {
        Model::from_bytes(card, WEIGHTS, &Device::Cpu)
            .map(|_| ())
            .map_err(|e| crate::error::chain(&e))
            .unwrap_err()
    }

    #[test]
    fn typos_and_unknown_kinds_are_errors_that_name_the_field() {
        let typo = edited(|c| c["architecture"]["input_nrm"] = "band_mean".into());
        assert!(
            load_error(&typo).contains("unknown field `input_nrm`"),
            "{}",
            load_error(&typo)
        );
        let kind = edited(|c| c["architecture"]["kind"] = "transformer".into());
        assert!(
            load_error(&kind).contains("unknown variant `transformer`"),
            "{}",
            load_error(&kind)
        );
        let top = edited(|c| c["licence"] = "typo".into());
        assert!(
            load_error(&top).contains("unknown field `licence`"),
            "{}",
            load_error(&top)
        );
    }

    #[test]
    fn labels_that_do_not_match_the_network_fail_at_load() {
        let six = edited(|c| {
            c["labels"] = serde_json::json!(["a", "b", "c", "d", "e", "f"]);
        });
        let error = load_error(&six);
        assert!(error.contains("does not fit"), "{error}");
        let twice = edited(|c| c["labels"][1] = "neutral".into());
        assert!(load_error(&twice).contains("appears twice"));
    }

    #[test]
    fn statistics_must_fit_the_architecture() {
        let short = edited(|c| {
            c["normalization"]["mean"] = serde_json::json!(vec![0.0; 10]);
            c["normalization"]["std"] = serde_json::json!(vec![1.0; 10]);
        });
        assert!(load_error(&short).contains("normalization.mean has 10 values"));
    }

    /// Cards written before the architecture was typed (top-level `kind`) still load.
    #[test]
    fn first_format_cards_load() {
        let old = edited(|c| {
            let kind = c["architecture"]["kind"].take();
            c["architecture"] = serde_json::Value::Null;
            c["kind"] = kind;
        });
        let model = Model::from_bytes(&old, WEIGHTS, &Device::Cpu).unwrap();
        assert_eq!(model.card.kind(), "logmel");
    }
}
