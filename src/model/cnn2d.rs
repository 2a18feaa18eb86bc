//! A 2-D CNN over a window's log-mel image (mel bands x frames). Its 3x3 convolutions slide
//! along frequency as well as time, so a shift of pitch or formants (another speaker, another
//! microphone) moves a pattern instead of changing which weights see it; the 1-D `logmel`
//! network treats each band as its own channel.
//!
//! Each window is standardized by its own mean and standard deviation over all bands and
//! frames before anything else (gain-invariant, no statistics of the training corpora), then
//! four blocks of conv 3x3 -> batch norm -> ReLU (16, 32, 64, 128 channels by default), max
//! pools of (2 bands, 4 frames), (2, 2), (2, 2), global average pooling, dropout, linear.
//!
//! Convolutions are explicit im2col + GEMM (nine shifted copies side by side, then one
//! matrix product), in training and serving alike: the backward pass is then only copies and
//! matrix products, and serving folds batch norm into the same GEMM's weights.

use candle_core::{D, Module, ModuleT, Result, Tensor, Var};
use candle_nn::{BatchNorm, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::architecture::{
    ArchitectureSpec, Inference, InputStatistics, ModelInput, Network, invalid_card,
};
use super::card::ModelCard;
use super::conv::max_pool;
use super::dropout::SeededDropout;
use super::recipe::{Augmentation, Recipe, Schedule};
use super::train_kernels::{BatchNormReluPool, im2col3x3};

/// The card's `architecture` section for this network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cnn2dConfig {
    /// Output channels of each block.
    pub channels: Vec<usize>,
    /// Max pool after each block, (bands, frames); (1, 1) for none.
    pub pools: Vec<(usize, usize)>,
    /// Dropout before the classifier (training only).
    pub dropout: f32,
}

impl Default for Cnn2dConfig {
    fn default() -> Self {
        Self {
            channels: vec![16, 32, 64, 128],
            pools: vec![(2, 4), (2, 2), (2, 2), (1, 1)],
            dropout: 0.3,
        }
    }
}

impl ArchitectureSpec for Cnn2dConfig {
    fn input(&self) -> ModelInput {
        ModelInput::LogMelFrames
    }

