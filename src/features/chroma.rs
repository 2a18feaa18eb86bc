//! Chroma from a spectrogram, as `librosa.feature.chroma_stft(S=...)`: the tuning is first
//! estimated with librosa's `piptrack` + `pitch_tuning` (histogram of pitch deviations from
//! the equal-tempered grid), then a 12-bin chroma filterbank is applied and each frame is
//! max-normalized. All the float32/float64 steps follow librosa's own dtypes.

use super::FrameMatrix;
use super::mel::linspace;

const N_CHROMA: usize = 12;

/// librosa `convert.hz_to_octs` (octaves above C0 for A440 tuning shifted by `tuning` bins).
fn hz_to_octs(hz: f64, tuning: f64) -> f64 {
    let a440 = 440.0 * 2f64.powf(tuning / N_CHROMA as f64);
    (hz / (a440 / 16.0)).log2()
}

/// librosa's `estimate_tuning(S=S, sr=sr, bins_per_octave=12)`, in fractions of a bin.
pub fn estimate_tuning(spectrogram: &FrameMatrix, sr: u32, n_fft: usize) -> f64 {
    let (pitches, mags) = piptrack(spectrogram, sr, n_fft);
    let mut voiced: Vec<f32> = mags
        .iter()
        .zip(&pitches)
        .filter(|(_, p)| **p > 0.0)
        .map(|(m, _)| *m)
        .collect();
    if voiced.is_empty() {
        return 0.0;
    }
    voiced.sort_by(f32::total_cmp);
    let mid = voiced.len() / 2;
    let threshold = if voiced.len() % 2 == 1 {
        voiced[mid]
    } else {
        (voiced[mid - 1] + voiced[mid]) / 2.0
    };
    let selected: Vec<f32> = pitches
        .iter()
        .zip(&mags)
        .filter(|(p, m)| **p > 0.0 && **m >= threshold)
        .map(|(p, _)| *p)
        .collect();
    pitch_tuning(&selected)
}

/// librosa's `pitch_tuning(frequencies, resolution=0.01, bins_per_octave=12)`.
fn pitch_tuning(frequencies: &[f32]) -> f64 {
    if frequencies.is_empty() {
        return 0.0;
    }
    let edges = linspace(-0.5, 0.5, 101);
    let mut counts = [0usize; 100];
    let base = 440.0f32 / 16.0;
    for &f in frequencies {
        // float32 throughout, as numpy computes it for a float32 array.
        let octs = (f / base).log2();
        let mut residual = (N_CHROMA as f32 * octs).rem_euclid(1.0);
        if residual >= 0.5 {
            residual -= 1.0;
        }
        let r = residual as f64;
        if !(edges[0]..=edges[100]).contains(&r) {
            continue;
        }
        let bin = edges[1..].iter().position(|&e| r < e).unwrap_or(99);
        counts[bin] += 1;
    }
    let best = (0..100).fold(0, |best, i| if counts[i] > counts[best] { i } else { best });
    edges[best]
}

/// librosa's `piptrack(S=S, sr, fmin=150, fmax=4000, threshold=0.1)`: per frame, parabolic
/// peak interpolation on local maxima above 10% of the frame's peak.
fn piptrack(spec: &FrameMatrix, sr: u32, n_fft: usize) -> (Vec<f32>, Vec<f32>) {
    let n_bins = spec.n_features;
    let mut pitches = vec![0.0f32; spec.data.len()];
    let mut mags = vec![0.0f32; spec.data.len()];
    let fft_freqs = linspace(0.0, sr as f64 / 2.0, n_bins);
    let (fmin, fmax) = (150.0f64, 4000.0f64.min(sr as f64 / 2.0));
    for (t, s) in spec.frames().enumerate() {
        let ref_value = 0.1f32 * s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let gated = |i: usize| if s[i] > ref_value { s[i] } else { 0.0 };
        for i in 1..n_bins {
            if !(fmin <= fft_freqs[i] && fft_freqs[i] < fmax) {
                continue;
            }
            let is_max = if i + 1 < n_bins {
                gated(i) > gated(i - 1) && gated(i) >= gated(i + 1)
            } else {
                gated(i) > gated(i - 1)
            };
            if !is_max {
                continue;
            }
            let (shift, gradient) = if i + 1 < n_bins {
                let a = s[i + 1] + s[i - 1] - 2.0 * s[i];
                let b = (s[i + 1] - s[i - 1]) / 2.0;
                let shift = if b.abs() >= a.abs() { 0.0 } else { -b / a };
                (shift, b)
            } else {
                (0.0, s[i] - s[i - 1])
            };
            let k = t * n_bins + i;
            pitches[k] = ((i as f64 + shift as f64) * sr as f64 / n_fft as f64) as f32;
            mags[k] = s[i] + 0.5f32 * gradient * shift;
        }
    }
    (pitches, mags)
}

