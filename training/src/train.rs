//! The training loops. Both models train on the training speakers only, pick their best
//! epoch by clip-level UAR on the validation speakers, and are deterministic for a seed
//! (seeded init, data order, augmentation, dropout and masks).

use std::collections::HashMap;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution};
use sentio::model::recipe::{Sampling, Schedule};
use sentio::model::{ModelCard, ModelInput, Network, Recipe};

use crate::adversary::CorpusAdversary;
use crate::batch::{colour, crop_window_padded, shift_mel, spec_augment_mask};
use crate::cache::CachedClip;
use crate::eval::{Confusion, argmax, predict_clips};
pub use crate::loss::class_weights;
use crate::loss::{loss_weights, one_hot, soft_cross_entropy};
use crate::schedule::{reduce_on_plateau, warmup_cosine};
use crate::weights::{WeightAverage, init_vars, restore, snapshot};

/// Knobs of one training run: the architecture's recipe and the seed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainConfig {
    pub seed: u64,
    #[serde(flatten)]
    pub recipe: Recipe,
}

/// The training set as the loops see it: per clip, its label and cached variants.
pub struct TrainSet<'a> {
    /// Per clip, the index of its label in the card's `labels` (the network's outputs).
    pub labels: Vec<usize>,
    /// Per clip, its corpus (0, 1, ... in any fixed order), for the corpus adversary.
    pub corpora: Vec<usize>,
    pub variants: Vec<&'a [CachedClip]>,
    /// Each clip's speaker's other clips, when windows are read against their speaker.
    pub adaptation: Option<&'a crate::adapt::SpeakerWindows>,
}

/// A trained network with the weights of its best validation epoch.
pub struct Trained {
    pub varmap: VarMap,
    pub net: Box<dyn Network>,
    /// Per epoch: mean training loss, validation UAR.
    pub history: Vec<(f64, f64)>,
}

/// What one run needs besides the data.
struct Run<'a> {
    card: &'a ModelCard,
    recipe: &'a Recipe,
    net: Box<dyn Network>,
    device: &'a Device,
    rng: StdRng,
    class_weights: Tensor,
    beta: Beta<f32>,
    /// Per-corpus loss weights, while the adversary waits for its first batch (it is built
    /// once the embedding's width is known).
    corpus_weights: Vec<f32>,
    adversary: Option<CorpusAdversary>,
}