    fn validate(&self, card: &ModelCard) -> crate::Result<()> {
        if self.channels.is_empty() || self.channels.len() != self.pools.len() {
            return invalid_card(
                "architecture.channels and architecture.pools must have the same, non-zero length",
            );
        }
        let bands: usize = self.pools.iter().map(|p| p.0.max(1)).product();
        if card.features.n_mels < bands {
            return invalid_card(format!(
                "architecture.pools reduce bands by {bands}, more than features.n_mels {}",
                card.features.n_mels
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return invalid_card("architecture.dropout must be in [0, 1)");
        }
        if !card.normalization.mean.is_empty() {
            return invalid_card(
                "normalization must be empty: cnn2d standardizes each window itself",
            );
        }
        Ok(())
    }

    fn build(&self, card: &ModelCard, vb: VarBuilder) -> Result<Box<dyn Network>> {
        Ok(Box::new(Cnn2dNet::new(vb, self, card.labels.len())?))
    }

    fn statistics(&self) -> InputStatistics {
        InputStatistics::None
    }

    /// `../shared/model-reference.md`'s recipe, plus speaker and phone augmentations.
    fn recipe(&self) -> Recipe {
        Recipe {
            epochs: 30,
            learning_rate: 2e-3,
            weight_decay: 1e-3,
            schedule: Schedule::WarmupCosine { warmup_epochs: 3 },
            augmentations: Augmentation::SPEAKER_AND_PHONE.to_vec(),
            original_prob: 0.3,
            mixup_alpha: 0.2,
            mixup_major_first: true,
            time_mask_frames: 25,
            label_smoothing: 0.05,
            mel_shift_prob: 0.5,
            mel_shift_bands: 2,
            pad_with_floor: true,
            ..Recipe::default()
        }
    }

    fn flops(&self, card: &ModelCard, frames: usize) -> u64 {
        let (mut f, mut t, mut cin, mut total) = (card.features.n_mels, frames, 1usize, 0u64);
        for (&c, &(pf, pt)) in self.channels.iter().zip(&self.pools) {
            total += 2 * (f * t * cin * 9 * c) as u64;
            (f, t, cin) = (f / pf.max(1), t / pt.max(1), c);
        }
        total
    }
}

/// Subtracts each window's mean and divides by its standard deviation, over all bands and
/// frames: (B, T, n_mels) -> (B, n_mels, T).
pub fn standardize_windows(x: &Tensor) -> Result<Tensor> {
    let x = x.transpose(1, 2)?;
    let mean = x.mean_keepdim(D::Minus1)?.mean_keepdim(1)?;
    let centred = x.broadcast_sub(&mean)?;
    let std = (centred.sqr()?.mean_keepdim(D::Minus1)?.mean_keepdim(1)? + 1e-6)?.sqrt()?;
    centred.broadcast_div(&std)
}

/// A "same" 3x3 convolution as one matrix product: (B, C_in, F, T) with `weight`
/// (C_out, 9 C_in), column `(df * 3 + dt) * C_in + c`, gives (B, C_out, F, T).
fn conv3x3(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (b, c, f, t) = x.dims4()?;
    let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
    let mut taps = Vec::with_capacity(9);
    for df in 0..3 {
        let rows = padded.narrow(2, df, f)?;
        for dt in 0..3 {
            taps.push(rows.narrow(3, dt, t)?.contiguous()?);
        }
    }
    let columns = Tensor::cat(&taps, 1)?.reshape((b, 9 * c, f * t))?;
    let c_out = weight.dim(0)?;
    weight
        .unsqueeze(0)?
        .broadcast_matmul(&columns)?
        .reshape((b, c_out, f, t))
}

/// (C_out, C_in, 3, 3) -> (C_out, 9 C_in) in `conv3x3`'s column order.
fn as_columns(weight: &Tensor) -> Result<Tensor> {
    let (c_out, c_in, _, _) = weight.dims4()?;
    weight
        .permute((0, 2, 3, 1))?
        .contiguous()?
        .reshape((c_out, 9 * c_in))
}

#[derive(Debug)]
struct Block {
    /// (C_out, C_in, 3, 3), the layout of a 2-D convolution's weight.
    weight: Tensor,
    bn: BatchNorm,
    pool: (usize, usize),
}

impl Block {
    /// The training pass with `train_kernels`' fused ops (4-5x faster than the candle graph,
    /// the same arithmetic); updates batch norm's running statistics as candle's does.
    fn train_on_cpu(&self, x: &Tensor) -> Result<Tensor> {
        let (b, _, f, t) = x.dims4()?;
        let c_out = self.weight.dim(0)?;
        let y = as_columns(&self.weight)?
            .unsqueeze(0)?
            .broadcast_matmul(&im2col3x3(x)?)?
            .reshape((b, c_out, f, t))?;
        let Some((gamma, beta)) = self.bn.weight_and_bias() else {
            candle_core::bail!("cnn2d: batch norm without affine parameters")
        };
        let (out, batch) = BatchNormReluPool::apply(&y, gamma, beta, self.bn.eps(), self.pool)?;
        let momentum = self.bn.momentum();
        let n = (b * f * t) as f64;
        let dev = x.device();
        let mean = Tensor::new(batch.mean.as_slice(), dev)?;
        let var = Tensor::new(batch.var.as_slice(), dev)?;
        let running_mean = ((self.bn.running_mean() * (1.0 - momentum))? + (mean * momentum)?)?;
        let unbiased = momentum * n / (n - 1.0).max(1.0);
        let running_var = ((self.bn.running_var() * (1.0 - momentum))? + (var * unbiased)?)?;
        Var::from_tensor(self.bn.running_mean())?.set(&running_mean)?;
        Var::from_tensor(self.bn.running_var())?.set(&running_var)?;
        Ok(out)
    }
}

#[derive(Debug)]
pub struct Cnn2dNet {
    blocks: Vec<Block>,
    pub dropout: SeededDropout,
    head: Linear,
}

impl Cnn2dNet {
    pub fn new(vb: VarBuilder, config: &Cnn2dConfig, outputs: usize) -> Result<Self> {
        let mut blocks = Vec::new();
        let mut c_in = 1;
        for (i, (&c_out, &pool)) in config.channels.iter().zip(&config.pools).enumerate() {
            let weight = vb.get_with_hints(
                (c_out, c_in, 3, 3),
                &format!("block{i}.conv.weight"),
                candle_nn::init::DEFAULT_KAIMING_NORMAL,
            )?;
            let bn = candle_nn::batch_norm(c_out, 1e-5, vb.pp(format!("block{i}.bn")))?;
            blocks.push(Block { weight, bn, pool });
            c_in = c_out;
        }
        Ok(Self {
            blocks,
            dropout: SeededDropout::new(config.dropout),
            head: candle_nn::linear(c_in, outputs, vb.pp("head"))?,
        })
    }

    /// Logits from normalized input (B, n_mels, T).
    fn forward_layers(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.unsqueeze(1)?;
        for block in &self.blocks {
            x = if train && x.device().is_cpu() {
                block.train_on_cpu(&x)?
            } else {
                let y = conv3x3(&x, &as_columns(&block.weight)?)?;
                max_pool(&block.bn.forward_t(&y, train)?.relu()?, block.pool)?
            };
        }
        let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?;
        self.head.forward(&self.dropout.forward_t(&pooled, train)?)
    }

    /// The inference pass: batch norm folded into each convolution's GEMM.
    pub fn folded(&self) -> Result<FoldedCnn2d> {
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (scale, shift) = super::folded::batch_norm_affine(&block.bn)?;
            let weight = as_columns(&block.weight)?.broadcast_mul(&scale.unsqueeze(1)?)?;
            blocks.push((weight.t()?.contiguous()?, shift, block.pool));
        }
        let (head_weight, head_bias) = super::folded::linear_parts(&self.head)?;
        Ok(FoldedCnn2d {
            blocks,
            head_weight,
            head_bias,
        })
    }
}

impl Network for Cnn2dNet {
    /// Standardizes each window: (B, T, n_mels) -> (B, n_mels, T).
    fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        standardize_windows(x)
    }

