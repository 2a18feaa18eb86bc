//! Feature configuration. It travels inside every model card, so the server computes exactly
//! the features the model was trained on; the defaults are librosa's.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a signal becomes frames of features; field names follow librosa's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Sample rate (Hz) the features are computed at; audio is resampled to it first.
    pub sr: u32,
    /// FFT size; the Hann window has the same length.
    pub n_fft: usize,
    /// Samples between successive frames.
    pub hop_length: usize,
    /// Mel bands (Slaney scale and area normalization, as librosa's default).
    pub n_mels: usize,
    /// Lowest mel band edge, Hz.
    pub fmin: f32,
    /// Highest mel band edge, Hz; `None` means sr / 2.
    pub fmax: Option<f32>,
    /// MFCC coefficients kept after the DCT.
    pub n_mfcc: usize,
    /// `power_to_db` clamps to this many dB below the peak; `None` disables the clamp.
    pub top_db: Option<f32>,
    /// librosa's `center=True`: pad n_fft/2 on each side so frame t is centred on t*hop.
    pub center: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            sr: 22_050,
            n_fft: 2048,
            hop_length: 512,
            n_mels: 128,
            fmin: 0.0,
            fmax: None,
            n_mfcc: 20,
            top_db: Some(80.0),
            center: true,
        }
    }
}

impl FeatureConfig {
    /// Sentio's streaming front end: 32 ms frames every 10 ms, 64 mel bands at 16 kHz, no
    /// centre padding, so that a window's frames are exactly the stream's frames.
    pub fn streaming_16k() -> Self {
        Self {
            sr: 16_000,
            n_fft: 512,
            hop_length: 160,
            n_mels: 64,
            fmin: 0.0,
            fmax: Some(8000.0),
            n_mfcc: 20,
            top_db: Some(80.0),
            center: false,
        }
    }

    /// The upper mel edge in Hz, resolving `None` to Nyquist.
    pub fn fmax_hz(&self) -> f32 {
        self.fmax.unwrap_or(self.sr as f32 / 2.0)
    }

    /// Rejects configurations that would divide by zero, index out of bounds or alias.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(msg));
        if !(1000..=192_000).contains(&self.sr) {
            return fail(format!("sr {} Hz is outside 1000..=192000", self.sr));
        }
        if self.n_fft < 16 || self.n_fft > 65_536 || !self.n_fft.is_multiple_of(2) {
            return fail(format!(
                "n_fft {} must be even and within 16..=65536",
                self.n_fft
            ));
        }
        if self.hop_length == 0 || self.hop_length > self.n_fft {
            return fail(format!(
                "hop_length {} must be within 1..=n_fft",
                self.hop_length
            ));
        }
        if self.n_mels == 0 || self.n_mels > 512 {
            return fail(format!("n_mels {} must be within 1..=512", self.n_mels));
        }
        if self.n_mfcc == 0 || self.n_mfcc > self.n_mels {
            return fail(format!("n_mfcc {} must be within 1..=n_mels", self.n_mfcc));
        }
        let fmax = self.fmax_hz();
        if !(self.fmin >= 0.0 && self.fmin < fmax && fmax <= self.sr as f32 / 2.0) {
            return fail(format!(
                "need 0 <= fmin ({}) < fmax ({fmax}) <= sr/2",
                self.fmin
            ));
        }
        if let Some(top_db) = self.top_db
            && !(top_db.is_finite() && top_db > 0.0)
        {
            return fail(format!("top_db {top_db} must be a positive number"));
        }
        Ok(())
    }
}
