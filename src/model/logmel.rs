//! Sentio's compact temporal CNN over the log-mel frames of a window. Mel bands are the
//! input channels of 1-D convolutions along time (cheap: ~20 MFLOP for a 2 s window), with
//! batch norm, and mean + max pooling over time so any window length works.
//!
//! Normalization lives in the network so training and serving cannot diverge: each
//! window's mean log-mel level is removed first (recording gain is a corpus artefact, not
//! an emotion), then each band is standardized with statistics of the training speakers.

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

#[derive(Debug)]
pub struct LogMelNet {
    blocks: Vec<(TemporalConv, BatchNorm, bool)>,
    pub dropout: SeededDropout,
    head: Linear,
    band_mean: Tensor,
    band_std: Tensor,
}

impl LogMelNet {
    pub fn new(
        vb: VarBuilder,
        n_mels: usize,
        band_mean: &[f32],
        band_std: &[f32],
        dropout: f32,
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
        })
    }

    /// Removes each window's mean level, then standardizes bands: input (B, T, n_mels) of
    /// log-mel dB, output (B, n_mels, T). Used by training for statistics and augmentation.
    pub fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.transpose(1, 2)?;
        let level = x.mean_keepdim(D::Minus1)?.mean_keepdim(1)?;
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

/// Level-removed log-mel values of one window (T x n_mels, frame-major), the quantity whose
/// per-band mean and standard deviation the card stores.
pub fn remove_level(window: &[f32]) -> Vec<f32> {
    let mean = window.iter().map(|&v| v as f64).sum::<f64>() / window.len().max(1) as f64;
    window.iter().map(|&v| v - mean as f32).collect()
}