    fn forward_normalized(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_layers(x, train)
    }

    fn set_dropout_seed(&self, seed: u64) {
        self.dropout.set_seed(seed);
    }

    fn inference(&self) -> Result<Box<dyn Inference>> {
        Ok(Box::new(self.folded()?))
    }
}

/// [`Cnn2dNet`] for inference only: batch norm folded into each convolution, activations
/// channels-last (B, F, T, C) so that a convolution is nine shifted copies side by side and
/// one GEMM over every position of every window in the batch (batched per-window products
/// ran at a third of this rate: BENCHMARKS.md 4b).
#[derive(Debug)]
pub struct FoldedCnn2d {
    /// Per block: GEMM weight (9 C_in, C_out), bias (C_out), pool.
    blocks: Vec<(Tensor, Tensor, (usize, usize))>,
    head_weight: Tensor,
    head_bias: Tensor,
}

/// A "same" 3x3 convolution, channels-last: (B, F, T, C_in) with `weight` (9 C_in, C_out)
/// gives (B, F, T, C_out) before bias.
fn conv3x3_channels_last(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (b, f, t, c) = x.dims4()?;
    let padded = x.pad_with_zeros(1, 1, 1)?.pad_with_zeros(2, 1, 1)?;
    let mut taps = Vec::with_capacity(9);
    for df in 0..3 {
        let rows = padded.narrow(1, df, f)?;
        for dt in 0..3 {
            // Contiguous taps: candle concatenates strided tensors element by element.
            taps.push(rows.narrow(2, dt, t)?.contiguous()?);
        }
    }
    let c_out = weight.dim(1)?;
    Tensor::cat(&taps, 3)?
        .reshape((b * f * t, 9 * c))?
        .matmul(weight)?
        .reshape((b, f, t, c_out))
}

/// Max pool of (bands, frames), channels-last; a ragged edge is dropped, as in training.
fn pool_channels_last(x: Tensor, (pf, pt): (usize, usize)) -> Result<Tensor> {
    let (b, f, t, c) = x.dims4()?;
    let (pf, pt) = (pf.min(f).max(1), pt.min(t).max(1));
    if pf == 1 && pt == 1 {
        return Ok(x);
    }
    let (fo, to) = (f / pf, t / pt);
    x.narrow(1, 0, fo * pf)?
        .narrow(2, 0, to * pt)?
        .reshape((b, fo, pf, to, pt, c))?
        .max(4)?
        .max(2)
}

impl Inference for FoldedCnn2d {
    /// Logits for a batch of log-mel windows (B, T, n_mels).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = standardize_windows(x)?.unsqueeze(3)?;
        for (weight, bias, p) in &self.blocks {
            let y = conv3x3_channels_last(&x, weight)?
                .broadcast_add(bias)?
                .relu()?;
            x = pool_channels_last(y, *p)?;
        }
        x.mean(2)?
            .mean(1)?
            .matmul(&self.head_weight)?
            .broadcast_add(&self.head_bias)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    use super::*;

    /// The GEMM convolution equals candle's own conv2d with padding 1.
    #[test]
    fn im2col_convolution_equals_conv2d() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1., (2, 3, 7, 9), &dev)?;
        let w = Tensor::randn(0f32, 1., (4, 3, 3, 3), &dev)?;
        let ours = conv3x3(&x, &as_columns(&w)?)?;
        let reference = x.conv2d(&w, 1, 1, 1, 1)?;
        let diff = (ours - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "differ by {diff}");
        Ok(())
    }

    /// Folding batch norm changes nothing; windows are gain-invariant.
    #[test]
    fn folded_pass_equals_training_graph_and_ignores_gain() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let net = Cnn2dNet::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &dev),
            &Cnn2dConfig::default(),
            8,
        )?;
        // Non-trivial running statistics, as after training.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.contains(".bn.") {
                let n = var.elem_count();
                var.set(&(Tensor::rand(0.5f32, 1.5, n, &dev)?))?;
            }
        }
        let folded = net.folded()?;
        // Window lengths whose frames do not divide by the pools (ragged edges dropped).
        for (batch, frames) in [(2, 97), (1, 47), (9, 150)] {
            let x = (Tensor::randn(0f32, 10.0, (batch, frames, 64), &dev)? - 30.0)?;
            let diff = (net.forward_t(&x, false)? - folded.forward(&x)?)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(diff < 1e-3, "{batch} x {frames}: folded differs by {diff}");
        }
        let x = (Tensor::randn(0f32, 10.0, (3, 197, 64), &dev)? - 30.0)?;
        let reference = net.forward_t(&x, false)?;
        let fast = folded.forward(&x)?;
        let diff = (&reference - fast)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-3, "folded differs by {diff}");
        let louder = folded.forward(&(&x + 20.0)?)?;
        let diff = (reference - louder)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-3, "a 20 dB gain changed the logits by {diff}");
        Ok(())
    }
}
