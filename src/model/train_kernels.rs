//! CPU training kernels for the 2-D CNN, each with its own backward pass.
//!
//! Built from candle's elementwise ops, one training step of `cnn2d` made about 30 passes
//! over each block's full-resolution activations (batch norm's transposes and broadcasts, the
//! nine narrows of im2col and their zero-padded gradients, max pool's upsampled masks), each
//! into freshly allocated memory: 1.3 s per batch of 64 where the matrix products need
//! 0.1 s. These two custom ops do the same arithmetic in two or three passes:
//! - [`im2col3x3`]: a "same" 3x3 convolution's columns, whose gradient is one col2im pass;
//! - [`BatchNormReluPool`]: training-mode batch norm, ReLU and max pool in one op.
//!
//! Tests check values and gradients against the candle graph they replace.

use std::sync::{Arc, Mutex};

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail,
};
use rayon::prelude::*;

/// The f32 slice of a contiguous CPU tensor argument.
fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: f32 only")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: input must be contiguous"),
    }
}

/// (B, C, F, T) -> (B, 9 C, F T): column `(df * 3 + dt) * C + c` holds the input shifted by
/// (df - 1, dt - 1) with zeros outside, the order `cnn2d` lays its weights in.
pub fn im2col3x3(x: &Tensor) -> Result<Tensor> {
    let (_, _, f, t) = x.dims4()?;
    x.contiguous()?.apply_op1(Im2col { f, t })
}

/// Bands and frames of the image, which the columns' shape does not carry.
struct Im2col {
    f: usize,
    t: usize,
}

impl CustomOp1 for Im2col {
    fn name(&self) -> &'static str {
        "im2col3x3"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout, self.name())?;
        let (b, c, f, t) = layout.shape().dims4()?;
        let mut out = vec![0f32; b * 9 * c * f * t];
        out.par_chunks_mut(9 * c * f * t)
            .zip(x.par_chunks(c * f * t))
            .for_each(|(columns, image)| {
                for_each_tap(c, f, t, |column, source, dst, src, len| {
                    columns[column + dst..column + dst + len]
                        .copy_from_slice(&image[source + src..source + src + len]);
                });
            });
        Ok((CpuStorage::F32(out), Shape::from((b, 9 * c, f * t))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (f, t) = (self.f, self.t);
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Col2im { f, t })?))
    }
}

/// The gradient of [`Im2col`]: each input position sums the nine columns it was copied to.
struct Col2im {
    f: usize,
    t: usize,
}

impl CustomOp1 for Col2im {
    fn name(&self) -> &'static str {
        "col2im3x3"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = contiguous(storage, layout, self.name())?;
        let (b, c9, ft) = layout.shape().dims3()?;
        let c = c9 / 9;
        let (f, t) = (self.f, self.t);
        if f * t != ft {
            bail!("col2im3x3: columns of {ft} positions, expected {f} x {t}")
        }
        let mut out = vec![0f32; b * c * ft];
        out.par_chunks_mut(c * ft)
            .zip(g.par_chunks(c9 * ft))
            .for_each(|(image, columns)| {
                for_each_tap(c, f, t, |column, source, dst, src, len| {
                    let from = &columns[column + dst..column + dst + len];
                    for (o, v) in image[source + src..source + src + len].iter_mut().zip(from) {
                        *o += v;
                    }
                });
            });
        Ok((CpuStorage::F32(out), Shape::from((b, c, f, t))))
    }
}

/// The valid range of a shift by `tap - 1` along an axis of `n`: (output start, input
/// start, length); output index j reads input index j + tap - 1.
fn shifted(tap: usize, n: usize) -> (usize, usize, usize) {
    match tap {
        0 => (1, 0, n - 1),
        1 => (0, 0, n),
        _ => (0, 1, n - 1),
    }
}

