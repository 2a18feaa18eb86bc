//! The training loops. Both models train on the training speakers only, pick their best
//! epoch by clip-level UAR on the validation speakers, and are deterministic for a seed
//! (seeded init, data order, augmentation, dropout and masks).

use std::collections::HashMap;

use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Normal};
use sentio::model::{ModelCard, ModelKind, Net};

use crate::cache::CachedClip;
use crate::eval::{Confusion, argmax, predict_clips};

/// Knobs of one training run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Log-mel crop length in frames (a window's frames).
    pub crop_frames: usize,
    pub mixup_alpha: f32,
    pub spec_augment: bool,
}

/// The training set as the loops see it: per clip, its label and cached variants.
pub struct TrainSet<'a> {
    pub labels: Vec<usize>,
    pub variants: Vec<&'a [CachedClip]>,
}

/// Re-initializes every variable from a seeded generator (candle's CPU RNG cannot be
/// seeded): He-normal weights, zero biases, unit batch-norm scale and variance.
pub fn init_vars(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = StdRng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let shape = var.shape().clone();
        let n = shape.elem_count();
        let values: Vec<f32> = if name.ends_with("running_var")
            || (name.contains(".bn.") && name.ends_with("weight"))
        {
            vec![1.0; n]
        } else if shape.rank() >= 2 {
            let fan_in: usize = shape.dims()[1..].iter().product();
            let normal = Normal::new(0.0f32, (2.0 / fan_in as f32).sqrt())?;
            (0..n).map(|_| normal.sample(&mut rng)).collect()
        } else {
            vec![0.0; n]
        };
        var.set(&Tensor::from_vec(values, shape, var.device())?)?;
    }
    Ok(())
}

/// Inverse-frequency class weights, square-rooted (full inverse frequency over-fits the
/// rare calm and surprise clips of one corpus), normalized to mean 1 over present classes.
pub fn class_weights(labels: &[usize]) -> [f32; 8] {
    let mut counts = [0usize; 8];
    labels.iter().for_each(|&l| counts[l] += 1);
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    let mut w = [0.0f32; 8];
    for c in 0..8 {
        if counts[c] > 0 {
            w[c] = (labels.len() as f32 / (present as f32 * counts[c] as f32)).sqrt();
        }
    }
    let mean = w.iter().sum::<f32>() / present as f32;
    w.map(|v| v / mean)
}

