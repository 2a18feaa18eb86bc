//! A model for both kinds of line: each window goes to a wideband member or to a member
//! trained on phone-line audio only, by what the window itself holds. An 8 kHz line (any
//! G.711 call, whatever rate it is delivered at) has nothing above 4 kHz, so its log-mel
//! bands there sit at the window's floor, where wideband speech, and even the noise of a
//! quiet room, stays within a few tens of dB of the loudest band. Deciding from the window
//! rather than from the stream's declared rate also catches phone audio stored at 16 kHz,
//! and serves Classify, files and streams the same way. Only one member runs per window.
//! Assembled from two trained model directories (`sentio-train --by-band WIDE,NARROW`).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::architecture::{
    ArchitectureSpec, Inference, InputStatistics, ModelInput, Network, invalid_card,
};
use super::card::ModelCard;
use super::ensemble::Member;
use super::recipe::Recipe;

/// The card's `architecture` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByBandConfig {
    /// Bands wholly above this frequency are empty on a narrowband line.
    pub cutoff_hz: f32,
    /// A window is narrowband when, in its loud frames, the loudest band above the cutoff
    /// is on average more than this many dB below the frame's loudest band.
    pub gap_db: f32,
    /// Serves everything else (and is the recipe the card reports).
    pub wideband: Box<Member>,
    /// Trained with `narrowband: true` (every clip through a random phone line).
    pub narrowband: Box<Member>,
}

impl ByBandConfig {
    pub fn first_high_band(&self, card: &ModelCard) -> usize {
        first_band_above(&card.features, self.cutoff_hz)
    }

    /// What decides each window's member.
    pub fn router(&self, card: &ModelCard) -> Router {
        Router {
            first_high_band: self.first_high_band(card),
            gap_db: self.gap_db,
        }
    }
}

/// The first mel band whose lower edge is at or above `hz` (`n_mels` if none is).
pub fn first_band_above(features: &crate::FeatureConfig, hz: f32) -> usize {
    use crate::features::mel::{hz_to_mel, linspace, mel_to_hz};
    let points = linspace(
        hz_to_mel(features.fmin as f64),
        hz_to_mel(features.fmax_hz() as f64),
        features.n_mels + 2,
    );
    (0..features.n_mels)
        .find(|&k| mel_to_hz(points[k]) >= hz as f64)
        .unwrap_or(features.n_mels)
}

impl ArchitectureSpec for ByBandConfig {
    fn input(&self) -> ModelInput {
        ModelInput::LogMelFrames
    }

    fn validate(&self, card: &ModelCard) -> crate::Result<()> {
        for (name, member) in [
            ("wideband", &*self.wideband),
            ("narrowband", &*self.narrowband),
        ] {
            if member.architecture.spec().input() != ModelInput::LogMelFrames {
                return invalid_card(format!("architecture.{name} must read log-mel frames"));
            }
            member.architecture.spec().validate(&member.card(card))?;
        }
        if !card.normalization.mean.is_empty() {
            return invalid_card("normalization must be empty: each member carries its own");
        }
        if !(self.gap_db.is_finite() && self.gap_db > 0.0) {
            return invalid_card("architecture.gap_db must be positive");
        }
        let high = self.first_high_band(card);
        if high == 0 || high >= card.features.n_mels {
            return invalid_card(format!(
                "architecture.cutoff_hz {} leaves no band on one side (features.fmax {})",
                self.cutoff_hz,
                card.features.fmax_hz()
            ));
        }
        Ok(())
    }

    fn build(&self, card: &ModelCard, vb: VarBuilder) -> Result<Box<dyn Network>> {
        let wide = self.wideband.card(card);
        let narrow = self.narrowband.card(card);
        Ok(Box::new(ByBand {
            wideband: wide.architecture.spec().build(&wide, vb.pp("wideband"))?,
            narrowband: narrow
                .architecture
                .spec()
                .build(&narrow, vb.pp("narrowband"))?,
            router: self.router(card),
        }))
    }

    fn statistics(&self) -> InputStatistics {
        InputStatistics::None
    }

    fn recipe(&self) -> Recipe {
        self.wideband.architecture.spec().recipe()
    }

