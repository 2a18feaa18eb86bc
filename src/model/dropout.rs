//! Dropout with its own seeded generator: candle's CPU RNG cannot be seeded, and training
//! must be reproducible for a given seed.

use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{Result, Tensor};

#[derive(Debug)]
pub struct SeededDropout {
    p: f32,
    state: AtomicU64,
}

/// splitmix64: a small, well-mixed counter-based generator.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Clone for SeededDropout {
    fn clone(&self) -> Self {
        Self {
            p: self.p,
            state: AtomicU64::new(self.state.load(Ordering::Relaxed)),
        }
    }
}

impl SeededDropout {
    pub fn new(p: f32) -> Self {
        Self {
            p,
            state: AtomicU64::new(0),
        }
    }

    pub fn set_seed(&self, seed: u64) {
        self.state.store(seed, Ordering::Relaxed);
    }

    /// Zeroes each value with probability p and scales the rest by 1 / (1 - p) in training;
    /// the identity otherwise.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p <= 0.0 {
            return Ok(x.clone());
        }
        let base = self
            .state
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x2545_F491_4F6C_DD1D);
        let keep = 1.0 - self.p;
        let mask: Vec<f32> = (0..x.elem_count() as u64)
            .map(|i| {
                let u = (splitmix64(base ^ i) >> 40) as f32 / (1u64 << 24) as f32;
                if u < keep { 1.0 / keep } else { 0.0 }
            })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}
