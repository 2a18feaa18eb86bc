//! The training losses' pieces: class weights, soft-target cross-entropy, one-hot targets.

use candle_core::{Device, Tensor};
use sentio::model::{ModelCard, Recipe};

/// Inverse-frequency class weights, square-rooted (full inverse frequency over-fits the
/// rare calm and surprise clips of one corpus), normalized to mean 1 over present classes.
pub fn class_weights(labels: &[usize], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    labels.iter().for_each(|&l| counts[l] += 1);
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    let mut w = vec![0.0f32; classes];
    for c in 0..classes {
        if counts[c] > 0 {
            w[c] = (labels.len() as f32 / (present as f32 * counts[c] as f32)).sqrt();
        }
    }
    let mean = w.iter().sum::<f32>() / present as f32;
    w.into_iter().map(|v| v / mean).collect()
}

/// Per class: [`class_weights`], with calm's capped at neutral's when the recipe says so.
pub fn loss_weights(card: &ModelCard, recipe: &Recipe, labels: &[usize]) -> Vec<f32> {
    let mut weights = class_weights(labels, card.labels.len());
    let position = |label: &str| card.labels.iter().position(|l| l == label);
    if let (true, Some(calm), Some(neutral)) = (
        recipe.cap_calm_weight,
        position("calm"),
        position("neutral"),
    ) {
        weights[calm] = weights[calm].min(weights[neutral]);
    }
    weights
}

/// Weighted cross-entropy against soft targets (mixup), averaged by target weight.
pub fn soft_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    weights: &Tensor,
) -> candle_core::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, 1)?;
    let weighted = targets.broadcast_mul(weights)?;
    let loss =
        (weighted.mul(&logp)?.sum_all()?.neg()? / weighted.sum_all()?.to_scalar::<f32>()? as f64)?;
    Ok(loss)
}

pub fn one_hot(labels: &[usize], classes: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mut v = vec![0.0f32; labels.len() * classes];
    labels
        .iter()
        .enumerate()
        .for_each(|(i, &l)| v[i * classes + l] = 1.0);
    Tensor::from_vec(v, (labels.len(), classes), device)
}
