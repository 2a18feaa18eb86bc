//! The log-mel CNN as served: the same weights as [`LogMelNet`], executed for inference
//! only. Profiling the server at 1000 streams showed the model thread spending twice as long
//! in candle's conv2d im2col and the separate batch-norm passes as in the GEMM itself. Here
//! batch norm is folded into each convolution's weights and bias once, at load, and
//! activations stay channels-last (B, T, C), so a convolution is k shifted copies side by
//! side and one GEMM over every frame of every window in the batch. `tests` check that it
//! computes what the training graph computes.

use candle_core::{D, Result, Tensor};

use super::architecture::Inference;
use super::logmel::{InputNorm, LogMelNet, MIN_WINDOW_STD_DB};

/// Batch norm in evaluation mode as a per-channel affine map, to fold into the layer
/// before it: y = (x - mean) / sqrt(var + eps) * gamma + beta = x * scale + shift.
pub(crate) fn batch_norm_affine(bn: &candle_nn::BatchNorm) -> Result<(Tensor, Tensor)> {
    let (gamma, beta) = bn
        .weight_and_bias()
        .ok_or_else(|| candle_core::Error::Msg("batch norm without affine".into()))?;
    let scale = (gamma / (bn.running_var() + bn.eps())?.sqrt()?)?;
    let shift = (beta - bn.running_mean().mul(&scale)?)?;
    Ok((scale, shift))
}

/// The classifier as (C, classes) weight and bias, for `x.matmul(w) + b`.
pub(crate) fn linear_parts(head: &candle_nn::Linear) -> Result<(Tensor, Tensor)> {
    let bias = head
        .bias()
        .cloned()
        .ok_or_else(|| candle_core::Error::Msg("classifier without bias".into()))?;
    Ok((head.weight().t()?.contiguous()?, bias))
}

#[derive(Debug)]
struct FoldedConv {
    /// (k * C_in, C_out): row `kk * C_in + c` holds tap `kk` of input channel `c`.
    weight: Tensor,
    /// (C_out), batch norm's shift.
    bias: Tensor,
    k: usize,
    pool: bool,
}

#[derive(Debug)]
pub struct FoldedLogMelNet {
    convs: Vec<FoldedConv>,
    /// (2 C, 8), the classifier transposed.
    head_weight: Tensor,
    head_bias: Tensor,
    /// (1, 1, n_mels).
    band_mean: Tensor,
    band_std: Tensor,
    input_norm: InputNorm,
}

impl FoldedLogMelNet {
    pub fn new(net: &LogMelNet) -> Result<Self> {
        let parts = net.parts();
        let mut convs = Vec::with_capacity(parts.blocks.len());
        for &(conv_weight, bn, pool) in &parts.blocks {
            let k = conv_weight.dim(2)?;
            let (scale, bias) = batch_norm_affine(bn)?;
            let weight = conv_weight
                .broadcast_mul(&scale.reshape(((), 1, 1))?)?
                .permute((2, 1, 0))?
                .contiguous()?;
            let (_, c_in, c_out) = weight.dims3()?;
            convs.push(FoldedConv {
                weight: weight.reshape((k * c_in, c_out))?,
                bias,
                k,
                pool,
            });
        }
        let n_mels = parts.band_mean.elem_count();
        let (head_weight, head_bias) = linear_parts(parts.head)?;
        Ok(Self {
            convs,
            head_weight,
            head_bias,
            band_mean: parts.band_mean.reshape((1, 1, n_mels))?,
            band_std: parts.band_std.reshape((1, 1, n_mels))?,
            input_norm: parts.input_norm,
        })
    }
}

impl Inference for FoldedLogMelNet {
    /// Logits for a batch of log-mel windows (B, T, n_mels).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match self.input_norm {
            InputNorm::Level => x.broadcast_sub(&x.mean_keepdim(1)?.mean_keepdim(2)?)?,
            InputNorm::BandMean => x.broadcast_sub(&x.mean_keepdim(1)?)?,
            InputNorm::Standardize => {
                let centred = x.broadcast_sub(&x.mean_keepdim(1)?.mean_keepdim(2)?)?;
                let var = centred.sqr()?.mean_keepdim(1)?.mean_keepdim(2)?;
                centred.broadcast_div(&(var.sqrt()? + MIN_WINDOW_STD_DB)?)?
            }
        };
        let mut x = x
            .broadcast_sub(&self.band_mean)?
            .broadcast_div(&self.band_std)?;
        for conv in &self.convs {
            let (b, t, c) = x.dims3()?;
            let padded = x.pad_with_zeros(1, conv.k / 2, conv.k / 2)?;
            // Contiguous taps first: candle concatenates contiguous tensors with block
            // copies, strided ones element by element (a third of the time, in perf).
            let taps = (0..conv.k)
                .map(|kk| padded.narrow(1, kk, t)?.contiguous())
                .collect::<Result<Vec<_>>>()?;
            let columns = Tensor::cat(&taps, 2)?.reshape((b * t, conv.k * c))?;
            let c_out = conv.bias.elem_count();
            x = columns
                .matmul(&conv.weight)?
                .broadcast_add(&conv.bias)?
                .relu()?
                .reshape((b, t, c_out))?;
            if conv.pool && t >= 2 {
                // Max over non-overlapping frame pairs; an odd last frame is dropped, as
                // max_pool2d does in training.
                let pairs = x.narrow(1, 0, t / 2 * 2)?.reshape((b, t / 2, 2 * c_out))?;
                x = pairs
                    .narrow(2, 0, c_out)?
                    .maximum(&pairs.narrow(2, c_out, c_out)?)?;
            }
        }
        let pooled = Tensor::cat(&[x.mean(1)?, x.max(1)?], D::Minus1)?;
        pooled
            .matmul(&self.head_weight)?
            .broadcast_add(&self.head_bias)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;
    use crate::model::load_network;

    /// Trained weights (`models/logmel`) on random and real-looking inputs of several
    /// lengths, with each input normalization: the folded, channels-last pass equals the
    /// training graph.
    #[test]
    fn folded_inference_equals_the_training_graph() -> Result<()> {
        for norm in ["level", "band_mean", "standardize"] {
            folded_equals_graph(norm)?;
        }
        Ok(())
    }

    fn folded_equals_graph(norm: &str) -> Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/logmel");
        let mut card: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap())
                .unwrap();
        card["architecture"]["input_norm"] = norm.into();
        let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
        let (_, net) = load_network(&card.to_string(), &weights, &Device::Cpu).unwrap();
        let folded = net.inference()?;
        for (batch, frames) in [(1, 197), (3, 48), (5, 97), (2, 797)] {
            let x = (Tensor::randn(0f32, 12.0, (batch, frames, 64), &Device::Cpu)? - 40.0)?
                .to_dtype(DType::F32)?;
            let reference = net.forward_t(&x, false)?;
            let fast = folded.forward(&x)?;
            let diff = (reference - fast)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                diff < 1e-3,
                "{norm}, batch {batch}, {frames} frames: logits differ by {diff}"
            );
        }
        Ok(())
    }
}
