//! `sentio-train --ensemble`: several trained model directories as one model, whose
//! members share one front end and whose probabilities are averaged.

use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::Device;
use sentio::model::{Architecture, Model, ModelCard, Normalization};

/// Writes an ensemble of trained model directories to `out`: one card whose architecture
/// lists the members (with their statistics), and their weights under `member<i>.`.
pub fn assemble_ensemble(dirs: &[PathBuf], out: &Path) -> Result<()> {
    use sentio::model::ensemble::{EnsembleConfig, Member};
    anyhow::ensure!(
        dirs.len() >= 2,
        "an ensemble needs at least two model directories"
    );
    let mut cards = Vec::new();
    let mut weights = std::collections::HashMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        let card = ModelCard::from_json(&std::fs::read_to_string(dir.join("model.json"))?)?;
        let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)?;
        weights.extend(
            tensors
                .into_iter()
                .map(|(k, v)| (format!("member{i}.{k}"), v)),
        );
        cards.push(card);
    }
    let first = &cards[0];
    for card in &cards[1..] {
        anyhow::ensure!(
            card.features == first.features && card.labels == first.labels,
            "{} and {} differ in features or labels: an ensemble shares one front end",
            first.id,
            card.id
        );
    }
    let members = cards
        .iter()
        .map(|c| Member {
            architecture: c.architecture.clone(),
            normalization: c.normalization.clone(),
        })
        .collect();
    let card = ModelCard {
        id: format!("sentio-ensemble-{}", env!("CARGO_PKG_VERSION")),
        architecture: Architecture::Ensemble(EnsembleConfig { members }),
        normalization: Normalization::default(),
        training: serde_json::json!({
            "members": cards.iter().map(|c| serde_json::json!({"id": c.id, "training": c.training})).collect::<Vec<_>>(),
        }),
        metrics: serde_json::Value::Null,
        ..first.clone()
    };
    card.validate()?;
    std::fs::create_dir_all(out)?;
    candle_core::safetensors::save(&weights, out.join("model.safetensors"))?;
    std::fs::write(out.join("model.json"), serde_json::to_string_pretty(&card)?)?;
    // It must load as a model.
    Model::load_dir(out, &Device::Cpu)?;
    Ok(())
}
