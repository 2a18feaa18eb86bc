//! An ensemble of trained models that share a front end: each window runs through every
//! member and the ensemble's distribution is the mean of theirs. Members keep their own
//! architecture section and input statistics; weights live under `member<i>.` in one
//! safetensors file. Ensembles are assembled from trained model directories
//! (`sentio-train --ensemble A,B`), not trained as one network.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::architecture::{
    Architecture, ArchitectureSpec, Inference, InputStatistics, ModelInput, Network, invalid_card,
};
use super::card::{ModelCard, Normalization};
use super::recipe::Recipe;

/// The card's `architecture` section: the members.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleConfig {
    pub members: Vec<Member>,
}

/// One member: its architecture and the statistics it was trained with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub architecture: Architecture,
    #[serde(default)]
    pub normalization: Normalization,
}

impl EnsembleConfig {
    /// Member `i`'s own card: the ensemble's, with the member's network and statistics.
    pub fn member_card(&self, card: &ModelCard, i: usize) -> ModelCard {
        self.members[i].card(card)
    }
}

impl Member {
    /// The assembled model's card with this member's network and statistics.
    pub fn card(&self, card: &ModelCard) -> ModelCard {
        ModelCard {
            architecture: self.architecture.clone(),
            normalization: self.normalization.clone(),
            ..card.clone()
        }
    }
}

impl ArchitectureSpec for EnsembleConfig {
    fn input(&self) -> ModelInput {
        self.members
            .first()
            .map_or(ModelInput::LogMelFrames, |m| m.architecture.spec().input())
    }

    fn validate(&self, card: &ModelCard) -> crate::Result<()> {
        if self.members.is_empty() {
            return invalid_card("architecture.members is empty");
        }
        if self
            .members
            .iter()
            .any(|m| m.architecture.spec().input() != self.input())
        {
            return invalid_card("architecture.members must all read the same input");
        }
        if !card.normalization.mean.is_empty() {
            return invalid_card("normalization must be empty: each member carries its own");
        }
        for i in 0..self.members.len() {
            self.members[i]
                .architecture
                .spec()
                .validate(&self.member_card(card, i))?;
        }
        Ok(())
    }

    fn build(&self, card: &ModelCard, vb: VarBuilder) -> Result<Box<dyn Network>> {
        let members = (0..self.members.len())
            .map(|i| {
                let member = self.member_card(card, i);
                member
                    .architecture
                    .spec()
                    .build(&member, vb.pp(format!("member{i}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(Ensemble { members }))
    }

    fn statistics(&self) -> InputStatistics {
        InputStatistics::None
    }

    /// Not trained as one network; the first member's recipe is what its members used.
    fn recipe(&self) -> Recipe {
        self.members
            .first()
            .map_or_else(Recipe::default, |m| m.architecture.spec().recipe())
    }

    fn flops(&self, card: &ModelCard, frames: usize) -> u64 {
        (0..self.members.len())
            .map(|i| {
                let member = self.member_card(card, i);
                member.architecture.spec().flops(&member, frames)
            })
            .sum()
    }
}

/// Log of the mean of the members' softmax distributions: softmax of it is that mean.
fn mean_distribution(logits: Vec<Tensor>) -> Result<Tensor> {
    let n = logits.len() as f64;
    let probabilities = logits
        .iter()
        .map(candle_nn::ops::softmax_last_dim)
        .collect::<Result<Vec<_>>>()?;
    (Tensor::stack(&probabilities, 0)?.sum(0)? / n)?
        .clamp(1e-12, 1.0)?
        .log()
}

#[derive(Debug)]
struct Ensemble {
    members: Vec<Box<dyn Network>>,
}

impl Network for Ensemble {
    /// Members normalize their own input.
    fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }

    fn forward_normalized(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let logits = self
            .members
            .iter()
            .map(|m| m.forward_t(x, train))
            .collect::<Result<Vec<_>>>()?;
        mean_distribution(logits)
    }

    fn set_dropout_seed(&self, seed: u64) {
        for (i, m) in self.members.iter().enumerate() {
            m.set_dropout_seed(seed.wrapping_add(i as u64));
        }
    }

    fn inference(&self) -> Result<Box<dyn Inference>> {
        let members = self
            .members
            .iter()
            .map(|m| m.inference())
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(EnsembleInference { members }))
    }
}

#[derive(Debug)]
struct EnsembleInference {
    members: Vec<Box<dyn Inference>>,
}

impl Inference for EnsembleInference {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let logits = self
            .members
            .iter()
            .map(|m| m.forward(x))
            .collect::<Result<Vec<_>>>()?;
        mean_distribution(logits)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device};

    use super::*;

    /// The mean of the members' distributions, whatever their scales.
    #[test]
    fn the_ensemble_averages_member_distributions() -> Result<()> {
        let dev = Device::Cpu;
        let a = Tensor::new(&[[2.0f32, 0.0, -1.0]], &dev)?;
        let b = Tensor::new(&[[0.0f32, 3.0, 0.0]], &dev)?;
        let pa = candle_nn::ops::softmax_last_dim(&a)?;
        let pb = candle_nn::ops::softmax_last_dim(&b)?;
        let want = ((pa + pb)? / 2.0)?.to_vec2::<f32>()?;
        let got = candle_nn::ops::softmax(&mean_distribution(vec![a, b])?, D::Minus1)?
            .to_vec2::<f32>()?;
        for (w, g) in want[0].iter().zip(&got[0]) {
            assert!((w - g).abs() < 1e-6, "{want:?} vs {got:?}");
        }
        Ok(())
    }
}
