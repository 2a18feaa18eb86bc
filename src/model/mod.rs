//! Emotion models: the model card, the architectures, loading (from a directory or a model
//! embedded in the binary), per-window inputs and batched prediction.

pub mod architecture;
pub mod builtin;
pub mod by_band;
pub mod card;
pub mod cnn2d;
pub mod conv;
pub mod dropout;
pub mod ensemble;
pub mod folded;
pub mod logmel;
pub mod recipe;
pub mod seed;
pub mod train_kernels;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use architecture::{
    Architecture, ArchitectureSpec, Inference, InputStatistics, ModelInput, Network,
};
pub use builtin::{BUILTINS, Builtin, ModelSource};
pub use card::{ModelCard, Normalization};
pub use cnn2d::Cnn2dConfig;
pub use logmel::{LogMelNet, LogmelConfig};
pub use recipe::{Augmentation, Recipe};
pub use seed::{SeedConfig, SeedNet};

use crate::error::{Error, Result};
use crate::features::{self, FeatureKind};

/// The eight emotions the models draw their classes from, in the order of the default
/// model's outputs. A model's outputs are its card's `labels` (the CREMA-D model has six).
pub const LABELS: [&str; 8] = [
    "neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise",
];

/// Most windows in one CPU forward pass; larger batches are split (see `Model::predict`).
pub const CPU_WINDOWS_PER_PASS: usize = 8;

/// One window's network input.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowInput {
    /// Frames (1 for the seed's clip vector).
    pub frames: usize,
    /// `frames * width` values, frame-major.
    pub values: Vec<f32>,
}

/// A loaded model, ready to predict.
#[derive(Debug)]
pub struct Model {
    pub card: ModelCard,
    /// The architecture's serving pass (e.g. batch norm folded into the convolutions).
    inference: Box<dyn Inference>,
    device: Device,
}

/// Parses a card and builds its network in training form with the given weights (tests
/// compare it with the serving pass; evaluation and fine-tuning start from it).
pub fn load_network(
    card_json: &str,
    weights: &[u8],
    device: &Device,
) -> Result<(ModelCard, Box<dyn Network>)> {
    let card = ModelCard::from_json(card_json)?;
    let vb = VarBuilder::from_slice_safetensors(weights, DType::F32, device)?;
    let net = card
        .architecture
        .spec()
        .build(&card, vb)
        .map_err(Error::WeightsMismatch)?;
    Ok((card, net))
}

/// A device as `--device` spells it: "cpu", "cuda:N" (or "metal:N").
pub fn device_name(device: candle_core::DeviceLocation) -> String {
    match device {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Parses `cpu` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec.trim() {
        "cpu" => Ok(Device::Cpu),
        other => {
            let ordinal = other
                .strip_prefix("cuda:")
                .or(if other == "cuda" { Some("0") } else { None })
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    Error::Config(format!("unknown device {other:?}: expected cpu or cuda:N"))
                })?;
            if !cfg!(feature = "cuda") {
                return Err(Error::Config(format!(
                    "device {other} requested, but this binary was built without CUDA support (cargo build --features cuda)"
                )));
            }
            Device::new_cuda(ordinal).map_err(|source| Error::Device { ordinal, source })
        }
    }
}

impl Model {
    /// The default built-in model (`models/default/`, `builtin:default`).
    pub fn default_model(device: &Device) -> Result<Self> {
        BUILTINS[0].load(device)
    }

    /// A model directory holding `model.json` and `model.safetensors`.
    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self> {
        let file = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| Error::File { path, source })
        };
        let card = String::from_utf8_lossy(&file("model.json")?).into_owned();
        let weights = file("model.safetensors")?;
        Self::from_bytes(&card, &weights, device)
    }

    pub fn from_bytes(card_json: &str, weights: &[u8], device: &Device) -> Result<Self> {
        let (card, net) = load_network(card_json, weights, device)?;
        Ok(Self {
            inference: net.inference()?,
            card,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network input for one window of samples at the model rate, computed offline
    /// (streams compute the log-mel frames incrementally and get the same values).
    pub fn window_input(&self, samples: &[f32]) -> Result<WindowInput> {
        window_input(&self.card, samples)
    }

    /// Class probabilities for a batch of windows. Windows of equal length run as one
    /// forward pass; a batch never changes a window's result beyond float rounding.
    pub fn predict(&self, inputs: &[&WindowInput]) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![Vec::new(); inputs.len()];
        let mut remaining: Vec<usize> = (0..inputs.len()).collect();
        while let Some(&first) = remaining.first() {
            let frames = inputs[first].frames;
            let (group, rest): (Vec<usize>, Vec<usize>) =
                remaining.iter().partition(|&&i| inputs[i].frames == frames);
            remaining = rest;
            // On CPU, windows beyond a few per pass only spill the activations out of cache
            // (benches/model.rs, one thread: 4.1k windows/s at batch 1 and 8, 3.3k at 64).
            let chunk = if self.device.is_cpu() {
                CPU_WINDOWS_PER_PASS
            } else {
                group.len()
            };
            for part in group.chunks(chunk.max(1)) {
                let probs =
                    self.forward_probs(&part.iter().map(|&i| inputs[i]).collect::<Vec<_>>())?;
                for (&i, p) in part.iter().zip(probs) {
                    out[i] = p;
                }
            }
        }
        Ok(out)
    }

    fn forward_probs(&self, batch: &[&WindowInput]) -> Result<Vec<Vec<f32>>> {
        let frames = batch[0].frames;
        let width = batch[0].values.len() / frames.max(1);
        let mut flat = Vec::with_capacity(batch.len() * frames * width);
        for input in batch {
            flat.extend_from_slice(&input.values);
        }
        let x = match self.card.architecture.spec().input() {
            ModelInput::ClipVector => Tensor::from_vec(flat, (batch.len(), width), &self.device)?,
            ModelInput::LogMelFrames => {
                Tensor::from_vec(flat, (batch.len(), frames, width), &self.device)?
            }
        };
        let logits = self.inference.forward(&x)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?.to_device(&Device::Cpu)?;
        Ok(probs.to_vec2::<f32>()?)
    }
}

/// The network input for one window of samples at `card.features.sr`.
pub fn window_input(card: &ModelCard, samples: &[f32]) -> Result<WindowInput> {
    let config = &card.features;
    match card.architecture.spec().input() {
        ModelInput::ClipVector => Ok(WindowInput {
            frames: 1,
            values: seed::seed_features(samples, config)?,
        }),
        ModelInput::LogMelFrames => {
            let m = features::compute(FeatureKind::Logmel, samples, config)?;
            Ok(WindowInput {
                frames: m.n_frames(),
                values: m.data,
            })
        }
    }
}
