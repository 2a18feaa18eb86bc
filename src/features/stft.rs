//! Short-time Fourier transform as librosa computes it: periodic Hann window of n_fft
//! samples, optional centring with zero padding (librosa >= 0.10's `pad_mode="constant"`),
//! one-sided spectrum of n_fft / 2 + 1 bins.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::FrameMatrix;

/// Whether a spectrogram holds |X| (magnitude) or |X|^2 (power).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpectrumPower {
    Magnitude,
    Power,
}

/// A reusable STFT of one size, with its buffers (no allocation per frame).
pub struct Spectrogram {
    n_fft: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl std::fmt::Debug for Spectrogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spectrogram(n_fft = {})", self.n_fft)
    }
}

/// scipy's `get_window("hann", n, fftbins=True)`: the periodic Hann window.
pub fn hann_window(n: usize) -> Vec<f32> {
    hann_window_f64(n).into_iter().map(|w| w as f32).collect()
}

/// [`hann_window`] in double precision (training's phase vocoder works in f64).
pub fn hann_window_f64(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect()
}

impl Spectrogram {
    pub fn new(n_fft: usize) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let output = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Self {
            n_fft,
            window: hann_window(n_fft),
            input: vec![0.0; n_fft],
            fft,
            output,
            scratch,
        }
    }

    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Spectrum of one frame of exactly n_fft samples, written to `out` (n_bins values).
    pub fn frame(&mut self, frame: &[f32], power: SpectrumPower, out: &mut [f32]) {
        for ((x, &s), &w) in self.input.iter_mut().zip(frame).zip(&self.window) {
            *x = s * w;
        }
        self.fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
            .expect("buffer sizes come from the plan");
        for (o, c) in out.iter_mut().zip(&self.output) {
            let p = c.re * c.re + c.im * c.im;
            *o = match power {
                SpectrumPower::Power => p,
                SpectrumPower::Magnitude => p.sqrt(),
            };
        }
    }

    /// The spectrogram of a whole signal: frames start every `hop` samples; with `center`
    /// the signal is first padded with n_fft / 2 zeros on both sides.
    pub fn compute(
        &mut self,
        y: &[f32],
        hop: usize,
        center: bool,
        power: SpectrumPower,
    ) -> FrameMatrix {
        let padded;
        let signal = if center {
            let pad = self.n_fft / 2;
            let mut p = vec![0.0f32; y.len() + 2 * pad];
            p[pad..pad + y.len()].copy_from_slice(y);
            padded = p;
            &padded[..]
        } else {
            y
        };
        let n_frames = frame_count(signal.len(), self.n_fft, hop);
        let n_bins = self.n_bins();
        let mut out = FrameMatrix {
            n_features: n_bins,
            data: vec![0.0; n_frames * n_bins],
        };
        for (t, dst) in out.data.chunks_exact_mut(n_bins).enumerate() {
            let start = t * hop;
            let frame = &signal[start..start + self.n_fft];
            self.frame(frame, power, dst);
        }
        out
    }
}

/// Frames of `n_fft` samples every `hop` that fit in `len` samples (librosa's `util.frame`).
pub fn frame_count(len: usize, n_fft: usize, hop: usize) -> usize {
    if len < n_fft {
        0
    } else {
        1 + (len - n_fft) / hop
    }
}