/// Weighted cross-entropy against soft targets (mixup), averaged by target weight.
fn soft_cross_entropy(
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

/// A random crop of `crop` frames, clamped to top_db below its own peak as a window is;
/// clips shorter than a crop are padded with silence (which the clamp lifts to the floor).
pub fn crop_window(
    clip: &CachedClip,
    n_mels: usize,
    crop: usize,
    top_db: f32,
    rng: &mut StdRng,
) -> Vec<f32> {
    let mut out = vec![-100.0f32; crop * n_mels];
    if clip.frames > crop {
        let start = rng.random_range(0..=clip.frames - crop);
        out.copy_from_slice(&clip.logmel_db[start * n_mels..(start + crop) * n_mels]);
    } else {
        let offset = rng.random_range(0..=crop - clip.frames);
        out[offset * n_mels..(offset + clip.frames) * n_mels].copy_from_slice(&clip.logmel_db);
    }
    let floor = out.iter().copied().fold(f32::NEG_INFINITY, f32::max) - top_db;
    out.iter_mut().for_each(|v| *v = v.max(floor));
    out
}

/// SpecAugment: two frequency masks of up to 8 bands, two time masks of up to 10% of the
/// frames, as a multiplicative 0/1 mask over normalized (zero-mean) input.
fn spec_augment_mask(batch: usize, n_mels: usize, frames: usize, rng: &mut StdRng) -> Vec<f32> {
    let mut mask = vec![1.0f32; batch * n_mels * frames];
    for b in 0..batch {
        let item = &mut mask[b * n_mels * frames..(b + 1) * n_mels * frames];
        for _ in 0..2 {
            let width = rng.random_range(0..=8);
            let start = rng.random_range(0..=n_mels - width);
            item[start * frames..(start + width) * frames]
                .iter_mut()
                .for_each(|v| *v = 0.0);
            let width = rng.random_range(0..=frames / 10);
            let start = rng.random_range(0..=frames - width);
            for m in 0..n_mels {
                item[m * frames + start..m * frames + start + width]
                    .iter_mut()
                    .for_each(|v| *v = 0.0);
            }
        }
    }
    mask
}

fn one_hot(labels: &[usize], device: &Device) -> candle_core::Result<Tensor> {
    let mut v = vec![0.0f32; labels.len() * 8];
    labels
        .iter()
        .enumerate()
        .for_each(|(i, &l)| v[i * 8 + l] = 1.0);
    Tensor::from_vec(v, (labels.len(), 8), device)
}

/// A trained network with the weights of its best validation epoch.
pub struct Trained {
    pub varmap: VarMap,
    pub net: Net,
    /// Per epoch: mean training loss, validation UAR.
    pub history: Vec<(f64, f64)>,
}

/// Trains a network; returns it with the weights of the best validation epoch, and the
/// per-epoch history (loss, validation UAR).
pub fn train(
    card: &ModelCard,
    config: &TrainConfig,
    train_set: &TrainSet,
    val: &[&CachedClip],
    val_labels: &[usize],
    device: &Device,
) -> Result<Trained> {
    let varmap = VarMap::new();
    let net = Net::build(card, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    init_vars(&varmap, config.seed)?;
    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(1));
    match &net {
        Net::Seed(n) => n.dropout.set_seed(config.seed),
        Net::Logmel(n) => n.dropout.set_seed(config.seed),
    }
    let weights = Tensor::from_slice(&class_weights(&train_set.labels), (1, 8), device)?;
    let params = ParamsAdamW {
        lr: config.learning_rate,
        weight_decay: config.weight_decay,
        ..Default::default()
    };
    let mut optimizer = AdamW::new(varmap.all_vars(), params)?;

    // Samples: (clip, window) pairs for the seed model, clips for the log-mel model.
    let samples: Vec<(usize, usize)> = match card.kind {
        ModelKind::Seed => (0..train_set.labels.len())
            .flat_map(|c| (0..train_set.variants[c][0].windows.len()).map(move |w| (c, w)))
            .collect(),
        ModelKind::Logmel => (0..train_set.labels.len()).map(|c| (c, 0)).collect(),
    };
    let steps_per_epoch = samples.len() / config.batch_size;
    let total_steps = (steps_per_epoch * config.epochs).max(1);
    let n_mels = card.features.n_mels;
    let top_db = card.features.top_db.unwrap_or(80.0);
    let beta = Beta::new(config.mixup_alpha.max(1e-3), config.mixup_alpha.max(1e-3))?;

    let bar = ProgressBar::new(total_steps as u64);
    bar.set_style(ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
    )?);
    bar.set_prefix(format!("{:?}", card.kind));
    let mut best: Option<(f64, HashMap<String, Tensor>)> = None;
    let mut history = Vec::new();
    let mut plateau = (f64::INFINITY, 0usize);
    let mut step = 0usize;
    for epoch in 0..config.epochs {
        let mut order = samples.clone();
        order.shuffle(&mut rng);
        let mut epoch_loss = 0.0;
        for batch in order.chunks_exact(config.batch_size) {
            if card.kind == ModelKind::Logmel {
                // Cosine decay after a one-epoch warm-up.
                let progress = step as f64 / total_steps as f64;
                let warm = ((step + 1) as f64 / steps_per_epoch.max(1) as f64).min(1.0);
                optimizer.set_learning_rate(
                    config.learning_rate
                        * warm
                        * 0.5
                        * (1.0 + (std::f64::consts::PI * progress).cos()),
                );
            }
            let labels: Vec<usize> = batch.iter().map(|&(c, _)| train_set.labels[c]).collect();
            let mut targets = one_hot(&labels, device)?;
            let mut x = match card.kind {
                ModelKind::Seed => {
                    let flat: Vec<f32> = batch
                        .iter()
                        .flat_map(|&(c, w)| {
                            let variants = train_set.variants[c];
                            let v = &variants[rng.random_range(0..variants.len())];
                            v.windows[w.min(v.windows.len() - 1)].values.clone()
                        })
                        .collect();
                    Tensor::from_vec(flat, (batch.len(), 162), device)?
                }
                ModelKind::Logmel => {
                    let flat: Vec<f32> = batch
                        .iter()
                        .flat_map(|&(c, _)| {
                            let variants = train_set.variants[c];
                            let pick = if rng.random_bool(0.4) {
                                0
                            } else {
                                rng.random_range(0..variants.len())
                            };
                            crop_window(
                                &variants[pick],
                                n_mels,
                                config.crop_frames,
                                top_db,
                                &mut rng,
                            )
                        })
                        .collect();
                    Tensor::from_vec(flat, (batch.len(), config.crop_frames, n_mels), device)?
                }
            };
            if let Net::Logmel(net) = &net {
                x = net.normalize(&x)?;
                if config.spec_augment {
                    let mask = spec_augment_mask(batch.len(), n_mels, config.crop_frames, &mut rng);
                    x = x.mul(&Tensor::from_vec(mask, x.shape(), device)?)?;
                }
            }
            if config.mixup_alpha > 0.0 {
                let lambda = beta.sample(&mut rng) as f64;
                let mut perm: Vec<u32> = (0..batch.len() as u32).collect();
                perm.shuffle(&mut rng);
                let perm = Tensor::from_vec(perm, batch.len(), device)?;
                x = ((&x * lambda)? + (x.index_select(&perm, 0)? * (1.0 - lambda))?)?;
                targets =
                    ((&targets * lambda)? + (targets.index_select(&perm, 0)? * (1.0 - lambda))?)?;
            }
            let logits = match &net {
                Net::Logmel(n) => n.forward_normalized(&x, true)?,
                Net::Seed(n) => n.forward_t(&x, true)?,
            };
            let loss = soft_cross_entropy(&logits, &targets, &weights)?;
            optimizer.backward_step(&loss)?;
            let loss = loss.to_scalar::<f32>()? as f64;
            epoch_loss += loss;
            step += 1;
            bar.inc(1);
            if step.is_multiple_of(10) {
                bar.set_message(format!("epoch {} loss {loss:.3}", epoch + 1));
            }
        }
        let probs = predict_clips(&net, device, val, card.kind == ModelKind::Seed)?;
        let predictions: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
        let uar = Confusion::from_predictions(val_labels, &predictions).uar();
        let val_loss = -probs
            .iter()
            .zip(val_labels)
            .map(|(p, &l)| (p[l].max(1e-7) as f64).ln())
            .sum::<f64>()
            / val_labels.len().max(1) as f64;
        let mean_loss = epoch_loss / steps_per_epoch.max(1) as f64;
        history.push((mean_loss, uar));
        bar.suspend(|| eprintln!("{:?} epoch {:>3}: train loss {mean_loss:.4}  val loss {val_loss:.4}  val UAR {uar:.4}  lr {:.2e}", card.kind, epoch + 1, optimizer.learning_rate()));
        if best.as_ref().is_none_or(|(b, _)| uar > *b) {
            best = Some((uar, snapshot(&varmap)?));
        }
        if card.kind == ModelKind::Seed {
            // ReduceLROnPlateau(factor 0.4, patience 2, min_lr 1e-7), on validation loss.
            if val_loss < plateau.0 {
                plateau = (val_loss, 0);
            } else {
                plateau.1 += 1;
                if plateau.1 >= 2 {
                    optimizer.set_learning_rate((optimizer.learning_rate() * 0.4).max(1e-7));
                    plateau.1 = 0;
                }
            }
        }
    }
    bar.finish_and_clear();
    if let Some((_, tensors)) = best {
        restore(&varmap, &tensors)?;
    }
    Ok(Trained {
        varmap,
        net,
        history,
    })
}

fn snapshot(varmap: &VarMap) -> Result<HashMap<String, Tensor>> {
    let data = varmap.data().lock().expect("varmap lock");
    Ok(data
        .iter()
        .map(|(k, v): (&String, &Var)| (k.clone(), v.as_tensor().copy().expect("copy")))
        .collect())
}

fn restore(varmap: &VarMap, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    for (name, var) in data.iter() {
        var.set(&tensors[name])?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "train_tests.rs"]
mod tests;
