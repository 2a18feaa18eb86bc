//! `sentio-train`: trains the seed and log-mel models on speaker-independent splits of
//! RAVDESS, CREMA-D, TESS and SAVEE, evaluates them on the test speakers (clean and after an
//! 8 kHz mu-law round trip), writes model directories and `EVAL.md`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use sentio::FeatureConfig;
use sentio::model::logmel::InputNorm;
use sentio::model::{LABELS, ModelCard, ModelKind, Normalization};
use sentio_train::cache::{CachedClip, Variant, prepare};
use sentio_train::data::{Clip, Dataset, SpeakerSplit, Split, scan};
use sentio_train::eval::{Confusion, Summary, argmax, predict_clips};
use sentio_train::normalization;
use sentio_train::report::{confusion_png, confusion_table, summary_table};
use sentio_train::train::{TrainConfig, TrainSet, Trained, train};

#[derive(Parser, Debug)]
#[command(
    name = "sentio-train",
    version,
    about = "Train Sentio's speech-emotion models"
)]
struct Args {
    /// A folder holding RAVDESS/, CREMA-D/, TESS/ and SAVEE/ (as ../shared/data/ser does).
    #[arg(long)]
    data: Option<PathBuf>,
    /// RAVDESS speech release (Actor_NN/ folders).
    #[arg(long)]
    ravdess: Option<PathBuf>,
    /// CREMA-D AudioWAV folder (or its parent).
    #[arg(long)]
    crema: Option<PathBuf>,
    /// TESS release folder.
    #[arg(long)]
    tess: Option<PathBuf>,
    /// SAVEE release folder.
    #[arg(long)]
    savee: Option<PathBuf>,
    /// Models to train, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "logmel,seed")]
    models: Vec<String>,
    #[arg(long, default_value_t = 40)]
    epochs_logmel: usize,
    #[arg(long, default_value_t = 20)]
    epochs_seed: usize,
    /// Seed for initialization, data order, augmentation, dropout and masks.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Where model directories (models/<kind>/, models/default/) and EVAL.md go.
    #[arg(long, default_value = "models")]
    out: PathBuf,
    /// Use at most this many clips per dataset and split (quick smoke runs).
    #[arg(long)]
    limit: Option<usize>,
    /// Mixup alpha for the log-mel model (0 disables).
    #[arg(long, default_value_t = 0.3)]
    mixup: f32,
    /// Disable SpecAugment for the log-mel model.
    #[arg(long)]
    no_spec_augment: bool,
    /// Peak learning rate of the log-mel model.
    #[arg(long, default_value_t = 3e-3)]
    lr_logmel: f64,
    /// What each log-mel window has removed before band standardization.
    #[arg(long, value_enum, default_value = "level")]
    input_norm: InputNormArg,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum InputNormArg {
    Level,
    BandMean,
}

fn base_card(kind: ModelKind) -> ModelCard {
    let (id, features) = match kind {
        ModelKind::Logmel => ("sentio-logmel", FeatureConfig::streaming_16k()),
        ModelKind::Seed => ("sentio-seed", FeatureConfig::default()),
    };
    ModelCard {
        id: format!("{id}-{}", env!("CARGO_PKG_VERSION")),
        kind,
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
        features,
        window_ms: 2000,
        hop_ms: 1000,
        min_window_ms: 500,
        max_window_ms: 8000,
        normalization: Normalization::default(),
        architecture: serde_json::Value::Null,
        training: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
        license: "CC BY-NC-SA 4.0 (weights trained on RAVDESS CC BY-NC-SA 4.0, CREMA-D ODbL 1.0/DbCL 1.0, TESS CC BY-NC-ND 4.0, SAVEE research use); code Apache-2.0".into(),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = sentio::model::parse_device(&args.device)?;
    let started = Instant::now();
    let mut sources = Vec::new();
    for (dataset, explicit, folder) in [
        (Dataset::Ravdess, &args.ravdess, "RAVDESS"),
        (Dataset::Crema, &args.crema, "CREMA-D"),
        (Dataset::Tess, &args.tess, "TESS"),
        (Dataset::Savee, &args.savee, "SAVEE"),
    ] {
        let dir = explicit
            .clone()
            .or_else(|| args.data.as_ref().map(|d| d.join(folder)));
        if let Some(dir) = dir.filter(|d| d.exists()) {
            sources.push((dataset, dir));
        }
    }
    anyhow::ensure!(
        !sources.is_empty(),
        "no data: pass --data DIR or --ravdess/--crema/--tess/--savee"
    );
    let split = SpeakerSplit::embedded();
    let mut clips: Vec<Clip> = Vec::new();
    for (dataset, dir) in &sources {
        let found = scan(*dataset, dir).with_context(|| format!("scanning {}", dir.display()))?;
        eprintln!(
            "{}: {} clips ({} skipped) in {}",
            dataset.name(),
            found.clips.len(),
            found.skipped,
            dir.display()
        );
        clips.extend(found.clips);
    }
    let pick = |s: Split| -> Vec<Clip> {
        let mut chosen: Vec<Clip> = Vec::new();
        for dataset in Dataset::ALL {
            let of: Vec<Clip> = clips
                .iter()
                .filter(|c| c.dataset == dataset && split.split_of(c) == s)
                .cloned()
                .collect();
            // An even spread, not the first N, when limiting.
            let step = args.limit.map_or(1, |l| of.len().div_ceil(l.max(1)).max(1));
            chosen.extend(of.into_iter().step_by(step));
        }
        chosen
    };
    let (train_clips, val_clips, test_clips) =
        (pick(Split::Train), pick(Split::Val), pick(Split::Test));
    eprintln!(
        "clips: {} train, {} validation, {} test",
        train_clips.len(),
        val_clips.len(),
        test_clips.len()
    );

    let mut report = String::new();
    let mut winner: Option<(f64, PathBuf)> = None;
    for name in &args.models {
        let kind = match name.as_str() {
            "logmel" => ModelKind::Logmel,
            "seed" => ModelKind::Seed,
            other => anyhow::bail!("unknown model {other:?}: expected logmel or seed"),
        };
        let epochs = if kind == ModelKind::Logmel {
            args.epochs_logmel
        } else {
            args.epochs_seed
        };
        let (section, val_uar, dir) = run_model(
            kind,
            epochs,
            &args,
            &device,
            &train_clips,
            &val_clips,
            &test_clips,
        )?;
        report.push_str(&section);
        if winner.as_ref().is_none_or(|(best, _)| val_uar > *best) {
            winner = Some((val_uar, dir));
        }
    }
    if let Some((val_uar, dir)) = winner {
        let default = args.out.join("default");
        std::fs::create_dir_all(&default)?;
        for file in ["model.json", "model.safetensors"] {
            std::fs::copy(dir.join(file), default.join(file))?;
        }
        report = format!(
            "Shipped as `models/default/`: **{}** (the higher validation-speaker UAR, {val_uar:.3}; test speakers played no part in the choice).\n\n{report}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let header = format!(
        "# Evaluation of Sentio's emotion models\n\nProduced by `{command}` in {:.1} minutes on {} ({}).\nSpeaker-independent split: `training/splits.json` (train {} clips, validation {}, test {}). Clip decisions average the probabilities of the clip's 2 s windows (hop 1 s), exactly as the server does. UAR = unweighted average recall over the classes present.\n\n",
        started.elapsed().as_secs_f64() / 60.0,
        args.device,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        train_clips.len(),
        val_clips.len(),
        test_clips.len()
    );
    let path = args.out.join("default").join("EVAL.md");
    std::fs::write(&path, header + &report)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len}")
            .expect("template"),
    );
    bar.set_prefix(what.to_string());
    bar
}

#[allow(clippy::too_many_arguments)]
fn run_model(
    kind: ModelKind,
    epochs: usize,
    args: &Args,
    device: &candle_core::Device,
    train_clips: &[Clip],
    val_clips: &[Clip],
    test_clips: &[Clip],
) -> Result<(String, f64, PathBuf)> {
    let started = Instant::now();
    let mut card = base_card(kind);
    if kind == ModelKind::Logmel {
        let norm = match args.input_norm {
            InputNormArg::Level => InputNorm::Level,
            InputNormArg::BandMean => InputNorm::BandMean,
        };
        card.architecture = serde_json::json!({
            "input_norm": norm,
            "blocks": sentio::model::logmel::BLOCKS.iter().map(|(c, k, p)| serde_json::json!({"channels": c, "kernel": k, "max_pool_2": p})).collect::<Vec<_>>(),
            "pooling": "mean and max over time", "dropout": sentio::model::LOGMEL_DROPOUT,
        });
    }
    let variants = Variant::for_training(kind);
    let progress = bar(
        train_clips.len() + val_clips.len() + test_clips.len(),
        &format!("{kind:?} features"),
    );
    let train_cache = prepare(&card, train_clips, &variants, args.seed, &progress)?;
    let val_cache = prepare(&card, val_clips, &[Variant::Original], args.seed, &progress)?;
    let test_cache = prepare(
        &card,
        test_clips,
        &[Variant::Original, Variant::MuLaw8k],
        args.seed,
        &progress,
    )?;
    progress.finish_and_clear();
    let prep_minutes = started.elapsed().as_secs_f64() / 60.0;
    eprintln!("{kind:?}: features ready in {prep_minutes:.1} min");

    let config = TrainConfig {
        epochs,
        batch_size: 64,
        learning_rate: if kind == ModelKind::Logmel {
            args.lr_logmel
        } else {
            1e-3
        },
        weight_decay: if kind == ModelKind::Logmel { 1e-2 } else { 0.0 },
        seed: args.seed,
        crop_frames: 197,
        mixup_alpha: if kind == ModelKind::Logmel {
            args.mixup
        } else {
            0.0
        },
        spec_augment: kind == ModelKind::Logmel && !args.no_spec_augment,
    };
    card.normalization = normalization::fit(&card, &train_cache, config.crop_frames, args.seed);
    let train_set = TrainSet {
        labels: train_clips.iter().map(|c| c.label).collect(),
        variants: train_cache.iter().map(|v| v.as_slice()).collect(),
    };
    let val: Vec<&CachedClip> = val_cache.iter().map(|v| &v[0]).collect();
    let val_labels: Vec<usize> = val_clips.iter().map(|c| c.label).collect();
    let train_started = Instant::now();
    let Trained {
        varmap,
        net,
        history,
    } = train(&card, &config, &train_set, &val, &val_labels, device)?;
    let train_minutes = train_started.elapsed().as_secs_f64() / 60.0;
    let best_val = history.iter().map(|h| h.1).fold(0.0, f64::max);

    // Test speakers, clean and telephone.
    let dir = args.out.join(match kind {
        ModelKind::Logmel => "logmel",
        ModelKind::Seed => "seed",
    });
    std::fs::create_dir_all(&dir)?;
    let labels: Vec<usize> = test_clips.iter().map(|c| c.label).collect();
    let mut rows = Vec::new();
    let mut metrics = serde_json::Map::new();
    let mut section = format!("## `{kind:?}` model\n\n");
    for (v, condition) in [(0usize, "clean"), (1, "8 kHz mu-law")] {
        let cached: Vec<&CachedClip> = test_cache.iter().map(|c| &c[v]).collect();
        let probs = predict_clips(&net, device, &cached, kind == ModelKind::Seed)?;
        let predictions: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
        let all = Confusion::from_predictions(&labels, &predictions);
        rows.push((format!("all test speakers, {condition}"), Summary::of(&all)));
        metrics.insert(
            format!("test_{}", condition.replace(' ', "_")),
            serde_json::to_value(Summary::of(&all))?,
        );
        let slug = if v == 0 { "clean" } else { "mulaw8k" };
        confusion_png(
            &all,
            &format!("{kind:?}, test speakers, {condition}"),
            &dir.join(format!("confusion_{slug}.png")),
        )?;
        section.push_str(&format!("Confusion matrix, all test speakers, {condition} (`models/{}/confusion_{slug}.png`):\n\n{}\n", dir.file_name().unwrap_or_default().to_string_lossy(), confusion_table(&all)));
        for dataset in Dataset::ALL {
            let idx: Vec<usize> = (0..test_clips.len())
                .filter(|&i| test_clips[i].dataset == dataset)
                .collect();
            if idx.is_empty() {
                continue;
            }
            let c = Confusion::from_predictions(
                &idx.iter().map(|&i| labels[i]).collect::<Vec<_>>(),
                &idx.iter().map(|&i| predictions[i]).collect::<Vec<_>>(),
            );
            rows.push((format!("{}, {condition}", dataset.name()), Summary::of(&c)));
            if v == 0 {
                section.push_str(&format!(
                    "{} test speakers, clean:\n\n{}\n",
                    dataset.name(),
                    confusion_table(&c)
                ));
            }
        }
    }
    section = format!(
        "{}\n{section}\nTraining: {epochs} epochs, {} clips x {} augmented variants, best validation UAR {best_val:.3}; features {prep_minutes:.1} min, training {train_minutes:.1} min.\n\n",
        summary_table(&rows),
        train_clips.len(),
        variants.len()
    );
    card.metrics = serde_json::Value::Object(metrics);
    card.metrics["validation_uar"] = serde_json::json!(best_val);
    card.training = serde_json::json!({
        "data": train_clips.iter().map(|c| c.dataset.name()).collect::<std::collections::BTreeSet<_>>(),
        "split": "training/splits.json",
        "train_clips": train_clips.len(), "validation_clips": val_clips.len(), "test_clips": test_clips.len(),
        "augmentation": variants.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>(),
        "config": config, "history": history, "minutes": train_minutes,
    });
    varmap.save(dir.join("model.safetensors"))?;
    std::fs::write(dir.join("model.json"), serde_json::to_string_pretty(&card)?)?;
    write_fixed_history(&dir, &history)?;
    Ok((section, best_val, dir))
}

fn write_fixed_history(dir: &Path, history: &[(f64, f64)]) -> Result<()> {
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
