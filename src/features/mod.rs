//! librosa-compatible features: STFT, mel, log-mel, MFCC, chroma, zero-crossing rate, RMS,
//! each in its own module, plus the incremental per-hop front end used by streams.
//!
//! Matrices are [`FrameMatrix`]: stored frame-major (one contiguous row of values per
//! frame, the order the model and the streaming code want), exported as librosa's
//! features x frames.

pub mod adaptation;
pub mod chroma;
pub mod framewise;
pub mod mel;
pub mod mfcc;
pub mod stft;
pub mod streaming;

pub use adaptation::{AdaptationConfig, SpeakerProfile};
pub use chroma::{ChromaFilter, chroma_stft, estimate_tuning};
pub use framewise::{rms, zero_crossing_rate};
pub use mel::{MelFilterbank, power_to_db};
pub use mfcc::Dct;
pub use stft::{Spectrogram, SpectrumPower};
pub use streaming::StreamingLogMel;

use serde::{Deserialize, Serialize};

use crate::config::FeatureConfig;
use crate::error::{Error, Result};

/// Frames of equal-length feature vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameMatrix {
    /// Values per frame (mel bands, MFCCs, chroma bins, 1 for ZCR/RMS).
    pub n_features: usize,
    /// `n_frames * n_features` values, frame after frame.
    pub data: Vec<f32>,
}

impl FrameMatrix {
    pub fn new(n_features: usize) -> Self {
        Self {
            n_features,
            data: Vec::new(),
        }
    }

    pub fn n_frames(&self) -> usize {
        self.data.len().checked_div(self.n_features).unwrap_or(0)
    }

    pub fn frame(&self, t: usize) -> &[f32] {
        &self.data[t * self.n_features..(t + 1) * self.n_features]
    }

    pub fn frames(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.n_features.max(1))
    }

    pub fn get(&self, feature: usize, frame: usize) -> f32 {
        self.data[frame * self.n_features + feature]
    }

    /// librosa's layout: one row per feature, one column per frame.
    pub fn to_rows(&self) -> Vec<Vec<f32>> {
        (0..self.n_features)
            .map(|f| (0..self.n_frames()).map(|t| self.get(f, t)).collect())
            .collect()
    }

    /// Mean over frames of each feature (the seed model's clip vector).
    pub fn mean_over_frames(&self) -> Vec<f32> {
        let mut sum = vec![0.0f64; self.n_features];
        for frame in self.frames() {
            for (s, &v) in sum.iter_mut().zip(frame) {
                *s += v as f64;
            }
        }
        let n = self.n_frames().max(1) as f64;
        sum.into_iter().map(|s| (s / n) as f32).collect()
    }
}

/// The feature families the CLI and the models can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    Mel,
    Logmel,
    Mfcc,
    Chroma,
    Zcr,
    Rms,
}

/// Computes one feature family for a whole signal (already at `config.sr`), exactly as
/// librosa would with the same parameters. Chroma is computed on the power spectrogram, as
/// `librosa.feature.chroma_stft(y=...)` does.
pub fn compute(kind: FeatureKind, y: &[f32], config: &FeatureConfig) -> Result<FrameMatrix> {
    config.validate()?;
    if !config.center && y.len() < config.n_fft {
        return Err(Error::InvalidAudio(format!(
            "{} samples is shorter than one frame (n_fft = {})",
            y.len(),
            config.n_fft
        )));
    }
    let mel = || -> FrameMatrix {
        let spec = Spectrogram::new(config.n_fft).compute(
            y,
            config.hop_length,
            config.center,
            SpectrumPower::Power,
        );
        MelFilterbank::new(config).apply(&spec)
    };
    Ok(match kind {
        FeatureKind::Mel => mel(),
        FeatureKind::Logmel => power_to_db(&mel(), config.top_db),
        FeatureKind::Mfcc => {
            Dct::new(config.n_mels, config.n_mfcc).apply(&power_to_db(&mel(), config.top_db))
        }
        FeatureKind::Chroma => {
            let spec = Spectrogram::new(config.n_fft).compute(
                y,
                config.hop_length,
                config.center,
                SpectrumPower::Power,
            );
            chroma_stft(&spec, config.sr, config.n_fft)
        }
        FeatureKind::Zcr => zero_crossing_rate(y, config.n_fft, config.hop_length, config.center),
        FeatureKind::Rms => rms(y, config.n_fft, config.hop_length, config.center),
    })
}
