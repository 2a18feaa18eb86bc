//! One training run on one partition, and the evaluation of a saved model directory: the
//! steps every protocol of `sentio-train` is made of.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use sentio::model::{Architecture, LABELS, Model, ModelCard, Normalization, Recipe};

use crate::cache::{CachedClip, prepare};
use crate::data::{Clip, Dataset};
use crate::eval::Summary;
use crate::evaluate::{Condition, Decisions, evaluate, evaluate_calls};
use crate::protocol::Partition;
use crate::report::{confusion_png, confusion_table, summary_table};
use crate::train::{TrainConfig, TrainSet, Trained, train};
use crate::{normalization, progress_bar};

/// A trained model saved to `dir`, with what the run measured.
pub struct RunOutcome {
    pub dir: PathBuf,
    pub best_val_uar: f64,
    pub feature_minutes: f64,
    pub train_minutes: f64,
    pub history: Vec<(f64, f64)>,
}

/// The card of a fresh model of `architecture`, before training fills its statistics.
pub fn new_card(architecture: Architecture, license: &str, labels: &[String]) -> ModelCard {
    let features = architecture.spec().default_features();
    ModelCard {
        id: format!(
            "sentio-{}-{}",
            architecture.name(),
            env!("CARGO_PKG_VERSION")
        ),
        labels: labels.to_vec(),
        features,
        window_ms: 2000,
        hop_ms: 1000,
        min_window_ms: 500,
        max_window_ms: 8000,
        normalization: Normalization::default(),
        architecture,
        training: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
        license: license.into(),
        adaptation: None,
    }
}

/// Trains `card`'s architecture on `partition.train`, picks the epoch on `partition.val`,
/// and saves `model.json`, `model.safetensors` and `history.tsv` into `dir`.
pub fn train_partition(
    mut card: ModelCard,
    config: &TrainConfig,
    partition: &Partition,
    device: &Device,
    dir: &Path,
) -> Result<RunOutcome> {
    let started = Instant::now();
    std::fs::create_dir_all(dir)?;
    let recipe: &Recipe = &config.recipe;
    let progress = progress_bar(
        partition.train.len() + partition.val.len(),
        &format!("{} features", card.kind()),
    );
    // Statistics need the card's architecture only, not its (still empty) normalization.
    let train_cache = prepare(
        &card,
        &partition.train,
        &recipe.augmentations,
        recipe.narrowband,
        config.seed,
        &progress,
    )?;
    let val_cache = prepare(
        &card,
        &partition.val,
        &[sentio::model::Augmentation::Original],
        recipe.narrowband,
        config.seed,
        &progress,
    )?;
    progress.finish_and_clear();
    let feature_minutes = started.elapsed().as_secs_f64() / 60.0;
    eprintln!(
        "{}: features ready in {feature_minutes:.1} min",
        card.kind()
    );
    card.normalization = match &recipe.init_from {
        // Fine-tuning keeps the statistics the weights were trained with.
        Some(init) => {
            let init = ModelCard::from_json(&std::fs::read_to_string(init.join("model.json"))?)?;
            anyhow::ensure!(
                init.architecture == card.architecture && init.labels == card.labels,
                "init_from: {} has another architecture or labels",
                init.id
            );
            init.normalization
        }
        None => normalization::fit(&card, &train_cache, recipe.crop_frames, config.seed),
    };
    let adaptation = recipe.speaker_adaptation.then(|| {
        crate::adapt::SpeakerWindows::new(
            &partition.train,
            &train_cache,
            card.features.n_mels,
            recipe,
        )
    });
    card.adaptation = adaptation.as_ref().map(|a| a.config.clone());
    let train_set = TrainSet {
        labels: output_indices(&card, &partition.train)?,
        corpora: partition
            .train
            .iter()
            .map(|c| {
                Dataset::ALL
                    .iter()
                    .position(|&d| d == c.dataset)
                    .unwrap_or(0)
            })
            .collect(),
        variants: train_cache.iter().map(|v| v.as_slice()).collect(),
        adaptation: adaptation.as_ref(),
    };
    let val: Vec<&CachedClip> = val_cache.iter().map(|v| &v[0]).collect();
    // An adapting model is validated as it will be tested: each speaker's clips as a call.
    let val_calls = card
        .adaptation
        .as_ref()
        .map(|a| crate::adapt::adapt_as_calls(a, &partition.val, &val, config.seed));
    let val: Vec<&CachedClip> = match &val_calls {
        Some(adapted) => adapted.iter().collect(),
        None => val,
    };
    let val_labels = output_indices(&card, &partition.val)?;
    let train_started = Instant::now();
    let Trained {
        varmap, history, ..
    } = train(
        &card,
        config,
        &train_set,
        &val,
        &val_labels,
        device,
        Some(&dir.join("checkpoint.safetensors")),
    )?;
    let train_minutes = train_started.elapsed().as_secs_f64() / 60.0;
    let best_val_uar = history.iter().map(|h| h.1).fold(0.0, f64::max);
    card.metrics = if partition.val.is_empty() {
        serde_json::json!({ "validation_uar": null, "note": "refit: validation speakers trained on" })
    } else {
        serde_json::json!({ "validation_uar": best_val_uar })
    };
    card.training = serde_json::json!({
        "data": partition.train.iter().map(|c| c.dataset.name()).collect::<BTreeSet<_>>(),
        "partition": partition.name,
        "train_clips": partition.train.len(), "validation_clips": partition.val.len(), "test_clips": partition.test.len(),
        "config": config, "history": history, "minutes": train_minutes,
        "mflop_per_window": card.architecture.spec().flops(&card, recipe.crop_frames) as f64 / 1e6,
    });
    varmap.save(dir.join("model.safetensors"))?;
    std::fs::write(dir.join("model.json"), serde_json::to_string_pretty(&card)?)?;
    let _ = std::fs::remove_file(dir.join("checkpoint.safetensors"));
    write_history(dir, &history)?;
    Ok(RunOutcome {
        dir: dir.to_path_buf(),
        best_val_uar,
        feature_minutes,
        train_minutes,
        history,
    })
}

