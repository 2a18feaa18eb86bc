//! The corpus adversary (`Recipe::corpus_adversary`): a small head that predicts which
//! corpus a window came from, trained through a gradient-reversal layer, so that the
//! network's embedding is pushed to carry emotion but not the recording (EXPERIMENTS.md:
//! a model trained on some corpora hears an unseen one as a single class). It lives in its
//! own variables and optimizer, and is never saved with the model.

use candle_core::{Device, Result, Tensor};
use candle_nn::{Linear, Module, Optimizer, VarBuilder, VarMap};

/// Identity forward, gradient multiplied by `-lambda` backward: `(1 + l) x.detach() - l x`.
pub fn reverse_gradient(x: &Tensor, lambda: f64) -> Result<Tensor> {
    (x.detach() * (1.0 + lambda))? - (x * lambda)?
}

/// DANN's schedule: the reversal weight rises from 0 to `strength` as training progresses
/// (0..1), so the adversary's noisy early gradients do not disturb the first epochs.
pub fn ramp(strength: f64, progress: f64) -> f64 {
    strength * (2.0 / (1.0 + (-10.0 * progress).exp()) - 1.0)
}

pub struct CorpusAdversary {
    /// Owns the head's variables (the optimizer holds them too).
    _varmap: VarMap,
    hidden: Linear,
    out: Linear,
    optimizer: candle_nn::AdamW,
    /// Inverse-frequency weights per corpus, so a large corpus is not the easy answer.
    weights: Tensor,
    strength: f64,
}

impl CorpusAdversary {
    pub fn new(
        embedding: usize,
        corpus_weights: &[f32],
        strength: f64,
        learning_rate: f64,
        device: &Device,
    ) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, candle_core::DType::F32, device);
        let hidden = candle_nn::linear(embedding, 128, vb.pp("adversary.hidden"))?;
        let out = candle_nn::linear(128, corpus_weights.len(), vb.pp("adversary.out"))?;
        let optimizer = candle_nn::AdamW::new(
            varmap.all_vars(),
            candle_nn::ParamsAdamW {
                lr: learning_rate,
                ..Default::default()
            },
        )?;
        let weights = Tensor::from_slice(corpus_weights, (1, corpus_weights.len()), device)?;
        Ok(Self {
            _varmap: varmap,
            hidden,
            out,
            optimizer,
            weights,
            strength,
        })
    }

    /// The adversary's loss on a batch's embeddings against (soft, mixed) corpus targets
    /// (B, corpora); the embedding's gradient from it is reversed.
    pub fn loss(&self, embedding: &Tensor, targets: &Tensor, progress: f64) -> Result<Tensor> {
        let reversed = reverse_gradient(embedding, ramp(self.strength, progress))?;
        let logits = self.out.forward(&self.hidden.forward(&reversed)?.relu()?)?;
        let logp = candle_nn::ops::log_softmax(&logits, 1)?;
        let weighted = targets.broadcast_mul(&self.weights)?;
        weighted.mul(&logp)?.sum_all()?.neg()? / weighted.sum_all()?.to_scalar::<f32>()? as f64
    }

    /// Applies the adversary's own gradients from a backward pass of the total loss.
    pub fn step(&mut self, grads: &candle_core::backprop::GradStore, lr: f64) -> Result<()> {
        self.optimizer.set_learning_rate(lr);
        self.optimizer.step(grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reversal leaves values alone and flips (and scales) the gradient.
    #[test]
    fn gradient_is_reversed_and_values_kept() {
        let x = candle_core::Var::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let y = reverse_gradient(x.as_tensor(), 0.5).unwrap();
        let values: Vec<f32> = y.to_vec1().unwrap();
        assert_eq!(values, [1.0, -2.0, 3.0]);
        let grads = (y * 2.0).unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads.get(x.as_tensor()).unwrap().to_vec1().unwrap();
        assert_eq!(g, [-1.0, -1.0, -1.0]);
    }

    #[test]
    fn ramp_rises_from_zero_to_the_strength() {
        assert_eq!(ramp(0.5, 0.0), 0.0);
        assert!((ramp(0.5, 1.0) - 0.5).abs() < 1e-4);
        assert!(ramp(0.5, 0.2) < ramp(0.5, 0.4));
    }
}
