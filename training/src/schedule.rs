//! Learning-rate schedules (`Recipe::schedule`).

use candle_nn::{AdamW, Optimizer};

/// Learning-rate factor: linear warm-up, then a cosine from 1 to 0 over the whole run.
pub fn warmup_cosine(step: usize, warm_steps: usize, total_steps: usize) -> f64 {
    let progress = step as f64 / total_steps as f64;
    let warm = ((step + 1) as f64 / warm_steps as f64).min(1.0);
    warm * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Keras's ReduceLROnPlateau(factor 0.4, patience 2, min_lr 1e-7), on validation loss.
pub fn reduce_on_plateau(optimizer: &mut AdamW, plateau: &mut (f64, usize), val_loss: f64) {
    if val_loss < plateau.0 {
        *plateau = (val_loss, 0);
    } else {
        plateau.1 += 1;
        if plateau.1 >= 2 {
            optimizer.set_learning_rate((optimizer.learning_rate() * 0.4).max(1e-7));
            plateau.1 = 0;
        }
    }
}
