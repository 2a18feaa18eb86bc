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

use super::conv::TemporalConv;
use super::dropout::SeededDropout;

/// (output channels, kernel size, pool after) of each convolution block.
pub const BLOCKS: [(usize, usize, bool); 4] = [
    (64, 5, true),
    (96, 5, true),
    (128, 3, true),
    (128, 3, false),
];

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
}

impl InputNorm {
    pub fn from_architecture(architecture: &serde_json::Value) -> Self {
        architecture
            .get("input_norm")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }
}

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
    pub blocks: Vec<(&'a Tensor, &'a BatchNorm)>,
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
                .map(|(conv, bn, _)| (conv.weight(), bn))
                .collect(),
            head: &self.head,
            band_mean: &self.band_mean,
            band_std: &self.band_std,
            input_norm: self.input_norm,
        }
    }

    pub fn new(
        vb: VarBuilder,
        n_mels: usize,
        band_mean: &[f32],
        band_std: &[f32],
        dropout: f32,
        input_norm: InputNorm,
    ) -> Result<Self> {
        let mut blocks = Vec::new();
        let mut channels = n_mels;
        for (i, &(out, k, pool)) in BLOCKS.iter().enumerate() {
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
        let head = candle_nn::linear(2 * channels, 8, vb.pp("head"))?;
        let device = vb.device();
        Ok(Self {
            blocks,
            dropout: SeededDropout::new(dropout),
            head,
            band_mean: Tensor::from_slice(band_mean, (1, n_mels, 1), device)?,
            band_std: Tensor::from_slice(band_std, (1, n_mels, 1), device)?,
            input_norm,
        })
    }

    /// Removes each window's own mean, then standardizes bands: input (B, T, n_mels) of
    /// log-mel dB, output (B, n_mels, T). Used by training for statistics and augmentation.
    pub fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.transpose(1, 2)?;
        let level = match self.input_norm {
            InputNorm::Level => x.mean_keepdim(D::Minus1)?.mean_keepdim(1)?,
            InputNorm::BandMean => x.mean_keepdim(D::Minus1)?,
        };
        x.broadcast_sub(&level)?
            .broadcast_sub(&self.band_mean)?
            .broadcast_div(&self.band_std)
    }

    /// Logits from normalized input (B, n_mels, T).
    pub fn forward_normalized(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.clone();
        for (conv, bn, pool) in &self.blocks {
            x = bn.forward_t(&conv.forward(&x)?, train)?.relu()?;
            if *pool && x.dim(D::Minus1)? >= 2 {
                x = x
                    .unsqueeze(2)?
                    .max_pool2d_with_stride((1, 2), (1, 2))?
                    .squeeze(2)?;
            }
        }
        let pooled = Tensor::cat(&[x.mean(D::Minus1)?, x.max(D::Minus1)?], 1)?;
        self.head.forward(&self.dropout.forward_t(&pooled, train)?)
    }

    /// Logits for a batch of log-mel windows (B, T, n_mels).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_normalized(&self.normalize(x)?, train)
    }
}

/// One window's log-mel values (T x n_mels, frame-major) with its own mean removed as
/// `norm` says: the quantity whose per-band mean and standard deviation the card stores.
pub fn remove_window_mean(window: &[f32], n_mels: usize, norm: InputNorm) -> Vec<f32> {
    let frames = (window.len() / n_mels.max(1)).max(1);
    let mut means = vec![0.0f64; n_mels];
    for frame in window.chunks_exact(n_mels) {
        means
            .iter_mut()
            .zip(frame)
            .for_each(|(m, &v)| *m += v as f64 / frames as f64);
    }
    if norm == InputNorm::Level {
        let level = means.iter().sum::<f64>() / n_mels as f64;
        means.iter_mut().for_each(|m| *m = level);
    }
    window
        .iter()
        .enumerate()
        .map(|(i, &v)| v - means[i % n_mels] as f32)
        .collect()
}
