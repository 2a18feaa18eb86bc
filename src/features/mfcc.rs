//! MFCC: the orthonormal DCT-II of log-mel frames, first `n_mfcc` coefficients (librosa's
//! `feature.mfcc` with `dct_type=2, norm="ortho", lifter=0`).

use super::FrameMatrix;

/// A truncated DCT-II basis, precomputed once per configuration.
#[derive(Clone, Debug)]
pub struct Dct {
    n_in: usize,
    n_out: usize,
    basis: Vec<f32>,
}

impl Dct {
    pub fn new(n_in: usize, n_out: usize) -> Self {
        let n = n_in as f64;
        let mut basis = Vec::with_capacity(n_in * n_out);
        for k in 0..n_out {
            let scale = if k == 0 {
                (1.0 / n).sqrt()
            } else {
                (2.0 / n).sqrt()
            };
            for i in 0..n_in {
                let angle = std::f64::consts::PI * k as f64 * (2 * i + 1) as f64 / (2.0 * n);
                basis.push((scale * angle.cos()) as f32);
            }
        }
        Self { n_in, n_out, basis }
    }

    /// Coefficients of one frame.
    pub fn apply_frame(&self, frame: &[f32], out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(self.basis.chunks_exact(self.n_in)) {
            *o = row
                .iter()
                .zip(frame)
                .map(|(b, x)| (*b as f64) * (*x as f64))
                .sum::<f64>() as f32;
        }
    }

    pub fn apply(&self, logmel: &FrameMatrix) -> FrameMatrix {
        let mut out = FrameMatrix {
            n_features: self.n_out,
            data: vec![0.0; logmel.n_frames() * self.n_out],
        };
        for (src, dst) in logmel.frames().zip(out.data.chunks_exact_mut(self.n_out)) {
            self.apply_frame(src, dst);
        }
        out
    }
}
