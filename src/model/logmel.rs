//! Sentio's compact temporal CNN over the log-mel frames of a window. Mel bands are the
//! input channels of 1-D convolutions along time (cheap: ~20 MFLOP for a 2 s window), with
//! batch norm, and mean + max pooling over time so any window length works.
//!
//! Normalization lives in the network so training and serving cannot diverge: each window's
//! own mean is removed first ([`InputNorm`]: its overall level, since recording gain is a
//! corpus artefact, not an emotion; or each band's mean, which also removes the channel's
//! spectral colouring), then each band is standardized with training-speaker statistics.

use candle_core::{D, Module, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::architecture::{ArchitectureSpec, InputStatistics, ModelInput, Network, invalid_card};
use super::card::ModelCard;
use super::conv::TemporalConv;
use super::dropout::SeededDropout;
use super::recipe::{Augmentation, Recipe};

/// One convolution block: channels out, kernel along time, max pool of 2 frames after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogmelBlock {
    pub channels: usize,
    pub kernel: usize,
    pub max_pool_2: bool,
}

/// The card's `architecture` section for this network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogmelConfig {
    pub input_norm: InputNorm,
    pub blocks: Vec<LogmelBlock>,
    /// Dropout before the classifier (training only).
    pub dropout: f32,
}

impl Default for LogmelConfig {
    fn default() -> Self {
        let block = |channels, kernel, max_pool_2| LogmelBlock {
            channels,
            kernel,
            max_pool_2,
        };
        Self {
            input_norm: InputNorm::Level,
            blocks: vec![
                block(64, 5, true),
                block(96, 5, true),
                block(128, 3, true),
                block(128, 3, false),
            ],
            dropout: 0.3,
        }
    }
}

impl ArchitectureSpec for LogmelConfig {
    fn input(&self) -> ModelInput {
        ModelInput::LogMelFrames
    }

    fn validate(&self, card: &ModelCard) -> crate::Result<()> {
        if self.blocks.is_empty()
            || self
                .blocks
                .iter()
                .any(|b| b.channels == 0 || b.kernel % 2 == 0)
        {
            return invalid_card(
                "architecture.blocks: need at least one block, channels > 0 and odd kernels",
            );
        }
        let n_mels = card.features.n_mels;
        if card.normalization.mean.len() != n_mels {
            return invalid_card(format!(
                "normalization.mean has {} values, features.n_mels is {n_mels}",
                card.normalization.mean.len()
            ));
        }
        Ok(())
    }

    fn build(&self, card: &ModelCard, vb: VarBuilder) -> Result<Box<dyn Network>> {
        let norm = &card.normalization;
        Ok(Box::new(LogMelNet::new(
            vb,
            self,
            card.features.n_mels,
            card.labels.len(),
            &norm.mean,
            &norm.std,
        )?))
    }

    fn statistics(&self) -> InputStatistics {
        InputStatistics::PerBand(self.input_norm)
    }

    /// The first recipe (`Recipe::default`) plus what targets strangers on phone lines: the
    /// speaker-and-phone variant, a 30% clean share (phone audio in about 28% of draws), mel
    /// shifts and label smoothing (EXPERIMENTS.md E3; E2 also capped calm's weight: worse).
    fn recipe(&self) -> Recipe {
        Recipe {
            augmentations: Augmentation::SPEAKER_AND_PHONE.to_vec(),
            original_prob: 0.3,
            label_smoothing: 0.05,
            mel_shift_prob: 0.5,
            mel_shift_bands: 2,
            ..Recipe::default()
        }
    }

    fn flops(&self, card: &ModelCard, frames: usize) -> u64 {
        let (mut t, mut c_in, mut total) = (frames, card.features.n_mels, 0u64);
        for b in &self.blocks {
            total += 2 * (t * c_in * b.kernel * b.channels) as u64;
            c_in = b.channels;
            if b.max_pool_2 {
                t /= 2;
            }
        }
        total
    }
}

/// What each window has removed before band standardization (`architecture.input_norm` in
/// the model card).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputNorm {
    /// The window's mean over all bands and frames.
    #[default]
    Level,
    /// Each band's mean over the window's frames (cepstral-mean-style channel removal).
    BandMean,
    /// The window's mean, then its standard deviation, over all bands and frames (the
    /// reference CNN's per-window normalization: a recording's dynamic range and noise floor
    /// no longer set the input's scale).
    Standardize,
}

/// Keeps a silent window's standard deviation away from zero, in dB.
pub(crate) const MIN_WINDOW_STD_DB: f64 = 1e-3;

#[derive(Debug)]
pub struct LogMelNet {
    blocks: Vec<(TemporalConv, BatchNorm, bool)>,
    pub dropout: SeededDropout,
    head: Linear,
    band_mean: Tensor,
    band_std: Tensor,
    input_norm: InputNorm,
}

/// A trained network's parameters, for the inference pass of `folded`.
pub struct LogMelParts<'a> {
    /// Each block's convolution weight (out, in, k) and batch norm.
    pub blocks: Vec<(&'a Tensor, &'a BatchNorm, bool)>,
    pub head: &'a Linear,
    pub band_mean: &'a Tensor,
    pub band_std: &'a Tensor,
    pub input_norm: InputNorm,
}