/// Calls `copy(column_start, channel_start, column_offset, channel_offset, len)` for every
/// row segment of every tap; columns and channels are both `F T` long.
fn for_each_tap(
    c: usize,
    f: usize,
    t: usize,
    mut copy: impl FnMut(usize, usize, usize, usize, usize),
) {
    for df in 0..3 {
        let (row_out, row_in, rows) = shifted(df, f);
        for dt in 0..3 {
            let (frame_out, frame_in, len) = shifted(dt, t);
            for ch in 0..c {
                let column = ((df * 3 + dt) * c + ch) * f * t;
                let channel = ch * f * t;
                for r in 0..rows {
                    let dst = (row_out + r) * t + frame_out;
                    let src = (row_in + r) * t + frame_in;
                    copy(column, channel, dst, src, len);
                }
            }
        }
    }
}

/// Per channel: the batch's mean, biased variance and 1 / sqrt(variance + eps).
#[derive(Clone, Debug, Default)]
pub struct BatchStatistics {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    inv_std: Vec<f32>,
}

/// Training-mode batch norm of (B, C, F, T) over all but the channel axis, ReLU, and a max
/// pool of (bands, frames) that drops a ragged edge, as one op. The forward pass keeps the
/// batch statistics for the caller's running averages and for the backward pass.
pub struct BatchNormReluPool {
    eps: f64,
    pool: (usize, usize),
    statistics: Arc<Mutex<BatchStatistics>>,
}

impl BatchNormReluPool {
    /// Applies the op; returns the pooled output and the batch statistics.
    pub fn apply(
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f64,
        pool: (usize, usize),
    ) -> Result<(Tensor, BatchStatistics)> {
        let (_, _, f, t) = x.dims4()?;
        let pool = (pool.0.min(f).max(1), pool.1.min(t).max(1));
        let statistics = Arc::new(Mutex::default());
        let op = Self {
            eps,
            pool,
            statistics: statistics.clone(),
        };
        let y = x
            .contiguous()?
            .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
        let statistics = statistics.lock().expect("statistics lock").clone();
        Ok((y, statistics))
    }
}

/// Calls `visit(cell, argmax, z_max)` for every pool cell of one (F, T) plane, where `z` maps
/// an input value to the pre-ReLU activation.
fn pool_cells(
    plane: &[f32],
    (f, t): (usize, usize),
    (pf, pt): (usize, usize),
    z: impl Fn(f32) -> f32,
    mut visit: impl FnMut(usize, usize, f32),
) {
    let (fo, to) = (f / pf, t / pt);
    for i in 0..fo {
        for j in 0..to {
            let (mut best, mut at) = (f32::NEG_INFINITY, 0);
            for r in i * pf..(i + 1) * pf {
                for q in j * pt..(j + 1) * pt {
                    let v = z(plane[r * t + q]);
                    if v > best {
                        (best, at) = (v, r * t + q);
                    }
                }
            }
            visit(i * to + j, at, best);
        }
    }
}

/// Mean and biased variance of every channel of a contiguous (B, C, S) buffer.
fn channel_statistics(x: &[f32], (b, c, s): (usize, usize, usize), eps: f64) -> BatchStatistics {
    let n = (b * s) as f64;
    let (mean, var): (Vec<f32>, Vec<f32>) = (0..c)
        .into_par_iter()
        .map(|ch| {
            let planes = || (0..b).map(move |i| &x[(i * c + ch) * s..(i * c + ch + 1) * s]);
            let sum: f64 = planes().flat_map(|p| p.iter()).map(|&v| v as f64).sum();
            let mean = sum / n;
            let squares: f64 = planes()
                .flat_map(|p| p.iter())
                .map(|&v| (v as f64 - mean).powi(2))
                .sum();
            (mean as f32, (squares / n) as f32)
        })
        .unzip();
    let inv_std = var
        .iter()
        .map(|&v| 1.0 / (v as f64 + eps).sqrt() as f32)
        .collect();
    BatchStatistics { mean, var, inv_std }
}

