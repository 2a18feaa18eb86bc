//! For a `by_band` model, `EVAL.md`'s check that each window reaches the member meant for
//! it: per listening condition, the share of windows read as narrowband and the spread of
//! the band gap the router decides on (clean speech should all be wideband, every phone
//! condition narrowband, with room on both sides of the threshold).

use anyhow::Result;
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use sentio::classify::prepare_clip;
use sentio::model::{Architecture, Model};

use crate::cache::load_clip;
use crate::data::Clip;
use crate::evaluate::Condition;

/// The section, or an empty string for a model that does not route.
pub fn routing_section(model: &Model, clips: &[Clip], conditions: &[Condition]) -> Result<String> {
    let Architecture::ByBand(config) = &model.card.architecture else {
        return Ok(String::new());
    };
    let router = config.router(&model.card);
    let card = &model.card;
    let sr = card.features.sr;
    let n_mels = card.features.n_mels;
    let silence = sentio::pipeline::DEFAULT_SILENCE_DBFS;
    // Per clip, per condition: the gap of each window the model reads (speech windows, cut
    // and featurized by the server's clip path).
    let per_clip: Vec<Vec<Vec<f32>>> = clips
        .par_iter()
        .map(|clip| {
            let y = load_clip(clip, sr)?;
            conditions
                .iter()
                .map(|c| {
                    let (windows, _) = prepare_clip(card, &c.apply(&y, sr)?, silence)?;
                    let mut gaps = Vec::new();
                    for w in windows.into_iter().filter_map(|w| w.input) {
                        let x = Tensor::from_vec(w.values, (1, w.frames, n_mels), &Device::Cpu)?;
                        gaps.extend(router.gaps(&x)?);
                    }
                    Ok(gaps)
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    let mut rows = String::new();
    for (i, c) in conditions.iter().enumerate() {
        let mut gaps: Vec<f32> = per_clip.iter().flat_map(|g| g[i].iter().copied()).collect();
        gaps.sort_by(f32::total_cmp);
        let narrow = gaps.iter().filter(|&&g| g > router.gap_db).count();
        let at = |q: f64| gaps.get(((gaps.len() - 1) as f64 * q) as usize).copied();
        let pct = |q| at(q).map_or("-".into(), |g: f32| format!("{g:.1}"));
        rows.push_str(&format!(
            "| {} | {} | {:.4} | {} | {} | {} | {} |\n",
            c.name(),
            gaps.len(),
            narrow as f64 / gaps.len().max(1) as f64,
            pct(0.0),
            pct(0.01),
            pct(0.99),
            pct(1.0)
        ));
    }
    Ok(format!(
        "\n## Routing (`by_band`)\n\nEach window is read by the narrowband member when, in its frames within 10 dB of its loudest, the loudest band above {} Hz is on average more than {} dB below the frame's loudest band (the gap). Every speech window the model reads, through the server's clip path:\n\n| condition | windows | read as narrowband | gap min (dB) | 1% | 99% | max |\n|---|---:|---:|---:|---:|---:|---:|\n{rows}",
        config.cutoff_hz, config.gap_db
    ))
}
