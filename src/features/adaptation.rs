//! Adaptation to the caller: a stream is usually one voice on one line, so each log-mel
//! window can be read against the spectrum of the call so far instead of against the
//! training set's average. A [`SpeakerProfile`] keeps the running mean band spectrum of a
//! stream's speech windows, shrunk towards the training set's mean spectrum while it has
//! seen little (`prior_windows`), and each window has the difference subtracted. A
//! microphone's colouring or a phone line's band limits, constant over a call, cancel; what
//! makes this window unlike the caller's own voice remains.
//!
//! The profile advances once per speech window, in window order, so a stream's results do
//! not depend on how its audio was chunked.

use serde::{Deserialize, Serialize};

/// The card's `adaptation` section: present when the model was trained with adapted
/// windows (and so expects them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptationConfig {
    /// The training windows' mean log-mel spectrum, dB per band: what a profile starts from.
    pub prior: Vec<f32>,
    /// How many windows of evidence the prior is worth.
    pub prior_windows: f32,
}

impl AdaptationConfig {
    pub fn validate(&self, n_mels: usize) -> Result<(), String> {
        if self.prior.len() != n_mels {
            return Err(format!(
                "adaptation.prior has {} bands, features.n_mels is {n_mels}",
                self.prior.len()
            ));
        }
        if !(self.prior_windows.is_finite() && self.prior_windows > 0.0) {
            return Err("adaptation.prior_windows must be positive".into());
        }
        if self.prior.iter().any(|v| !v.is_finite()) {
            return Err("adaptation.prior must be finite".into());
        }
        Ok(())
    }

    /// How far a speaker whose `windows` windows average `mean` (dB per band) is from the
    /// prior, after shrinkage: what is subtracted from each of their windows.
    pub fn offset(&self, mean: &[f32], windows: f32) -> Vec<f32> {
        let share = windows / (windows + self.prior_windows);
        mean.iter()
            .zip(&self.prior)
            .map(|(&m, &p)| share * (m - p))
            .collect()
    }
}

/// Mean of each band over a window's frames (frames x `n_mels`, frame-major).
pub fn band_mean(window: &[f32], n_mels: usize) -> Vec<f32> {
    let frames = (window.len() / n_mels.max(1)).max(1) as f32;
    let mut mean = vec![0.0f32; n_mels];
    for frame in window.chunks_exact(n_mels) {
        mean.iter_mut().zip(frame).for_each(|(m, &v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= frames);
    mean
}

/// One stream's running spectrum.
#[derive(Clone, Debug)]
pub struct SpeakerProfile {
    config: AdaptationConfig,
    sum: Vec<f64>,
    windows: u64,
}

impl SpeakerProfile {
    pub fn new(config: &AdaptationConfig) -> Self {
        Self {
            sum: vec![0.0; config.prior.len()],
            config: config.clone(),
            windows: 0,
        }
    }

    /// Speech windows seen so far.
    pub fn windows(&self) -> u64 {
        self.windows
    }

    /// Adds a speech window (frames x n_mels, dB, as the model gets it) to the profile,
    /// then subtracts the profile's offset from it: the window counts towards its own
    /// profile, as in training.
    pub fn adapt(&mut self, window: &mut [f32]) {
        let n_mels = self.sum.len();
        for (s, m) in self.sum.iter_mut().zip(band_mean(window, n_mels)) {
            *s += m as f64;
        }
        self.windows += 1;
        let n = self.windows as f64;
        let mean: Vec<f32> = self.sum.iter().map(|s| (s / n) as f32).collect();
        let offset = self.config.offset(&mean, self.windows as f32);
        for frame in window.chunks_exact_mut(n_mels) {
            frame.iter_mut().zip(&offset).for_each(|(v, o)| *v -= o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AdaptationConfig {
        AdaptationConfig {
            prior: vec![-40.0, -50.0],
            prior_windows: 2.0,
        }
    }

    #[test]
    fn a_constant_colouring_cancels_as_evidence_grows() {
        // The same two-band window through a line that adds +6 dB to band 0.
        let clean = [-40.0f32, -50.0, -42.0, -52.0];
        let coloured: Vec<f32> = clean.chunks(2).flat_map(|f| [f[0] + 6.0, f[1]]).collect();
        let mut profile = SpeakerProfile::new(&config());
        let mut last = Vec::new();
        for _ in 0..200 {
            last = coloured.clone();
            profile.adapt(&mut last);
        }
        // Band means of the window are -41 and -51, the prior -40 and -50: after many
        // windows the window is read relative to the caller, colour included.
        let mut reference = SpeakerProfile::new(&config());
        let mut clean_last = Vec::new();
        for _ in 0..200 {
            clean_last = clean.to_vec();
            reference.adapt(&mut clean_last);
        }
        for (a, b) in last.iter().zip(&clean_last) {
            assert!((a - b).abs() < 0.1, "{last:?} vs {clean_last:?}");
        }
    }

    #[test]
    fn the_first_window_moves_by_its_share_of_the_evidence() {
        let mut window = vec![-34.0f32, -50.0, -34.0, -50.0];
        let mut profile = SpeakerProfile::new(&config());
        profile.adapt(&mut window);
        // One window against a prior worth two: a third of the +6 dB difference goes.
        assert_eq!(window, vec![-36.0, -50.0, -36.0, -50.0]);
        assert_eq!(profile.windows(), 1);
    }

    #[test]
    fn a_wrong_prior_is_rejected() {
        assert!(config().validate(3).is_err());
        let mut bad = config();
        bad.prior_windows = 0.0;
        assert!(bad.validate(2).is_err());
        assert!(config().validate(2).is_ok());
    }
}