/// Trains a network; returns it with the weights of the best validation epoch, and the
/// per-epoch history (loss, validation UAR). With `checkpoint`, the best weights so far are
/// also written there after each improvement.
pub fn train(
    card: &ModelCard,
    config: &TrainConfig,
    train_set: &TrainSet,
    val: &[&CachedClip],
    val_labels: &[usize],
    device: &Device,
    checkpoint: Option<&std::path::Path>,
) -> Result<Trained> {
    let recipe = &config.recipe;
    let mut varmap = VarMap::new();
    let net = card
        .architecture
        .spec()
        .build(card, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    init_vars(&varmap, config.seed)?;
    if let Some(dir) = &recipe.init_from {
        varmap.load(dir.join("model.safetensors"))?;
    }
    net.set_dropout_seed(config.seed);
    let classes = card.labels.len();
    let weights = loss_weights(card, recipe, &train_set.labels);
    let alpha = recipe.mixup_alpha.max(1e-3);
    let mut run = Run {
        card,
        recipe,
        net,
        device,
        rng: StdRng::seed_from_u64(config.seed.wrapping_add(1)),
        class_weights: Tensor::from_slice(&weights, (1, classes), device)?,
        beta: Beta::new(alpha, alpha)?,
        corpus_weights: {
            let corpora = train_set.corpora.iter().max().map_or(1, |&c| c + 1);
            class_weights(&train_set.corpora, corpora)
        },
        adversary: None,
    };
    let mut optimizer = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: recipe.learning_rate,
            weight_decay: recipe.weight_decay,
            ..Default::default()
        },
    )?;
    let samples = run.samples(train_set);
    let steps_per_epoch = samples.len() / recipe.batch_size;
    let total_steps = (steps_per_epoch * recipe.epochs).max(1);
    let bar = ProgressBar::new(total_steps as u64);
    bar.set_style(ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
    )?);
    bar.set_prefix(card.kind());
    let mut best: Option<(f64, HashMap<String, Tensor>)> = None;
    let mut history = Vec::new();
    let mut plateau = (f64::INFINITY, 0usize);
    let mut step = 0usize;
    let mut average = WeightAverage::default();
    for epoch in 0..recipe.epochs {
        let order = run.epoch_order(&samples, &train_set.corpora);
        let mut epoch_loss = 0.0;
        for batch in order.chunks_exact(recipe.batch_size) {
            if let Schedule::WarmupCosine { warmup_epochs } = recipe.schedule {
                let warm_steps = (steps_per_epoch * warmup_epochs.max(1)).max(1);
                optimizer.set_learning_rate(
                    recipe.learning_rate * warmup_cosine(step, warm_steps, total_steps),
                );
            }
            let progress = step as f64 / total_steps as f64;
            let loss = run.step(train_set, batch, &mut optimizer, progress)?;
            epoch_loss += loss;
            step += 1;
            bar.inc(1);
            if step.is_multiple_of(10) {
                bar.set_message(format!("epoch {} loss {loss:.3}", epoch + 1));
            }
        }
        let input = card.architecture.spec().input();
        // Without validation speakers (a refit), every epoch is "best": the last is kept.
        let (uar, val_loss) = if val.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            validate(run.net.as_ref(), input, device, val, val_labels)?
        };
        let mean_loss = epoch_loss / steps_per_epoch.max(1) as f64;
        history.push((mean_loss, uar));
        bar.suspend(|| eprintln!("{} epoch {:>3}: train loss {mean_loss:.4}  val loss {val_loss:.4}  val UAR {uar:.4}  lr {:.2e}", card.kind(), epoch + 1, optimizer.learning_rate()));
        if val.is_empty() || best.as_ref().is_none_or(|(b, _)| uar > *b) {
            best = Some((uar, snapshot(&varmap)?));
            // The best weights so far survive a killed run.
            if let Some(path) = checkpoint {
                varmap.save(path)?;
            }
        }
        if recipe.schedule == Schedule::ReduceOnPlateau {
            reduce_on_plateau(&mut optimizer, &mut plateau, val_loss);
        }
        if epoch + recipe.average_last_epochs >= recipe.epochs {
            average.add(&snapshot(&varmap)?)?;
        }
    }
    bar.finish_and_clear();
    if let Some(tensors) = average.mean()? {
        restore(&varmap, &tensors)?;
        if let Some(path) = checkpoint {
            varmap.save(path)?;
        }
    } else if let Some((_, tensors)) = best {
        restore(&varmap, &tensors)?;
    }
    Ok(Trained {
        varmap,
        net: run.net,
        history,
    })
}

/// Clip-level validation UAR and mean negative log-likelihood.
fn validate(
    net: &dyn Network,
    input: ModelInput,
    device: &Device,
    val: &[&CachedClip],
    val_labels: &[usize],
) -> Result<(f64, f64)> {
    let probs = predict_clips(net, input, device, val)?;
    let predictions: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    let uar = Confusion::from_predictions(val_labels, &predictions).uar();
    let val_loss = -probs
        .iter()
        .zip(val_labels)
        .map(|(p, &l)| (p[l].max(1e-7) as f64).ln())
        .sum::<f64>()
        / val_labels.len().max(1) as f64;
    Ok((uar, val_loss))
}

