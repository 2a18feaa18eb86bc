//! The registry of network architectures, and the traits each one implements. Adding an
//! architecture is one new file (its config, network and inference pass) and one variant in
//! [`Architecture`] with its arm in [`Architecture::spec`]; nothing else in the server or
//! in training asks which architecture it holds.

use candle_core::{Result as CandleResult, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::by_band::ByBandConfig;
use super::card::ModelCard;
use super::cnn2d::Cnn2dConfig;
use super::ensemble::EnsembleConfig;
use super::logmel::LogmelConfig;
use super::recipe::Recipe;
use super::seed::SeedConfig;
use crate::error::Result;

/// What a network reads from the front end for each window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelInput {
    /// The window's log-mel dB frames (T x n_mels), computed incrementally per hop.
    LogMelFrames,
    /// One vector per window computed from its samples (the seed's 162 features).
    ClipVector,
}

/// What the card's `normalization` holds, fitted on the training speakers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputStatistics {
    /// Mean and standard deviation of each value of the clip vector.
    PerFeature,
    /// Of each mel band, after removing each window's own mean as the network does.
    PerBand(super::logmel::InputNorm),
    /// Nothing: the network standardizes each window by itself.
    None,
}

/// A network in training form: its own input normalization, then the layers. Training
/// augments between the two steps (SpecAugment, mixup).
pub trait Network: std::fmt::Debug + Send + Sync {
    /// The raw batch ((B, T, n_mels) log-mel, or (B, width) vectors) as the layers take it;
    /// log-mel networks return (B, n_mels, T), the layout SpecAugment masks.
    fn normalize(&self, x: &Tensor) -> CandleResult<Tensor>;
    /// Logits from `normalize`'s output.
    fn forward_normalized(&self, x: &Tensor, train: bool) -> CandleResult<Tensor>;
    /// Seeds the dropout masks (training is deterministic for a seed).
    fn set_dropout_seed(&self, seed: u64);
    /// The pass the server runs (batch norm folded, layouts for speed); tests check it
    /// equals `forward_t` in evaluation mode.
    fn inference(&self) -> CandleResult<Box<dyn Inference>>;
    /// The pooled embedding the classifier reads, and the logits, from `normalize`'s output:
    /// for training objectives on the embedding (the corpus adversary). `None` where the
    /// network does not expose one.
    fn embed_and_classify(
        &self,
        _x: &Tensor,
        _train: bool,
    ) -> CandleResult<Option<(Tensor, Tensor)>> {
        Ok(None)
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> CandleResult<Tensor> {
        self.forward_normalized(&self.normalize(x)?, train)
    }
}

/// A network in serving form: logits for a batch of raw inputs.
pub trait Inference: std::fmt::Debug + Send + Sync {
    fn forward(&self, x: &Tensor) -> CandleResult<Tensor>;
}

/// A card that does not hold together: the message names the field.
pub(crate) fn invalid_card<T>(message: impl std::fmt::Display) -> Result<T> {
    Err(crate::Error::Model(format!("model.json: {message}")))
}

/// What every architecture's card section can do.
pub trait ArchitectureSpec {
    /// What the front end must compute for each window.
    fn input(&self) -> ModelInput;
    /// Checks the section against the rest of the card (features, labels, statistics);
    /// errors name the field.
    fn validate(&self, card: &ModelCard) -> Result<()>;
    /// The network with weights from `vb` (a safetensors file to serve, a VarMap to train),
    /// with one output per label.
    fn build(&self, card: &ModelCard, vb: VarBuilder) -> CandleResult<Box<dyn Network>>;
    /// What the card's `normalization` must hold.
    fn statistics(&self) -> InputStatistics;
    /// How `sentio-train` trains it by default.
    fn recipe(&self) -> Recipe;
    /// The front end a new model of this architecture is trained with.
    fn default_features(&self) -> crate::FeatureConfig {
        crate::FeatureConfig::streaming_16k()
    }
    /// Multiply-adds x 2 for one window of `frames` frames.
    fn flops(&self, card: &ModelCard, frames: usize) -> u64;
}

/// The card's `architecture` section: `kind` names the architecture, the other fields are
/// its hyper-parameters. Unknown kinds and fields are errors, not silent defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Architecture {
    /// The reference notebook's Conv1D over a 162-value clip vector.
    Seed(SeedConfig),
    /// A compact temporal CNN: mel bands are the channels of 1-D convolutions along time.
    Logmel(LogmelConfig),
    /// A 2-D CNN over the log-mel image, convolving along frequency as well as time.
    Cnn2d(Cnn2dConfig),
    /// The mean distribution of several trained models that share a front end.
    Ensemble(EnsembleConfig),
    /// A wideband and a narrowband (phone-line) model, each window read by the one its
    /// spectrum says it is.
    #[serde(rename = "by_band")]
    ByBand(ByBandConfig),
}

impl Architecture {
    /// The one place that dispatches on the architecture.
    pub fn spec(&self) -> &dyn ArchitectureSpec {
        match self {
            Architecture::Seed(c) => c,
            Architecture::Logmel(c) => c,
            Architecture::Cnn2d(c) => c,
            Architecture::Ensemble(c) => c,
            Architecture::ByBand(c) => c,
        }
    }

    /// The `kind` tag, as the card and `GetModelInfo` spell it.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
            .unwrap_or_default()
    }

    /// An architecture with its default hyper-parameters, by `kind` (training's `--models`).
    pub fn default_of(kind: &str) -> Result<Self> {
        serde_json::from_value(serde_json::json!({ "kind": kind })).map_err(|e| {
            crate::Error::Config(format!(
                "unknown architecture {kind:?} ({e}); expected one of {}",
                Self::NAMES.join(", ")
            ))
        })
    }

    /// The architectures `sentio-train` can train from scratch (ensembles are assembled).
    pub const NAMES: [&'static str; 3] = ["seed", "logmel", "cnn2d"];
}
