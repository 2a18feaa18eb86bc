//! The seed architecture, reproduced from the reference notebook: a 162-value clip vector
//! (means of ZCR 1, chroma 12, MFCC 20, RMS 1, mel power 128 at librosa's defaults) fed as a
//! one-channel sequence to Conv1D 256-128-128-64 (k=4, Keras "same"), MaxPool(4, stride 2,
//! "same"), Dense 64 -> 8.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::architecture::{
    ArchitectureSpec, Inference, InputStatistics, ModelInput, Network, invalid_card,
};
use super::card::ModelCard;
use super::conv::TemporalConv;
use super::dropout::SeededDropout;
use super::recipe::{Augmentation, Recipe, Sampling, Schedule};

use crate::config::FeatureConfig;
use crate::features::{self, Dct, FrameMatrix, MelFilterbank, SpectrumPower, power_to_db};

/// Length of the clip vector.
pub const SEED_FEATURES: usize = 162;

/// The card's `architecture` section: the seed has no hyper-parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedConfig {}

impl ArchitectureSpec for SeedConfig {
    fn input(&self) -> ModelInput {
        ModelInput::ClipVector
    }

    fn validate(&self, card: &ModelCard) -> crate::Result<()> {
        if card.normalization.mean.len() != SEED_FEATURES {
            return invalid_card(format!(
                "normalization.mean has {} values, the seed's clip vector {SEED_FEATURES}",
                card.normalization.mean.len()
            ));
        }
        Ok(())
    }

    fn build(&self, card: &ModelCard, vb: VarBuilder) -> Result<Box<dyn Network>> {
        let norm = &card.normalization;
        Ok(Box::new(SeedNet::new(
            vb,
            &norm.mean,
            &norm.std,
            card.labels.len(),
        )?))
    }

    fn statistics(&self) -> InputStatistics {
        InputStatistics::PerFeature
    }

    /// The notebook's: Adam 1e-3, ReduceLROnPlateau, four rows per clip.
    fn recipe(&self) -> Recipe {
        Recipe {
            epochs: 20,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            schedule: Schedule::ReduceOnPlateau,
            sampling: Sampling::EveryWindow,
            augmentations: vec![
                Augmentation::Original,
                Augmentation::Noise,
                Augmentation::NotebookStretchPitch,
                Augmentation::Shift,
            ],
            original_prob: 0.0,
            mixup_alpha: 0.0,
            spec_augment: false,
            ..Recipe::default()
        }
    }

    /// librosa's defaults, as the notebook computed its features.
    fn default_features(&self) -> FeatureConfig {
        FeatureConfig::default()
    }

    fn flops(&self, card: &ModelCard, _frames: usize) -> u64 {
        let (mut len, mut c_in, mut total) = (SEED_FEATURES, 1usize, 0u64);
        for c_out in [256, 128, 128, 64] {
            total += 2 * (len * c_in * 4 * c_out) as u64;
            (len, c_in) = (len.div_ceil(2), c_out);
        }
        total + 2 * (len * 64 * 64 + 64 * card.labels.len()) as u64
    }
}

/// The 162 frame-mean features of one window, in the notebook's order.
pub fn seed_features(y: &[f32], config: &FeatureConfig) -> crate::Result<Vec<f32>> {
    config.validate()?;
    // One STFT serves every spectral family: mel and MFCC use power, and the notebook passes
    // |STFT| (magnitude, the square root of the same power) to chroma_stft.
    let power = features::Spectrogram::new(config.n_fft).compute(
        y,
        config.hop_length,
        config.center,
        SpectrumPower::Power,
    );
    let magnitude = FrameMatrix {
        n_features: power.n_features,
        data: power.data.iter().map(|p| p.sqrt()).collect(),
    };
    let mel = MelFilterbank::new(config).apply(&power);
    let mfcc = Dct::new(config.n_mels, config.n_mfcc).apply(&power_to_db(&mel, config.top_db));
    let mut out = Vec::with_capacity(SEED_FEATURES);
    out.extend(
        features::zero_crossing_rate(y, config.n_fft, config.hop_length, config.center)
            .mean_over_frames(),
    );
    out.extend(features::chroma_stft(&magnitude, config.sr, config.n_fft).mean_over_frames());
    out.extend(mfcc.mean_over_frames());
    out.extend(features::rms(y, config.n_fft, config.hop_length, config.center).mean_over_frames());
    out.extend(mel.mean_over_frames());
    debug_assert_eq!(out.len(), SEED_FEATURES);
    Ok(out)
}