/// librosa's `filters.chroma(sr, n_fft, tuning)` (12 bins, centred on octave 5 with a
/// 2-octave Gaussian, starting at C), float32, n_fft / 2 + 1 columns.
#[derive(Clone, Debug)]
pub struct ChromaFilter {
    n_bins: usize,
    /// 12 rows of n_bins weights.
    weights: Vec<f32>,
}

impl ChromaFilter {
    pub fn new(sr: u32, n_fft: usize, tuning: f64) -> Self {
        let n = N_CHROMA as f64;
        let mut frqbins: Vec<f64> = (1..n_fft)
            .map(|i| n * hz_to_octs(i as f64 * (sr as f64 / n_fft as f64), tuning))
            .collect();
        frqbins.insert(0, frqbins[0] - 1.5 * n);
        let mut widths: Vec<f64> = frqbins.windows(2).map(|w| (w[1] - w[0]).max(1.0)).collect();
        widths.push(1.0);
        let half = (n / 2.0).round();
        let mut wts = vec![0.0f64; N_CHROMA * n_fft];
        for (j, (&fb, &width)) in frqbins.iter().zip(&widths).enumerate() {
            let mut column = [0.0f64; N_CHROMA];
            for (c, w) in column.iter_mut().enumerate() {
                let d = (fb - c as f64 + half + 10.0 * n).rem_euclid(n) - half;
                *w = (-0.5 * (2.0 * d / width).powi(2)).exp();
            }
            let norm = column.iter().map(|w| w * w).sum::<f64>().sqrt();
            let octave_weight = (-0.5 * ((fb / n - 5.0) / 2.0).powi(2)).exp();
            for (c, w) in column.iter().enumerate() {
                let w = if norm > 0.0 { w / norm } else { *w };
                wts[c * n_fft + j] = w * octave_weight;
            }
        }
        let n_bins = n_fft / 2 + 1;
        // Roll by -3 so that row 0 is C, and keep the non-aliased columns.
        let weights = (0..N_CHROMA)
            .flat_map(|c| {
                let src = (c + 3) % N_CHROMA;
                wts[src * n_fft..src * n_fft + n_bins]
                    .iter()
                    .map(|&w| w as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        Self { n_bins, weights }
    }

    /// Raw chroma of one spectrum frame, normalized so the largest bin is 1 (frames of
    /// silence stay 0, as librosa's `normalize` leaves them).
    pub fn apply_frame(&self, spectrum: &[f32], out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(self.weights.chunks_exact(self.n_bins)) {
            *o = row.iter().zip(spectrum).map(|(w, s)| w * s).sum();
        }
        let peak = out.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        if peak >= f32::MIN_POSITIVE as f64 {
            out.iter_mut().for_each(|v| *v = (*v as f64 / peak) as f32);
        }
    }
}

/// Chroma of a spectrogram (power, or magnitude as the seed model uses), tuning estimated
/// from the same spectrogram.
pub fn chroma_stft(spectrogram: &FrameMatrix, sr: u32, n_fft: usize) -> FrameMatrix {
    let tuning = estimate_tuning(spectrogram, sr, n_fft);
    let filter = ChromaFilter::new(sr, n_fft, tuning);
    let mut out = FrameMatrix {
        n_features: N_CHROMA,
        data: vec![0.0; spectrogram.n_frames() * N_CHROMA],
    };
    for (src, dst) in spectrogram
        .frames()
        .zip(out.data.chunks_exact_mut(N_CHROMA))
    {
        filter.apply_frame(src, dst);
    }
    out
}
