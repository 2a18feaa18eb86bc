//! A 1-D convolution computed as a 2-D convolution over (B, C, 1, T). candle 0.11's CPU
//! `conv1d` returns wrong kernel gradients (a finite-difference check disagrees by more than
//! the gradient itself), while `conv2d`'s agree to 1e-4; training depends on this.

use candle_core::{D, Result, Tensor};
use candle_nn::{Init, VarBuilder};

#[derive(Clone, Debug)]
pub struct TemporalConv {
    /// (out, in, k), the layout of a 1-D convolution's weight.
    weight: Tensor,
    bias: Option<Tensor>,
    pad_left: usize,
    pad_right: usize,
}

impl TemporalConv {
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        pad: (usize, usize),
        bias: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (cout, cin, k),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bias = if bias {
            let bound = 1.0 / ((cin * k) as f64).sqrt();
            Some(vb.get_with_hints(
                cout,
                "bias",
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            pad_left: pad.0,
            pad_right: pad.1,
        })
    }

    /// (out, in, k).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// (B, C_in, T) -> (B, C_out, T + pads - k + 1).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x
            .pad_with_zeros(D::Minus1, self.pad_left, self.pad_right)?
            .unsqueeze(2)?;
        let y = x
            .conv2d(&self.weight.unsqueeze(2)?, 0, 1, 1, 1)?
            .squeeze(2)?;
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1))?),
            None => Ok(y),
        }
    }
}

/// Max pool of (bands, frames) cells over (B, C, F, T), dropping a ragged edge, as reshape
/// and max: its gradient goes to each cell's maximum. candle 0.11's `max_pool2d` backward
/// scales that gradient by 1 / (cell area) and, when a size is not a multiple of the cell,
/// loses it on most of the image (its nearest-neighbour upsampling of the pooled gradient does
/// not line up with the cells); the forward values are the same.
pub fn max_pool(x: &Tensor, (pf, pt): (usize, usize)) -> Result<Tensor> {
    let (b, c, f, t) = x.dims4()?;
    let (pf, pt) = (pf.min(f).max(1), pt.min(t).max(1));
    if (pf, pt) == (1, 1) {
        return Ok(x.clone());
    }
    let (fo, to) = (f / pf, t / pt);
    x.narrow(2, 0, fo * pf)?
        .narrow(3, 0, to * pt)?
        .reshape((b, c, fo, pf, to, pt))?
        .max(5)?
        .max(3)
}

/// [`max_pool`] over frame pairs of (B, C, T); an odd last frame is dropped.
pub fn max_pool_pairs(x: &Tensor) -> Result<Tensor> {
    max_pool(&x.unsqueeze(2)?, (1, 2))?.squeeze(2)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    use super::*;

    /// Pooling keeps candle's values and sends a gradient of exactly 1 to each cell's
    /// maximum, ragged edges included.
    #[test]
    fn max_pool_routes_gradient_to_each_maximum() -> Result<()> {
        let dev = Device::Cpu;
        for ((f, t), pool) in [((4, 8), (2, 4)), ((7, 197), (2, 4)), ((1, 9), (1, 2))] {
            let x = Var::randn(0f32, 1., (2, 3, f, t), &dev)?;
            let pooled = max_pool(x.as_tensor(), pool)?;
            let candle = x.as_tensor().max_pool2d_with_stride(pool, pool)?;
            let diff = (&pooled - candle)?.abs()?.flatten_all()?.max(0)?;
            assert_eq!(diff.to_scalar::<f32>()?, 0.0);
            let grads = pooled.sum_all()?.backward()?;
            let grad = grads
                .get(&x)
                .expect("gradient")
                .flatten_all()?
                .to_vec1::<f32>()?;
            let ones = grad.iter().filter(|&&g| g == 1.0).count();
            assert_eq!(
                ones,
                pooled.elem_count(),
                "{f}x{t}: one unit gradient per cell"
            );
            assert_eq!(grad.iter().filter(|&&g| g != 0.0).count(), ones);
        }
        Ok(())
    }

    /// The reason this module exists: analytic kernel gradients match finite differences.
    #[test]
    fn kernel_gradients_match_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let conv = TemporalConv::new(
            3,
            4,
            5,
            (2, 2),
            true,
            VarBuilder::from_varmap(&varmap, DType::F32, &dev),
        )?;
        let x = Tensor::randn(0f32, 1., (2, 3, 10), &dev)?;
        let r = Tensor::randn(0f32, 1., (2, 4, 10), &dev)?;
        let weight: Var = varmap.data().lock().unwrap()["weight"].clone();
        let grads = conv.forward(&x)?.mul(&r)?.sum_all()?.backward()?;
        let analytic = grads
            .get(weight.as_tensor())
            .unwrap()
            .flatten_all()?
            .to_vec1::<f32>()?;
        let values = weight.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        for i in [0, 7, 13, 29, 44, 59] {
            let loss_at = |delta: f32| -> Result<f32> {
                let mut v = values.clone();
                v[i] += delta;
                weight.set(&Tensor::from_vec(v, (4, 3, 5), &dev)?)?;
                conv.forward(&x)?.mul(&r)?.sum_all()?.to_scalar::<f32>()
            };
            let numeric = (loss_at(1e-2)? - loss_at(-1e-2)?) / 2e-2;
            assert!(
                (numeric - analytic[i]).abs() < 1e-2,
                "w[{i}]: analytic {} numeric {numeric}",
                analytic[i]
            );
        }
        Ok(())
    }
}