impl CustomOp3 for BatchNormReluPool {
    fn name(&self) -> &'static str {
        "batch-norm-relu-pool"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s1, l1, self.name())?;
        let (gamma, beta) = (contiguous(s2, l2, "gamma")?, contiguous(s3, l3, "beta")?);
        let (b, c, f, t) = l1.shape().dims4()?;
        let stats = channel_statistics(x, (b, c, f * t), self.eps);
        let (fo, to) = (f / self.pool.0, t / self.pool.1);
        let mut out = vec![0f32; b * c * fo * to];
        out.par_chunks_mut(fo * to)
            .zip(x.par_chunks(f * t))
            .enumerate()
            .for_each(|(plane, (y, x))| {
                let ch = plane % c;
                let scale = gamma[ch] * stats.inv_std[ch];
                let shift = beta[ch] - stats.mean[ch] * scale;
                let z = |v: f32| v * scale + shift;
                pool_cells(x, (f, t), self.pool, z, |cell, _, best| {
                    y[cell] = best.max(0.0);
                });
            });
        *self.statistics.lock().expect("statistics lock") = stats;
        Ok((CpuStorage::F32(out), Shape::from((b, c, fo, to))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let affine = Arc::new(Mutex::default());
        let backward = BatchNormReluPoolGrad {
            forward: self.statistics.lock().expect("statistics lock").clone(),
            gamma: gamma.to_vec1()?,
            beta: beta.to_vec1()?,
            pool: self.pool,
            affine: affine.clone(),
        };
        let dx = x.apply_op2_no_bwd(&grad.contiguous()?, &backward)?;
        let (dgamma, dbeta) = affine.lock().expect("affine lock").clone();
        let c = dgamma.len();
        Ok((
            Some(dx),
            Some(Tensor::from_vec(dgamma, c, x.device())?),
            Some(Tensor::from_vec(dbeta, c, x.device())?),
        ))
    }
}

/// The backward pass of [`BatchNormReluPool`]: (x, dL/dy) -> dL/dx, with dL/dgamma and
/// dL/dbeta left in `affine`. The pooled maximum is routed to its first argmax.
struct BatchNormReluPoolGrad {
    forward: BatchStatistics,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    pool: (usize, usize),
    affine: Arc<Mutex<(Vec<f32>, Vec<f32>)>>,
}

impl CustomOp2 for BatchNormReluPoolGrad {
    fn name(&self) -> &'static str {
        "batch-norm-relu-pool-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s1, l1, self.name())?;
        let dy = contiguous(s2, l2, self.name())?;
        let (b, c, f, t) = l1.shape().dims4()?;
        let (fo, to) = (f / self.pool.0, t / self.pool.1);
        let BatchStatistics { mean, inv_std, .. } = &self.forward;
        let z = |ch: usize| {
            let scale = self.gamma[ch] * inv_std[ch];
            let shift = self.beta[ch] - mean[ch] * scale;
            move |v: f32| v * scale + shift
        };
        // Per channel: sum of dL/dz and of dL/dz * xhat over the positions the pool chose.
        let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mut sum, mut sum_xhat) = (0f64, 0f64);
                for i in 0..b {
                    let plane = &x[(i * c + ch) * f * t..(i * c + ch + 1) * f * t];
                    let g = &dy[(i * c + ch) * fo * to..(i * c + ch + 1) * fo * to];
                    pool_cells(plane, (f, t), self.pool, z(ch), |cell, at, best| {
                        if best > 0.0 {
                            let xhat = (plane[at] - mean[ch]) * inv_std[ch];
                            sum += g[cell] as f64;
                            sum_xhat += (g[cell] * xhat) as f64;
                        }
                    });
                }
                (sum as f32, sum_xhat as f32)
            })
            .unzip();
        let n = (b * f * t) as f32;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(f * t)
            .zip(x.par_chunks(f * t))
            .enumerate()
            .for_each(|(plane, (dx, x))| {
                let ch = plane % c;
                let k = self.gamma[ch] * inv_std[ch];
                let (m1, m2) = (dbeta[ch] / n, dgamma[ch] / n);
                for (d, &v) in dx.iter_mut().zip(x) {
                    *d = -k * (m1 + (v - mean[ch]) * inv_std[ch] * m2);
                }
                let g = &dy[plane * fo * to..(plane + 1) * fo * to];
                pool_cells(x, (f, t), self.pool, z(ch), |cell, at, best| {
                    if best > 0.0 {
                        dx[at] += k * g[cell];
                    }
                });
            });
        *self.affine.lock().expect("affine lock") = (dgamma, dbeta);
        Ok((CpuStorage::F32(dx), Shape::from((b, c, f, t))))
    }
}

#[cfg(test)]
#[path = "train_kernels_tests.rs"]
mod tests;