/// Each clip's label as an index among the card's labels (the network's outputs).
fn output_indices(card: &ModelCard, clips: &[Clip]) -> Result<Vec<usize>> {
    clips
        .iter()
        .map(|c| {
            let label = LABELS[c.label];
            card.labels.iter().position(|l| l == label).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} is labelled {label}, not a label of the model",
                    c.path.display()
                )
            })
        })
        .collect()
}

/// A saved model's clip decisions on `clips` in every condition, through the server path.
pub fn evaluate_dir(
    dir: &Path,
    clips: &[Clip],
    device: &Device,
) -> Result<(Model, Vec<Decisions>)> {
    let model = Model::load_dir(dir, device)?;
    let progress = progress_bar(clips.len(), "evaluation");
    let decisions = evaluate(
        &model,
        clips,
        &Condition::ALL,
        sentio::pipeline::DEFAULT_SILENCE_DBFS,
        &progress,
    )?;
    progress.finish_and_clear();
    Ok((model, decisions))
}

/// For a model that adapts to its caller, `EVAL.md`'s call-level section: each speaker's
/// clips as one call (random order, seed 1), and each speaker's clips of one emotion as one
/// call, against the clip-by-clip `decisions`; empty for other models.
pub fn call_protocol(model: &Model, clips: &[Clip], decisions: &[Decisions]) -> Result<String> {
    if model.card.adaptation.is_none() {
        return Ok(String::new());
    }
    let started = Instant::now();
    let conditions: Vec<Condition> = decisions.iter().map(|d| d.condition).collect();
    let silence = sentio::pipeline::DEFAULT_SILENCE_DBFS;
    let mut scored = Vec::new();
    for calls in [
        crate::adapt::call_orders(clips, 1),
        crate::adapt::single_emotion_call_orders(clips, 1),
    ] {
        let progress = progress_bar(clips.len(), "calls");
        scored.push(evaluate_calls(
            model,
            clips,
            &conditions,
            silence,
            &calls,
            &progress,
        )?);
        progress.finish_and_clear();
    }
    Ok(format!(
        "\n## The call-level protocol\n\nThe model reads each window against the caller's running spectrum. Each speaker's clips, in a random order, are read as one call (the profile carried from clip to clip), and each clip is scored on its own windows; then each speaker's clips of one emotion as one call, the hard case (an angry caller's profile is angry). {:.1} min.\n\n{}",
        started.elapsed().as_secs_f64() / 60.0,
        crate::report::call_protocol_table(clips, decisions, &scored[0], &scored[1])
    ))
}