impl Run<'_> {
    /// (clip, window) pairs for clip-vector models, clips for log-mel models.
    fn samples(&self, train_set: &TrainSet) -> Vec<(usize, usize)> {
        let clips = 0..train_set.labels.len();
        match self.recipe.sampling {
            Sampling::EveryWindow => clips
                .flat_map(|c| (0..train_set.variants[c][0].windows.len()).map(move |w| (c, w)))
                .collect(),
            Sampling::RandomCrop => clips.map(|c| (c, 0)).collect(),
        }
    }

    /// One epoch's samples in random order: each once, or drawn with replacement so that
    /// corpora are balanced (`Recipe::corpus_balance`).
    fn epoch_order(
        &mut self,
        samples: &[(usize, usize)],
        corpora: &[usize],
    ) -> Vec<(usize, usize)> {
        let alpha = self.recipe.corpus_balance;
        if alpha <= 0.0 {
            let mut order = samples.to_vec();
            order.shuffle(&mut self.rng);
            return order;
        }
        let mut counts = HashMap::<usize, f64>::new();
        for &(clip, _) in samples {
            *counts.entry(corpora[clip]).or_default() += 1.0;
        }
        let weights = samples
            .iter()
            .map(|&(clip, _)| counts[&corpora[clip]].powf(-alpha));
        let draw = rand::distr::weighted::WeightedIndex::new(weights).expect("positive weights");
        (0..samples.len())
            .map(|_| samples[draw.sample(&mut self.rng)])
            .collect()
    }

    /// One optimizer step on one batch, `progress` (0..1) into the run; returns its loss.
    fn step(
        &mut self,
        train_set: &TrainSet,
        batch: &[(usize, usize)],
        optimizer: &mut AdamW,
        progress: f64,
    ) -> Result<f64> {
        let labels: Vec<usize> = batch.iter().map(|&(c, _)| train_set.labels[c]).collect();
        let classes = self.card.labels.len();
        let mut targets = one_hot(&labels, classes, self.device)?;
        let corpora: Vec<usize> = batch.iter().map(|&(c, _)| train_set.corpora[c]).collect();
        let mut corpus_targets = one_hot(&corpora, self.corpus_weights.len(), self.device)?;
        if self.recipe.label_smoothing > 0.0 {
            // Spread over the model's own classes, so each target still sums to 1.
            let e = self.recipe.label_smoothing as f64;
            targets = ((targets * (1.0 - e))? + e / classes as f64)?;
        }
        let raw = self.batch_input(train_set, batch)?;
        let mut x = self.net.normalize(&raw)?;
        let n_mels = self.card.features.n_mels;
        if self.recipe.spec_augment
            && self.card.architecture.spec().input() == ModelInput::LogMelFrames
        {
            let frames = self.recipe.crop_frames;
            let mask = spec_augment_mask(
                batch.len(),
                n_mels,
                frames,
                self.recipe.time_mask_frames,
                &mut self.rng,
            );
            x = x.mul(&Tensor::from_vec(mask, x.shape(), self.device)?)?;
        }
        if self.recipe.mixup_alpha > 0.0 {
            let mut lambda = self.beta.sample(&mut self.rng) as f64;
            if self.recipe.mixup_major_first {
                lambda = lambda.max(1.0 - lambda);
            }
            let mut perm: Vec<u32> = (0..batch.len() as u32).collect();
            perm.shuffle(&mut self.rng);
            let perm = Tensor::from_vec(perm, batch.len(), self.device)?;
            x = ((&x * lambda)? + (x.index_select(&perm, 0)? * (1.0 - lambda))?)?;
            targets = ((&targets * lambda)? + (targets.index_select(&perm, 0)? * (1.0 - lambda))?)?;
            corpus_targets = ((&corpus_targets * lambda)?
                + (corpus_targets.index_select(&perm, 0)? * (1.0 - lambda))?)?;
        }
        if self.recipe.corpus_adversary <= 0.0 {
            let logits = self.net.forward_normalized(&x, true)?;
            let loss = soft_cross_entropy(&logits, &targets, &self.class_weights)?;
            optimizer.backward_step(&loss)?;
            return Ok(loss.to_scalar::<f32>()? as f64);
        }
        let Some((embedding, logits)) = self.net.embed_and_classify(&x, true)? else {
            anyhow::bail!(
                "corpus_adversary: the {} network exposes no embedding",
                self.card.kind()
            );
        };
        let emotion = soft_cross_entropy(&logits, &targets, &self.class_weights)?;
        if self.adversary.is_none() {
            self.adversary = Some(CorpusAdversary::new(
                embedding.dim(1)?,
                &self.corpus_weights,
                self.recipe.corpus_adversary as f64,
                self.recipe.learning_rate,
                self.device,
            )?);
        }
        let adversary = self.adversary.as_mut().expect("built above");
        let loss = (&emotion + adversary.loss(&embedding, &corpus_targets, progress)?)?;
        let grads = loss.backward()?;
        optimizer.step(&grads)?;
        adversary.step(&grads, optimizer.learning_rate())?;
        // The emotion loss alone, comparable with runs without the adversary.
        Ok(emotion.to_scalar::<f32>()? as f64)
    }

    /// The raw network input of a batch: a random variant of each clip, as a window vector
    /// or a random crop of log-mel frames (mel-shifted at random, per the recipe).
    fn batch_input(&mut self, train_set: &TrainSet, batch: &[(usize, usize)]) -> Result<Tensor> {
        let recipe = self.recipe;
        let n_mels = self.card.features.n_mels;
        let top_db = self.card.features.top_db.unwrap_or(80.0);
        let mut flat = Vec::new();
        for &(c, w) in batch {
            let variants = train_set.variants[c];
            let pick = if self.rng.random_bool(recipe.original_prob) {
                0
            } else {
                self.rng.random_range(0..variants.len())
            };
            let clip = &variants[pick];
            match recipe.sampling {
                Sampling::EveryWindow => {
                    flat.extend_from_slice(&clip.windows[w.min(clip.windows.len() - 1)].values)
                }
                Sampling::RandomCrop => {
                    let mut window = crop_window_padded(
                        clip,
                        n_mels,
                        recipe.crop_frames,
                        top_db,
                        recipe.pad_with_floor,
                        &mut self.rng,
                    );
                    // The earlier speech of the window's call goes through the same
                    // feature-space augmentations as the window (same voice, same line).
                    let mut earlier = train_set
                        .adaptation
                        .and_then(|a| a.earlier_speech(c, pick, &mut self.rng));
                    if recipe.mel_shift_bands > 0 && self.rng.random_bool(recipe.mel_shift_prob) {
                        let max = recipe.mel_shift_bands as i64;
                        let shift = self.rng.random_range(-max..=max) as isize;
                        shift_mel(&mut window, n_mels, shift);
                        if let Some((mean, _)) = earlier.as_mut() {
                            shift_mel(mean, n_mels, shift);
                        }
                    }
                    if recipe.colour_prob > 0.0 && self.rng.random_bool(recipe.colour_prob) {
                        let tilt = recipe.colour_tilt_db;
                        let tilt = self.rng.random_range(-tilt..=tilt);
                        let (from, slope) = if self.rng.random_bool(0.5) {
                            (
                                self.rng.random_range(n_mels / 2..n_mels),
                                self.rng.random_range(0.0..1.0),
                            )
                        } else {
                            (n_mels, 0.0)
                        };
                        colour(&mut window, n_mels, tilt, from, slope);
                        if let Some((mean, _)) = earlier.as_mut() {
                            colour(mean, n_mels, tilt, from, slope);
                        }
                    }
                    if let Some(adaptation) = train_set.adaptation {
                        adaptation.adapt(&mut window, earlier);
                    }
                    flat.extend(window);
                }
            }
        }
        Ok(match recipe.sampling {
            Sampling::EveryWindow => {
                let width = flat.len() / batch.len();
                Tensor::from_vec(flat, (batch.len(), width), self.device)?
            }
            Sampling::RandomCrop => {
                Tensor::from_vec(flat, (batch.len(), recipe.crop_frames, n_mels), self.device)?
            }
        })
    }
}

#[cfg(test)]
#[path = "train_tests.rs"]
mod tests;