/// Keras `MaxPooling1D(pool_size=4, strides=2, padding="same")`. Inputs follow a ReLU, so
/// zero padding equals Keras's ignore-the-padding. A window of 4 at stride 2 is the max of
/// two neighbouring non-overlapping pairs, which keeps the op differentiable in candle.
fn max_pool_same(x: &Tensor) -> Result<Tensor> {
    let len = x.dim(D::Minus1)?;
    let out = len.div_ceil(2);
    let pad = ((out - 1) * 2 + 4).saturating_sub(len);
    let x = x
        .pad_with_zeros(D::Minus1, pad / 2, pad - pad / 2)?
        .unsqueeze(2)?;
    let pairs = super::conv::max_pool(&x, (1, 2))?.squeeze(2)?;
    pairs
        .narrow(D::Minus1, 0, out)?
        .maximum(&pairs.narrow(D::Minus1, 1, out)?)
}

#[derive(Clone, Debug)]
pub struct SeedNet {
    convs: Vec<TemporalConv>,
    pub dropout: SeededDropout,
    dense: Linear,
    out: Linear,
    mean: Tensor,
    std: Tensor,
}

impl SeedNet {
    /// `mean`/`std`: the StandardScaler fitted on the training clips (162 values each).
    pub fn new(vb: VarBuilder, mean: &[f32], std: &[f32], outputs: usize) -> Result<Self> {
        let widths = [(1, 256), (256, 128), (128, 128), (128, 64)];
        let convs = widths
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout))| {
                TemporalConv::new(cin, cout, 4, (1, 2), true, vb.pp(format!("conv{i}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut len = SEED_FEATURES;
        for _ in 0..4 {
            len = len.div_ceil(2);
        }
        let dense = candle_nn::linear(64 * len, 64, vb.pp("dense"))?;
        let out = candle_nn::linear(64, outputs, vb.pp("out"))?;
        let device = vb.device();
        Ok(Self {
            convs,
            dropout: SeededDropout::new(0.2),
            dense,
            out,
            mean: Tensor::from_slice(mean, (1, SEED_FEATURES), device)?,
            std: Tensor::from_slice(std, (1, SEED_FEATURES), device)?,
        })
    }

    /// Logits for a batch of raw (unstandardized) clip vectors, shape (B, 162).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_standardized(&self.standardize(x)?, train)
    }

    /// The notebook's StandardScaler.
    pub fn standardize(&self, x: &Tensor) -> Result<Tensor> {
        x.broadcast_sub(&self.mean)?.broadcast_div(&self.std)
    }

    fn forward_standardized(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.unsqueeze(1)?;
        for (i, conv) in self.convs.iter().enumerate() {
            // Keras "same" for k=4: one zero on the left, two on the right.
            x = conv.forward(&x)?.relu()?;
            x = max_pool_same(&x)?;
            if i == 2 {
                x = self.dropout.forward_t(&x, train)?;
            }
        }
        // Keras flattens channels-last: (B, T, C).
        let x = x.transpose(1, 2)?.flatten_from(1)?;
        let x = self.dense.forward(&x)?.relu()?;
        self.out.forward(&x)
    }
}

impl Network for SeedNet {
    fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        self.standardize(x)
    }

    fn forward_normalized(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_standardized(x, train)
    }

    fn set_dropout_seed(&self, seed: u64) {
        self.dropout.set_seed(seed);
    }

    /// The training graph in evaluation mode (the seed is served for comparison only).
    fn inference(&self) -> Result<Box<dyn Inference>> {
        Ok(Box::new(self.clone()))
    }
}

impl Inference for SeedNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_t(x, false)
    }
}