/// `EVAL.md`'s tables for one model (8 and 7 classes, per corpus and condition, confusion
/// matrices), the PNGs beside the model, and the test metrics written into its card.
pub fn report_and_record(
    dir: &Path,
    clips: &[Clip],
    decisions: &[Decisions],
    record: bool,
) -> Result<String> {
    let mut rows = Vec::new();
    let mut rows7 = Vec::new();
    let mut own_classes = Vec::new();
    let mut confusions = String::new();
    let card_path = dir.join("model.json");
    let mut card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&card_path)?)?;
    let sets = evaluated_sets(&ModelCard::from_json(&card.to_string())?, clips);
    for d in decisions {
        let condition = d.condition.name();
        for (name, set) in &sets {
            let confusion = d.confusion(clips, |c| set.contains(c));
            if confusion.total() == 0 {
                continue;
            }
            rows.push((format!("{name}, {condition}"), Summary::of(&confusion)));
            rows7.push((
                format!("{name}, {condition}"),
                Summary::of(&confusion.calm_as_neutral()),
            ));
            own_classes.push((
                format!("{name}, {condition}"),
                Summary::of(&d.confusion_within_own_classes(clips, |c| set.contains(c))),
            ));
            if matches!(set, Set::Headline(_)) {
                card["metrics"][format!("test_{}", d.condition.slug())] =
                    serde_json::to_value(Summary::of(&confusion))?;
                card["metrics"][format!("test_{}_7class", d.condition.slug())] =
                    serde_json::to_value(Summary::of(&confusion.calm_as_neutral()))?;
                let png = format!("confusion_{}.png", d.condition.slug());
                if record {
                    confusion_png(
                        &confusion,
                        &format!("test speakers, {condition}"),
                        &dir.join(&png),
                    )?;
                }
                confusions.push_str(&format!(
                    "Confusion matrix, all speakers, {condition} (`{png}`; {} clips had no speech window and count as uniform):\n\n{}\n",
                    d.silent,
                    confusion_table(&confusion)
                ));
            } else if d.condition == Condition::Clean && matches!(set, Set::Corpus(..)) {
                confusions.push_str(&format!(
                    "{name}, clean:\n\n{}\n",
                    confusion_table(&confusion)
                ));
            }
        }
    }
    if record {
        std::fs::write(&card_path, serde_json::to_string_pretty(&card)?)?;
    }
    Ok(format!(
        "8 classes:\n\n{}\n7-class view (calm merged into neutral, in truth and prediction):\n\n{}\nEach set decided among its own classes only (argmax over the labels its clips hold: a corpus without calm cannot be heard as calm), to tell a wrong label set from a wrong emotion:\n\n{}\n{confusions}",
        summary_table(&rows),
        summary_table(&rows7),
        summary_table(&own_classes)
    ))
}

/// A row of `EVAL.md`'s tables: which test clips it scores.
#[derive(Clone, Debug, PartialEq)]
enum Set {
    /// Clips of these corpora (those the model was trained on, or all): the card's metrics.
    Headline(BTreeSet<Dataset>),
    /// Clips of corpora the model never heard.
    Unseen(BTreeSet<Dataset>),
    Corpus(Dataset),
}

impl Set {
    fn contains(&self, clip: &Clip) -> bool {
        match self {
            Set::Headline(seen) => seen.contains(&clip.dataset),
            Set::Unseen(seen) => !seen.contains(&clip.dataset),
            Set::Corpus(d) => clip.dataset == *d,
        }
    }
}

/// The rows: all speakers (or, when the clips mix corpora the model was trained on with
/// others, the seen ones, then the unseen ones), then each corpus.
fn evaluated_sets(card: &ModelCard, clips: &[Clip]) -> Vec<(String, Set)> {
    let trained = card.training_data();
    let was_trained = |d: Dataset| trained.iter().any(|t| t == d.name());
    let mixed = clips.iter().any(|c| was_trained(c.dataset))
        && clips.iter().any(|c| !was_trained(c.dataset));
    let seen: BTreeSet<Dataset> = Dataset::ALL
        .into_iter()
        .filter(|&d| !mixed || was_trained(d))
        .collect();
    let mut sets = Vec::new();
    if mixed {
        sets.push((
            "seen corpora, new speakers".into(),
            Set::Headline(seen.clone()),
        ));
        sets.push(("unseen corpora".into(), Set::Unseen(seen)));
    } else {
        sets.push(("all speakers".into(), Set::Headline(seen)));
    }
    sets.extend(
        Dataset::ALL
            .into_iter()
            .map(|d| (d.name().to_string(), Set::Corpus(d))),
    );
    sets
}

fn write_history(dir: &Path, history: &[(f64, f64)]) -> Result<()> {
    let lines: Vec<String> = history
        .iter()
        .enumerate()
        .map(|(i, (l, u))| format!("{}\t{l:.5}\t{u:.5}", i + 1))
        .collect();
    std::fs::write(
        dir.join("history.tsv"),
        format!("epoch\ttrain_loss\tval_uar\n{}\n", lines.join("\n")),
    )?;
    Ok(())
}
