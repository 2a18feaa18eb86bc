//! `sentio-train`: trains Sentio's emotion models on speaker-independent partitions of
//! RAVDESS, CREMA-D, TESS and SAVEE and evaluates them through the server's own clip path,
//! clean and over phone lines. Protocols: the fixed split (what ships), grouped k-fold over
//! speakers, leave one corpus out; `--evaluate DIR` scores an existing model directory.

// Training allocates and frees the same large activations every step: mimalloc reuses the
// pages where the system allocator returns them and faults them in again (half the time
// was system time without it).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use sentio::model::{Architecture, LABELS, ModelCard, Recipe};
use sentio_train::data::{Clip, Dataset, SpeakerSplit, scan, weights_license};
use sentio_train::protocol::{self, Partition, Protocol};
use sentio_train::run::{
    call_protocol, evaluate_dir, new_card, report_and_record, train_partition,
};
use sentio_train::train::TrainConfig;

/// Train and evaluate Sentio's speech-emotion models.
#[derive(Parser, Debug)]
#[command(version)]
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
    /// Architectures to train, comma separated (seed, logmel, cnn2d).
    #[arg(long, value_delimiter = ',', default_value = "cnn2d", value_parser = parse_architecture)]
    models: Vec<Architecture>,
    /// One architecture with hyper-parameters, as the card's JSON section, instead of
    /// `--models`: e.g. '{"kind": "logmel", "input_norm": "band_mean"}'.
    #[arg(long, value_parser = parse_architecture_json)]
    architecture: Option<Architecture>,
    /// Epochs (default: the architecture's recipe).
    #[arg(long)]
    epochs: Option<usize>,
    /// Seed for initialization, data order, augmentation, dropout and masks.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// How clips are partitioned by speaker.
    #[arg(long, value_enum, default_value = "split")]
    protocol: Protocol,
    /// Folds of `--protocol folds`.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed that deals speakers into folds (default: `--seed`), so one fold draw can be
    /// trained with several seeds and recipes compared on identical folds.
    #[arg(long)]
    fold_seed: Option<u64>,
    /// Run only these partitions of a multi-partition protocol (1-based), e.g. `--only 2,4`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<usize>,
    /// The classes to train (a subset of the eight, e.g. CREMA-D's six); clips of other
    /// classes are left out.
    #[arg(long, value_delimiter = ',', default_values_t = LABELS.map(String::from))]
    labels: Vec<String>,
    /// Where model directories (each with its EVAL.md) and protocol summaries go.
    #[arg(long, default_value = "models")]
    out: PathBuf,
    /// Score this model directory instead of training, on the fixed split's test speakers of
    /// the corpora it was trained on and every clip of the others given (unseen corpora),
    /// in the classes it knows; the report goes to DIR/EVAL.md.
    #[arg(long)]
    evaluate: Option<PathBuf>,
    /// Assemble these trained model directories into one ensemble model in `--out` (the
    /// mean of their distributions), instead of training.
    #[arg(long, value_delimiter = ',')]
    ensemble: Vec<PathBuf>,
    /// Assemble WIDEBAND,NARROWBAND model directories into one `by_band` model in `--out`
    /// (each window read by the narrowband model when nothing is above 4 kHz), instead of
    /// training.
    #[arg(long, value_delimiter = ',')]
    by_band: Vec<PathBuf>,
    /// Which speakers `--evaluate` scores: `test` (reported) or `val` (for choosing what
    /// ships, so that test speakers play no part in it; report in DIR/EVAL-validation.md).
    #[arg(long, value_enum, default_value = "test")]
    evaluate_on: EvaluateOn,
    /// With `--evaluate`: also write every clip's probabilities in every condition to this
    /// file, one JSON object per line.
    #[arg(long)]
    decisions_out: Option<PathBuf>,
    /// Use at most this many clips per corpus and part (quick smoke runs).
    #[arg(long)]
    limit: Option<usize>,
    /// Let calm's loss weight rise above neutral's like any rare class (the default), even
    /// if the recipe caps it.
    #[arg(long)]
    boost_calm: bool,
    /// Recipe fields to change, as JSON (applied before `--epochs`), e.g.
    /// '{"label_smoothing": 0, "augmentations": ["original", "noise"]}'.
    #[arg(long)]
    recipe: Option<String>,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EvaluateOn {
    Val,
    Test,
}