    /// One member runs per window: the costlier one bounds it.
    fn flops(&self, card: &ModelCard, frames: usize) -> u64 {
        [&*self.wideband, &*self.narrowband]
            .iter()
            .map(|m| {
                let member = m.card(card);
                member.architecture.spec().flops(&member, frames)
            })
            .max()
            .unwrap_or(0)
    }
}

/// Frames this close to a window's loudest (dB) are the ones its gap is measured on.
pub const LOUD_FRAME_DB: f32 = 10.0;

/// Decides which member reads each window.
#[derive(Clone, Copy, Debug)]
pub struct Router {
    pub first_high_band: usize,
    pub gap_db: f32,
}

impl Router {
    /// For each window of a (B, T, n_mels) log-mel dB batch: how far, in dB, the loudest
    /// band above the cutoff is below the loudest band, averaged over the window's loud
    /// frames (within [`LOUD_FRAME_DB`] of its peak). Quiet frames are left out because
    /// they sit at the window's floor in every band, wideband or not.
    pub fn gaps(&self, x: &Tensor) -> Result<Vec<f32>> {
        let n_mels = x.dim(2)?;
        let high = x
            .narrow(2, self.first_high_band, n_mels - self.first_high_band)?
            .max(2)?;
        let frame_peak = x.max(2)?;
        let window_peak = (frame_peak.max_keepdim(1)? - LOUD_FRAME_DB as f64)?;
        let loud = frame_peak.broadcast_ge(&window_peak)?.to_dtype(x.dtype())?;
        let gap = ((frame_peak - high)? * &loud)?.sum(1)?;
        (gap / loud.sum(1)?)?.to_vec1::<f32>()
    }

    /// For each window of a (B, T, n_mels) log-mel dB batch: whether it is narrowband.
    pub fn narrowband(&self, x: &Tensor) -> Result<Vec<bool>> {
        Ok(self.gaps(x)?.into_iter().map(|g| g > self.gap_db).collect())
    }

    /// Logits of every window from the member it belongs to, in the batch's order.
    fn route(
        &self,
        x: &Tensor,
        wideband: impl Fn(&Tensor) -> Result<Tensor>,
        narrowband: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let narrow = self.narrowband(x)?;
        let pick = |want: bool| -> Vec<u32> {
            (0..narrow.len() as u32)
                .filter(|&i| narrow[i as usize] == want)
                .collect()
        };
        let (wide_rows, narrow_rows) = (pick(false), pick(true));
        if narrow_rows.is_empty() {
            return wideband(x);
        }
        if wide_rows.is_empty() {
            return narrowband(x);
        }
        let rows = |r: &[u32]| Tensor::new(r, x.device());
        let wide_out = wideband(&x.index_select(&rows(&wide_rows)?, 0)?)?;
        let narrow_out = narrowband(&x.index_select(&rows(&narrow_rows)?, 0)?)?;
        // Row r of the batch sits at `order[r]` in [wide outputs; narrow outputs].
        let mut order = vec![0u32; narrow.len()];
        for (position, &r) in wide_rows.iter().chain(&narrow_rows).enumerate() {
            order[r as usize] = position as u32;
        }
        Tensor::cat(&[wide_out, narrow_out], 0)?.index_select(&rows(&order)?, 0)
    }
}

#[derive(Debug)]
struct ByBand {
    wideband: Box<dyn Network>,
    narrowband: Box<dyn Network>,
    router: Router,
}

impl Network for ByBand {
    /// Members normalize their own input.
    fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }

    fn forward_normalized(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.router.route(
            x,
            |w| self.wideband.forward_t(w, train),
            |n| self.narrowband.forward_t(n, train),
        )
    }

    fn set_dropout_seed(&self, seed: u64) {
        self.wideband.set_dropout_seed(seed);
        self.narrowband.set_dropout_seed(seed.wrapping_add(1));
    }

    fn inference(&self) -> Result<Box<dyn Inference>> {
        Ok(Box::new(ByBandInference {
            wideband: self.wideband.inference()?,
            narrowband: self.narrowband.inference()?,
            router: self.router,
        }))
    }
}

#[derive(Debug)]
struct ByBandInference {
    wideband: Box<dyn Inference>,
    narrowband: Box<dyn Inference>,
    router: Router,
}

impl Inference for ByBandInference {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.router.route(
            x,
            |w| self.wideband.forward(w),
            |n| self.narrowband.forward(n),
        )
    }
}

#[cfg(test)]
#[path = "by_band_tests.rs"]
mod tests;