impl LogMelNet {
    pub fn parts(&self) -> LogMelParts<'_> {
        LogMelParts {
            blocks: self
                .blocks
                .iter()
                .map(|(conv, bn, pool)| (conv.weight(), bn, *pool))
                .collect(),
            head: &self.head,
            band_mean: &self.band_mean,
            band_std: &self.band_std,
            input_norm: self.input_norm,
        }
    }

    pub fn new(
        vb: VarBuilder,
        config: &LogmelConfig,
        n_mels: usize,
        outputs: usize,
        band_mean: &[f32],
        band_std: &[f32],
    ) -> Result<Self> {
        let mut blocks = Vec::new();
        let mut channels = n_mels;
        for (i, b) in config.blocks.iter().enumerate() {
            let (out, k, pool) = (b.channels, b.kernel, b.max_pool_2);
            let conv = TemporalConv::new(
                channels,
                out,
                k,
                (k / 2, k / 2),
                false,
                vb.pp(format!("block{i}.conv")),
            )?;
            let bn = candle_nn::batch_norm(out, 1e-5, vb.pp(format!("block{i}.bn")))?;
            blocks.push((conv, bn, pool));
            channels = out;
        }
        let head = candle_nn::linear(2 * channels, outputs, vb.pp("head"))?;
        let device = vb.device();
        Ok(Self {
            blocks,
            dropout: SeededDropout::new(config.dropout),
            head,
            band_mean: Tensor::from_slice(band_mean, (1, n_mels, 1), device)?,
            band_std: Tensor::from_slice(band_std, (1, n_mels, 1), device)?,
            input_norm: config.input_norm,
        })
    }

    /// Removes each window's own mean, then standardizes bands: input (B, T, n_mels) of
    /// log-mel dB, output (B, n_mels, T). Used by training for statistics and augmentation.
    pub fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.transpose(1, 2)?;
        let x = match self.input_norm {
            InputNorm::Level => x.broadcast_sub(&x.mean_keepdim(D::Minus1)?.mean_keepdim(1)?)?,
            InputNorm::BandMean => x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?,
            InputNorm::Standardize => {
                let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?.mean_keepdim(1)?)?;
                let var = centred.sqr()?.mean_keepdim(D::Minus1)?.mean_keepdim(1)?;
                centred.broadcast_div(&(var.sqrt()? + MIN_WINDOW_STD_DB)?)?
            }
        };
        x.broadcast_sub(&self.band_mean)?
            .broadcast_div(&self.band_std)
    }

    /// The pooled embedding (B, 2 x last channels) and the logits from normalized input
    /// (B, n_mels, T).
    pub fn embed_and_classify(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let mut x = x.clone();
        for (conv, bn, pool) in &self.blocks {
            x = bn.forward_t(&conv.forward(&x)?, train)?.relu()?;
            if *pool && x.dim(D::Minus1)? >= 2 {
                x = super::conv::max_pool_pairs(&x)?;
            }
        }
        let pooled = Tensor::cat(&[x.mean(D::Minus1)?, x.max(D::Minus1)?], 1)?;
        let logits = self
            .head
            .forward(&self.dropout.forward_t(&pooled, train)?)?;
        Ok((pooled, logits))
    }

    /// Logits from normalized input (B, n_mels, T).
    pub fn forward_normalized(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.embed_and_classify(x, train)?.1)
    }

    /// Logits for a batch of log-mel windows (B, T, n_mels).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_normalized(&self.normalize(x)?, train)
    }
}

impl Network for LogMelNet {
    fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        LogMelNet::normalize(self, x)
    }

    fn forward_normalized(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        LogMelNet::forward_normalized(self, x, train)
    }

    fn set_dropout_seed(&self, seed: u64) {
        self.dropout.set_seed(seed);
    }

    fn inference(&self) -> Result<Box<dyn super::architecture::Inference>> {
        Ok(Box::new(super::folded::FoldedLogMelNet::new(self)?))
    }

    fn embed_and_classify(&self, x: &Tensor, train: bool) -> Result<Option<(Tensor, Tensor)>> {
        LogMelNet::embed_and_classify(self, x, train).map(Some)
    }
}

/// One window's log-mel values (T x n_mels, frame-major) with its own mean removed (and
/// for `Standardize` its scale) as `norm` says: the quantity whose per-band mean and
/// standard deviation the card stores.
pub fn remove_window_mean(window: &[f32], n_mels: usize, norm: InputNorm) -> Vec<f32> {
    let frames = (window.len() / n_mels.max(1)).max(1);
    let mut means = vec![0.0f64; n_mels];
    for frame in window.chunks_exact(n_mels) {
        means
            .iter_mut()
            .zip(frame)
            .for_each(|(m, &v)| *m += v as f64 / frames as f64);
    }
    if norm != InputNorm::BandMean {
        let level = means.iter().sum::<f64>() / n_mels as f64;
        means.iter_mut().for_each(|m| *m = level);
    }
    let centred = window
        .iter()
        .enumerate()
        .map(|(i, &v)| v - means[i % n_mels] as f32);
    if norm != InputNorm::Standardize {
        return centred.collect();
    }
    let var = window
        .iter()
        .map(|&v| (v as f64 - means[0]).powi(2))
        .sum::<f64>()
        / window.len().max(1) as f64;
    let scale = (var.sqrt() + MIN_WINDOW_STD_DB) as f32;
    centred.map(|v| v / scale).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A standardized window has mean 0 and standard deviation 1 over all its values, so a
    /// louder or more dynamic recording of the same pattern gives the same input.
    #[test]
    fn standardize_removes_level_and_scale() {
        let window: Vec<f32> = (0..40).map(|i| -60.0 + (i * 7 % 13) as f32).collect();
        let louder: Vec<f32> = window.iter().map(|v| 3.0 * v + 20.0).collect();
        let a = remove_window_mean(&window, 4, InputNorm::Standardize);
        let b = remove_window_mean(&louder, 4, InputNorm::Standardize);
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
            "{mean} {var}"
        );
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-3));
    }
}
