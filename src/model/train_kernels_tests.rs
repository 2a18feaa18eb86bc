//! The fused kernels against the candle graphs they replace: values, every gradient, and
//! batch norm's running statistics.
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{BatchNorm, ModuleT};

use super::*;

fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}

/// A "same" 3x3 convolution through the columns equals candle's conv2d, and so does the
/// gradient of its input.
#[test]
fn im2col_convolution_and_its_gradient_equal_conv2d() -> Result<()> {
    let dev = Device::Cpu;
    for (c, f, t) in [(1, 5, 9), (3, 4, 7), (2, 1, 1)] {
        let x = Var::randn(0f32, 1., (2, c, f, t), &dev)?;
        let w = Tensor::randn(0f32, 1., (4, c, 3, 3), &dev)?;
        let columns_w = w.permute((0, 2, 3, 1))?.contiguous()?.reshape((4, 9 * c))?;
        let ours = columns_w
            .unsqueeze(0)?
            .broadcast_matmul(&im2col3x3(x.as_tensor())?)?
            .reshape((2, 4, f, t))?;
        let reference = x.as_tensor().conv2d(&w, 1, 1, 1, 1)?;
        assert!(
            max_diff(&ours, &reference)? < 1e-4,
            "{c}x{f}x{t}: values differ"
        );
        let r = Tensor::randn(0f32, 1., ours.shape(), &dev)?;
        let g_ours = (ours * &r)?.sum_all()?.backward()?;
        let g_ref = (reference * &r)?.sum_all()?.backward()?;
        let (a, b) = (g_ours.get(&x).unwrap(), g_ref.get(&x).unwrap());
        assert!(
            max_diff(a, b)? < 1e-4,
            "{c}x{f}x{t}: input gradients differ"
        );
    }
    Ok(())
}

/// Batch norm (training mode), ReLU and max pool in one op equal candle's three, in values,
/// in the gradients of input, scale and shift, and in the running statistics.
#[test]
fn fused_batch_norm_relu_pool_equals_candle_graph() -> Result<()> {
    let dev = Device::Cpu;
    // Ragged edges on both axes; a pool larger than the image; no pool.
    for (shape, pool) in [
        ((2, 2, 4, 6), (1, 1)),
        ((2, 2, 4, 8), (2, 4)),
        ((3, 4, 7, 10), (2, 4)),
        ((2, 3, 2, 3), (4, 4)),
    ] {
        let c = shape.1;
        let x = Var::randn(0.5f32, 2., shape, &dev)?;
        let gamma = Var::randn(1f32, 0.5, c, &dev)?;
        let beta = Var::randn(0f32, 0.5, c, &dev)?;
        let (ours, batch) = BatchNormReluPool::apply(
            x.as_tensor(),
            gamma.as_tensor(),
            beta.as_tensor(),
            1e-5,
            pool,
        )?;

        let running_mean = Var::zeros(c, DType::F32, &dev)?;
        let running_var = Var::ones(c, DType::F32, &dev)?;
        let bn = BatchNorm::new(
            c,
            running_mean.as_tensor().clone(),
            running_var.as_tensor().clone(),
            gamma.as_tensor().clone(),
            beta.as_tensor().clone(),
            1e-5,
        )?;
        let (_, _, f, t) = shape;
        let normalized = bn.forward_t(x.as_tensor(), true)?.relu()?;
        // `conv::max_pool`: candle's own max_pool2d has a wrong backward pass.
        let reference = crate::model::conv::max_pool(&normalized, pool)?;
        assert!(
            max_diff(&ours, &reference)? < 1e-5,
            "{shape:?}: values differ"
        );

        // candle's running update from zeros and ones recovers the batch statistics.
        let n = (shape.0 * f * t) as f64;
        let mean = Tensor::new(batch.mean.as_slice(), &dev)?;
        let var = ((Tensor::new(batch.var.as_slice(), &dev)? * (0.1 * n / (n - 1.0)))? + 0.9)?;
        assert!(max_diff(&(mean * 0.1)?, bn.running_mean())? < 1e-5);
        assert!(max_diff(&var, bn.running_var())? < 1e-5);

        let r = Tensor::randn(0f32, 1., ours.shape(), &dev)?;
        let g_ours = (ours * &r)?.sum_all()?.backward()?;
        let g_ref = (reference * &r)?.sum_all()?.backward()?;
        for (name, var) in [("scale", &gamma), ("shift", &beta), ("input", &x)] {
            let (a, b) = (g_ours.get(var).unwrap(), g_ref.get(var).unwrap());
            let d = max_diff(a, b)?;
            assert!(d < 1e-4, "{shape:?}: {name} gradients differ by {d}");
        }
    }
    Ok(())
}
