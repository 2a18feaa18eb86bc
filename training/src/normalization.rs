//! Standardization statistics, fitted on the training speakers only and stored in the
//! model card: per band for the log-mel model (after removing each window's level, as the
//! network does), per feature for the seed model (the notebook's StandardScaler).

use rand::SeedableRng;
use rand::rngs::StdRng;
use sentio::model::logmel::remove_window_mean;
use sentio::model::{InputStatistics, ModelCard, Normalization};

use crate::batch::crop_window;
use crate::cache::CachedClip;

/// Mean and standard deviation per column of `rows` (each `width` wide).
fn column_stats<'a>(rows: impl Iterator<Item = &'a [f32]>, width: usize) -> Normalization {
    let mut sum = vec![0.0f64; width];
    let mut sq = vec![0.0f64; width];
    let mut n = 0usize;
    for row in rows {
        for (i, &v) in row.iter().enumerate() {
            sum[i] += v as f64;
            sq[i] += (v as f64) * (v as f64);
        }
        n += 1;
    }
    let n = n.max(1) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let std = sq
        .iter()
        .zip(&sum)
        .map(|(q, s)| {
            let var = (q / n - (s / n) * (s / n)).max(0.0);
            // A constant feature is left unscaled, as scikit-learn does.
            if var.sqrt() < 1e-6 {
                1.0
            } else {
                var.sqrt() as f32
            }
        })
        .collect();
    Normalization { mean, std }
}

pub fn fit(
    card: &ModelCard,
    train: &[Vec<CachedClip>],
    crop_frames: usize,
    seed: u64,
) -> Normalization {
    match card.architecture.spec().statistics() {
        InputStatistics::None => Normalization::default(),
        InputStatistics::PerFeature => {
            let rows = train
                .iter()
                .flatten()
                .flat_map(|c| c.windows.iter().map(|w| w.values.as_slice()));
            column_stats(rows, sentio::model::seed::SEED_FEATURES)
        }
        InputStatistics::PerBand(norm) => {
            let n_mels = card.features.n_mels;
            let top_db = card.features.top_db.unwrap_or(80.0);
            let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED);
            let crops: Vec<Vec<f32>> = train
                .iter()
                .map(|variants| {
                    let crop = crop_window(&variants[0], n_mels, crop_frames, top_db, &mut rng);
                    remove_window_mean(&crop, n_mels, norm)
                })
                .collect();
            column_stats(crops.iter().flat_map(|c| c.chunks_exact(n_mels)), n_mels)
        }
    }
}
