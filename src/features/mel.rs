//! Mel filterbank (librosa.filters.mel with its defaults: Slaney mel scale, Slaney area
//! normalization, float32 weights) and `power_to_db`.

use super::FrameMatrix;
use crate::config::FeatureConfig;

/// Hz to mel on the Slaney (Auditory Toolbox) scale: linear below 1 kHz, logarithmic above.
pub fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = (6.4f64).ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

/// Inverse of [`hz_to_mel`].
pub fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = (6.4f64).ln() / 27.0;
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// numpy's `linspace(start, stop, num)`, endpoint included, computed the way numpy does.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// Triangular mel filters, stored sparsely (each band touches only a few FFT bins).
#[derive(Clone, Debug)]
pub struct MelFilterbank {
    n_bins: usize,
    /// Per band: first FFT bin and the weights from there on.
    bands: Vec<(usize, Vec<f32>)>,
}

impl MelFilterbank {
    pub fn new(config: &FeatureConfig) -> Self {
        Self::with_params(
            config.sr,
            config.n_fft,
            config.n_mels,
            config.fmin,
            config.fmax_hz(),
        )
    }

    pub fn with_params(sr: u32, n_fft: usize, n_mels: usize, fmin: f32, fmax: f32) -> Self {
        let n_bins = n_fft / 2 + 1;
        let fft_freqs = linspace(0.0, sr as f64 / 2.0, n_bins);
        let mel_points = linspace(hz_to_mel(fmin as f64), hz_to_mel(fmax as f64), n_mels + 2);
        let mel_f: Vec<f64> = mel_points.iter().map(|&m| mel_to_hz(m)).collect();
        let bands = (0..n_mels)
            .map(|i| {
                let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
                let enorm = 2.0 / (hi - lo);
                let weights: Vec<f32> = fft_freqs
                    .iter()
                    .map(|&f| {
                        let lower = -(lo - f) / (mid - lo);
                        let upper = (hi - f) / (hi - mid);
                        // librosa stores the triangle as float32, then scales it in place.
                        let w = 0f64.max(lower.min(upper)) as f32;
                        (w as f64 * enorm) as f32
                    })
                    .collect();
                let first = weights.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = weights
                    .iter()
                    .rposition(|&w| w != 0.0)
                    .map_or(first, |l| l + 1);
                (first, weights[first..last].to_vec())
            })
            .collect();
        Self { n_bins, bands }
    }

    pub fn n_mels(&self) -> usize {
        self.bands.len()
    }

    /// Mel energies of one power-spectrum frame.
    pub fn apply_frame(&self, spectrum: &[f32], out: &mut [f32]) {
        debug_assert_eq!(spectrum.len(), self.n_bins);
        for (o, (first, weights)) in out.iter_mut().zip(&self.bands) {
            *o = weights
                .iter()
                .zip(&spectrum[*first..])
                .map(|(w, s)| w * s)
                .sum();
        }
    }

    /// Mel spectrogram of a power spectrogram.
    pub fn apply(&self, spectrogram: &FrameMatrix) -> FrameMatrix {
        let n_mels = self.n_mels();
        let mut out = FrameMatrix {
            n_features: n_mels,
            data: vec![0.0; spectrogram.n_frames() * n_mels],
        };
        for (src, dst) in spectrogram.frames().zip(out.data.chunks_exact_mut(n_mels)) {
            self.apply_frame(src, dst);
        }
        out
    }
}

/// librosa's `power_to_db(S, ref=1.0, amin=1e-10, top_db)`: 10 log10(max(S, amin)), then
/// clamped to `top_db` below the matrix's peak.
pub fn power_to_db(power: &FrameMatrix, top_db: Option<f32>) -> FrameMatrix {
    let mut out = power.clone();
    power_to_db_in_place(&mut out.data, top_db);
    out
}

/// [`power_to_db`] over a flat slice (the whole slice is one matrix for the clamp).
pub fn power_to_db_in_place(values: &mut [f32], top_db: Option<f32>) {
    const AMIN: f32 = 1e-10;
    let mut peak = f32::NEG_INFINITY;
    for v in values.iter_mut() {
        *v = 10.0 * v.max(AMIN).log10();
        peak = peak.max(*v);
    }
    if let Some(top_db) = top_db {
        let floor = peak - top_db;
        values.iter_mut().for_each(|v| *v = v.max(floor));
    }
}
