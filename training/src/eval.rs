//! Clip-level metrics, and the fast per-epoch validation over cached windows.
//! Metrics: accuracy, unweighted average recall (UAR), per-class recall, confusion matrix.

use anyhow::Result;
use candle_core::{Device, Tensor};
use sentio::model::{LABELS, ModelInput, Network, WindowInput};
use serde::Serialize;

use crate::cache::CachedClip;

/// Mean window probabilities of each clip over all its windows, batching windows of equal
/// length: the fast check of every epoch. Reported figures come from `evaluate`, which
/// runs the server's own clip path.
pub fn predict_clips(
    net: &dyn Network,
    input: ModelInput,
    device: &Device,
    clips: &[&CachedClip],
) -> Result<Vec<Vec<f32>>> {
    let mut items: Vec<(usize, &WindowInput)> = Vec::new();
    for (c, clip) in clips.iter().enumerate() {
        items.extend(clip.windows.iter().map(|w| (c, w)));
    }
    items.sort_by_key(|(_, w)| w.frames);
    let mut sums = vec![Vec::new(); clips.len()];
    let mut counts = vec![0usize; clips.len()];
    for group in items.chunk_by(|a, b| a.1.frames == b.1.frames) {
        for batch in group.chunks(256) {
            let frames = batch[0].1.frames;
            let width = batch[0].1.values.len() / frames;
            let flat: Vec<f32> = batch
                .iter()
                .flat_map(|(_, w)| w.values.iter().copied())
                .collect();
            let x = match input {
                ModelInput::ClipVector => Tensor::from_vec(flat, (batch.len(), width), device)?,
                ModelInput::LogMelFrames => {
                    Tensor::from_vec(flat, (batch.len(), frames, width), device)?
                }
            };
            let probs =
                candle_nn::ops::softmax_last_dim(&net.forward_t(&x, false)?)?.to_vec2::<f32>()?;
            for ((c, _), p) in batch.iter().zip(probs) {
                sums[*c].resize(p.len(), 0.0);
                sums[*c].iter_mut().zip(&p).for_each(|(s, v)| *s += v);
                counts[*c] += 1;
            }
        }
    }
    Ok(sums
        .into_iter()
        .zip(counts)
        .map(|(s, n)| s.into_iter().map(|v| v / n.max(1) as f32).collect())
        .collect())
}

pub fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// Counts of (true label, predicted label).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Confusion {
    pub counts: [[u32; 8]; 8],
}

impl Confusion {
    pub fn from_predictions(labels: &[usize], predictions: &[usize]) -> Self {
        let mut c = Confusion::default();
        for (&t, &p) in labels.iter().zip(predictions) {
            c.counts[t][p] += 1;
        }
        c
    }

    /// The 7-class view: calm rows and columns merged into neutral.
    pub fn calm_as_neutral(&self) -> Self {
        let mut c = self.clone();
        for t in 0..8 {
            c.counts[t][0] += c.counts[t][1];
            c.counts[t][1] = 0;
        }
        for p in 0..8 {
            c.counts[0][p] += c.counts[1][p];
            c.counts[1][p] = 0;
        }
        c
    }

    pub fn total(&self) -> u32 {
        self.counts.iter().flatten().sum()
    }

    pub fn support(&self, class: usize) -> u32 {
        self.counts[class].iter().sum()
    }

    /// Recall of each class that has examples.
    pub fn recalls(&self) -> Vec<Option<f64>> {
        (0..8)
            .map(|c| {
                let n = self.support(c);
                (n > 0).then(|| self.counts[c][c] as f64 / n as f64)
            })
            .collect()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: u32 = (0..8).map(|c| self.counts[c][c]).sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Unweighted average recall over the classes present.
    pub fn uar(&self) -> f64 {
        let recalls: Vec<f64> = self.recalls().into_iter().flatten().collect();
        recalls.iter().sum::<f64>() / recalls.len().max(1) as f64
    }
}

/// The summary a model card stores and EVAL.md prints.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub clips: u32,
    pub accuracy: f64,
    pub uar: f64,
    pub per_class_recall: std::collections::BTreeMap<String, f64>,
}

impl Summary {
    pub fn of(confusion: &Confusion) -> Self {
        let per_class_recall = confusion
            .recalls()
            .into_iter()
            .enumerate()
            .filter_map(|(c, r)| r.map(|r| (LABELS[c].to_string(), r)))
            .collect();
        Summary {
            clips: confusion.total(),
            accuracy: confusion.accuracy(),
            uar: confusion.uar(),
            per_class_recall,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uar_averages_recall_over_present_classes() {
        let labels = [0, 0, 0, 0, 4, 4];
        let preds = [0, 0, 0, 4, 4, 0];
        let c = Confusion::from_predictions(&labels, &preds);
        assert!((c.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        assert!((c.uar() - (0.75 + 0.5) / 2.0).abs() < 1e-12);
        assert_eq!(c.recalls()[1], None);
    }
}