fn parse_architecture(kind: &str) -> Result<Architecture, String> {
    Architecture::default_of(kind).map_err(|e| e.to_string())
}

fn parse_architecture_json(json: &str) -> Result<Architecture, String> {
    serde_json::from_str(json).map_err(|e| format!("architecture: {e}"))
}

impl Args {
    fn recipe(&self, architecture: &Architecture) -> Result<TrainConfig> {
        let mut recipe: Recipe = architecture.spec().recipe();
        if let Some(json) = &self.recipe {
            recipe = recipe
                .with_overrides(json)
                .with_context(|| format!("--recipe {json}"))?;
        }
        if let Some(epochs) = self.epochs {
            recipe.epochs = epochs;
        }
        if self.boost_calm {
            recipe.cap_calm_weight = false;
        }
        Ok(TrainConfig {
            seed: self.seed,
            recipe,
        })
    }

    /// Every labelled clip of the corpora given.
    fn clips(&self) -> Result<Vec<Clip>> {
        let mut clips = Vec::new();
        for (dataset, explicit) in [
            (Dataset::Ravdess, &self.ravdess),
            (Dataset::Crema, &self.crema),
            (Dataset::Tess, &self.tess),
            (Dataset::Savee, &self.savee),
        ] {
            let dir = explicit
                .clone()
                .or_else(|| self.data.as_ref().map(|d| d.join(dataset.name())));
            let Some(dir) = dir.filter(|d| d.exists()) else {
                continue;
            };
            let found =
                scan(dataset, &dir).with_context(|| format!("scanning {}", dir.display()))?;
            eprintln!(
                "{}: {} clips ({} skipped) in {}",
                dataset.name(),
                found.clips.len(),
                found.skipped,
                dir.display()
            );
            clips.extend(
                found
                    .clips
                    .into_iter()
                    .filter(|c| self.labels.iter().any(|l| l == LABELS[c.label])),
            );
        }
        anyhow::ensure!(
            !clips.is_empty(),
            "no data: pass --data DIR or --ravdess/--crema/--tess/--savee"
        );
        Ok(clips)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.ensemble.is_empty() {
        sentio_train::ensemble::assemble_ensemble(&args.ensemble, &args.out)?;
        eprintln!("wrote {}", args.out.display());
        return Ok(());
    }
    if !args.by_band.is_empty() {
        sentio_train::ensemble::assemble_by_band(&args.by_band, &args.out)?;
        eprintln!("wrote {}", args.out.display());
        return Ok(());
    }
    if let Some(unknown) = args.labels.iter().find(|l| !LABELS.contains(&l.as_str())) {
        anyhow::bail!("--labels: {unknown} is not one of {}", LABELS.join(", "));
    }
    let device = sentio::model::parse_device(&args.device)?;
    let started = Instant::now();
    let clips = args.clips()?;
    let split = SpeakerSplit::embedded();
    let fixed = protocol::limit(protocol::fixed(&clips, &split), args.limit);
    if let Some(dir) = &args.evaluate {
        return evaluate_model(&args, dir, &clips, &fixed, &device, started);
    }
    let partitions: Vec<Partition> = match args.protocol {
        Protocol::Refit => vec![protocol::refit(&fixed)],
        Protocol::Split => vec![fixed],
        Protocol::Folds => protocol::folds(&clips, args.folds, args.fold_seed.unwrap_or(args.seed)),
        Protocol::Loco => protocol::leave_one_corpus_out(&clips, &split),
    };
    let architectures = match &args.architecture {
        Some(one) => vec![one.clone()],
        None => args.models.clone(),
    };
    for architecture in &architectures {
        let config = args.recipe(architecture)?;
        let mut rows = Vec::new();
        for (i, partition) in partitions.iter().enumerate() {
            if !args.only.is_empty() && !args.only.contains(&(i + 1)) {
                continue;
            }
            let partition = protocol::limit(partition.clone(), args.limit);
            let dir = args.out.join(
                format!("{}-{:?}-{}", architecture.name(), args.protocol, i + 1).to_lowercase(),
            );
            let corpora = partition.train.iter().map(|c| c.dataset).collect();
            let card = new_card(
                architecture.clone(),
                &weights_license(&corpora),
                &args.labels,
            );
            let outcome = train_partition(card, &config, &partition, &device, &dir)?;
            let (model, decisions) = evaluate_dir(&dir, &partition.test, &device)?;
            let mut tables = report_and_record(&dir, &partition.test, &decisions, true)?;
            tables += &call_protocol(&model, &partition.test, &decisions)?;
            let text = format!(
                "# `{}`, {}\n\nProduced by `{}`: features {:.1} min, training {:.1} min on {}, best validation UAR {:.3}. Train {} clips, validation {}, test {}.\n\n{tables}",
                architecture.name(),
                partition.name,
                command_line(),
                outcome.feature_minutes,
                outcome.train_minutes,
                args.device,
                outcome.best_val_uar,
                partition.train.len(),
                partition.val.len(),
                partition.test.len()
            );
            std::fs::write(dir.join("EVAL.md"), text)?;
            rows.push((
                partition.name.clone(),
                decisions,
                partition.test.clone(),
                outcome.best_val_uar,
            ));
            eprintln!("wrote {}", dir.join("EVAL.md").display());
        }
        let summary = sentio_train::report::protocol_summary(architecture, &rows);
        let path = args
            .out
            .join(format!("{}-{:?}.md", architecture.name(), args.protocol).to_lowercase());
        std::fs::write(
            &path,
            format!(
                "Produced by `{}` in {:.1} minutes.\n\n{summary}",
                command_line(),
                started.elapsed().as_secs_f64() / 60.0
            ),
        )?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `--evaluate DIR`: scores a saved model through the server's clip path and writes its
/// `EVAL.md` (test speakers of the corpora it was trained on, every clip of the others) or
/// `EVAL-validation.md`.
fn evaluate_model(
    args: &Args,
    dir: &std::path::Path,
    clips: &[Clip],
    fixed: &Partition,
    device: &candle_core::Device,
    started: Instant,
) -> Result<()> {
    let card = ModelCard::from_json(&std::fs::read_to_string(dir.join("model.json"))?)?;
    let seen: BTreeSet<String> = card.training_data().into_iter().collect();
    let known = |c: &Clip| card.labels.iter().any(|l| l == LABELS[c.label]);
    let unseen = |c: &Clip| !seen.is_empty() && !seen.contains(c.dataset.name());
    let (clips, who, file): (Vec<Clip>, _, _) = match args.evaluate_on {
        EvaluateOn::Test => (
            (fixed.test.iter().filter(|c| !unseen(c)))
                .chain(clips.iter().filter(|c| unseen(c)))
                .filter(|c| known(c))
                .cloned()
                .collect(),
            "Test speakers of the corpora it was trained on, and every clip of the others,",
            "EVAL.md",
        ),
        EvaluateOn::Val => (
            fixed.val.iter().filter(|c| known(c)).cloned().collect(),
            "Validation speakers",
            "EVAL-validation.md",
        ),
    };
    let clips = &clips;
    let (model, decisions) = evaluate_dir(dir, clips, device)?;
    if let Some(path) = &args.decisions_out {
        sentio_train::evaluate::write_decisions(path, clips, &decisions)?;
    }
    // Only test figures go into the card's metrics.
    let mut tables =
        report_and_record(dir, clips, &decisions, args.evaluate_on == EvaluateOn::Test)?;
    tables += &call_protocol(&model, clips, &decisions)?;
    let conditions: Vec<_> = decisions.iter().map(|d| d.condition).collect();
    tables += &sentio_train::routing::routing_section(&model, clips, &conditions)?;
    let text = format!(
        "# Evaluation of `{}`\n\nProduced by `{}` in {:.1} minutes. {who} by `training/splits.json` ({} clips), each clip through `sentio::classify::classify_audio` (the server's clip path: mean over speech windows).\n\n{tables}",
        model.card.id,
        command_line(),
        started.elapsed().as_secs_f64() / 60.0,
        clips.len()
    );
    std::fs::write(dir.join(file), text)?;
    eprintln!("wrote {}", dir.join(file).display());
    Ok(())
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
