//! Models assembled from trained model directories, instead of trained: `sentio-train
//! --ensemble` (members' probabilities averaged) and `--by-band` (a wideband and a
//! narrowband model, each window read by one). Members share one front end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{Device, Tensor};
use sentio::model::by_band::ByBandConfig;
use sentio::model::ensemble::{EnsembleConfig, Member};
use sentio::model::{Architecture, Model, ModelCard, Normalization};

/// Where a narrowband window's bands are empty: an 8 kHz line stops at 4 kHz.
pub const NARROWBAND_CUTOFF_HZ: f32 = 4000.0;
/// How far below the loudest band those bands sit on a narrowband window. Measured on the
/// validation speakers (EXPERIMENTS E28): every phone-line window at least 70 dB, clean
/// windows 41 dB at the median, 65 at the 99th percentile.
pub const NARROWBAND_GAP_DB: f32 = 68.0;

/// Cards and weights of `dirs`, the weights renamed under `prefix(i)`; errors if they do
/// not share features and labels.
fn load_members(
    dirs: &[PathBuf],
    prefix: impl Fn(usize) -> String,
) -> Result<(Vec<ModelCard>, HashMap<String, Tensor>)> {
    let mut cards: Vec<ModelCard> = Vec::new();
    let mut weights = HashMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        let card = ModelCard::from_json(&std::fs::read_to_string(dir.join("model.json"))?)?;
        let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)?;
        weights.extend(
            tensors
                .into_iter()
                .map(|(k, v)| (format!("{}.{k}", prefix(i)), v)),
        );
        if let Some(first) = cards.first() {
            anyhow::ensure!(
                card.features == first.features && card.labels == first.labels,
                "{} and {} differ in features or labels: members share one front end",
                first.id,
                card.id
            );
        }
        cards.push(card);
    }
    Ok((cards, weights))
}

fn member(card: &ModelCard) -> Member {
    Member {
        architecture: card.architecture.clone(),
        normalization: card.normalization.clone(),
    }
}

/// Writes the assembled card and weights to `out` and checks they load as a model.
fn write(
    cards: &[ModelCard],
    weights: &HashMap<String, Tensor>,
    id: String,
    architecture: Architecture,
    out: &Path,
) -> Result<()> {
    let card = ModelCard {
        id,
        architecture,
        normalization: Normalization::default(),
        training: serde_json::json!({
            "members": cards.iter().map(|c| serde_json::json!({"id": c.id, "training": c.training})).collect::<Vec<_>>(),
        }),
        metrics: serde_json::Value::Null,
        ..cards[0].clone()
    };
    card.validate()?;
    std::fs::create_dir_all(out)?;
    candle_core::safetensors::save(weights, out.join("model.safetensors"))?;
    std::fs::write(out.join("model.json"), serde_json::to_string_pretty(&card)?)?;
    Model::load_dir(out, &Device::Cpu)?;
    Ok(())
}

/// Writes an ensemble of trained model directories to `out`: one card whose architecture
/// lists the members (with their statistics), and their weights under `member<i>.`.
pub fn assemble_ensemble(dirs: &[PathBuf], out: &Path) -> Result<()> {
    anyhow::ensure!(
        dirs.len() >= 2,
        "an ensemble needs at least two model directories"
    );
    let (cards, weights) = load_members(dirs, |i| format!("member{i}"))?;
    let members = cards.iter().map(member).collect();
    let id = format!("sentio-ensemble-{}", env!("CARGO_PKG_VERSION"));
    write(
        &cards,
        &weights,
        id,
        Architecture::Ensemble(EnsembleConfig { members }),
        out,
    )
}

/// Writes a `by_band` model to `out` from a wideband and a narrowband model directory
/// (the second trained with `narrowband: true`); weights under `wideband.`/`narrowband.`.
pub fn assemble_by_band(dirs: &[PathBuf], out: &Path) -> Result<()> {
    anyhow::ensure!(
        dirs.len() == 2,
        "--by-band takes two model directories: WIDEBAND,NARROWBAND"
    );
    let (cards, weights) = load_members(dirs, |i| ["wideband", "narrowband"][i].to_string())?;
    let id = format!("sentio-by-band-{}", env!("CARGO_PKG_VERSION"));
    let config = ByBandConfig {
        cutoff_hz: NARROWBAND_CUTOFF_HZ,
        gap_db: NARROWBAND_GAP_DB,
        wideband: Box::new(member(&cards[0])),
        narrowband: Box::new(member(&cards[1])),
    };
    write(&cards, &weights, id, Architecture::ByBand(config), out)
}
