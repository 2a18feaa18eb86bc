//! The models compiled into the binary (so that `sentio serve` needs no download), and the
//! `--model` value that picks one of them or a model directory. Choose by licence: the
//! weights follow their training data (NOTICE).

use std::path::PathBuf;
use std::str::FromStr;

use candle_core::Device;

use super::Model;
use crate::error::{Error, Result};

/// A model embedded in the binary.
#[derive(Debug)]
pub struct Builtin {
    /// What `--model builtin:NAME` calls it.
    pub name: &'static str,
    /// Classes, training data and licence, in a line (for `--help` and errors).
    pub summary: &'static str,
    card: &'static str,
    weights: &'static [u8],
}

/// Every built-in model; the first is the default.
pub const BUILTINS: [Builtin; 2] = [
    Builtin {
        name: "default",
        summary: "8 classes, trained on RAVDESS, CREMA-D, TESS and SAVEE; weights for \
                  non-commercial research use only (CC BY-NC-SA 4.0)",
        card: include_str!("../../models/default/model.json"),
        weights: include_bytes!("../../models/default/model.safetensors"),
    },
    Builtin {
        name: "crema-d",
        summary: "6 classes (no calm, no surprise), trained on CREMA-D only; weights under \
                  ODbL 1.0/DbCL 1.0, commercial use allowed with attribution",
        card: include_str!("../../models/crema-d/model.json"),
        weights: include_bytes!("../../models/crema-d/model.safetensors"),
    },
];

impl Builtin {
    pub fn named(name: &str) -> Result<&'static Builtin> {
        BUILTINS.iter().find(|b| b.name == name).ok_or_else(|| {
            let known: Vec<String> = BUILTINS
                .iter()
                .map(|b| format!("builtin:{} ({})", b.name, b.summary))
                .collect();
            Error::Config(format!(
                "no built-in model {name:?}; built in: {}",
                known.join("; ")
            ))
        })
    }

    pub fn load(&self, device: &Device) -> Result<Model> {
        Model::from_bytes(self.card, self.weights, device)
    }
}

/// Where a model comes from: `builtin:NAME` or a directory holding `model.json` and
/// `model.safetensors`.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    Builtin(&'static str),
    Dir(PathBuf),
}

impl Default for ModelSource {
    fn default() -> Self {
        ModelSource::Builtin(BUILTINS[0].name)
    }
}

impl FromStr for ModelSource {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.strip_prefix("builtin:") {
            Some(name) => Ok(ModelSource::Builtin(Builtin::named(name)?.name)),
            None => Ok(ModelSource::Dir(PathBuf::from(s))),
        }
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Builtin(name) => write!(f, "builtin:{name}"),
            ModelSource::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

impl ModelSource {
    pub fn load(&self, device: &Device) -> Result<Model> {
        match self {
            ModelSource::Builtin(name) => Builtin::named(name)?.load(device),
            ModelSource::Dir(dir) => Model::load_dir(dir, device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_loads_classifies_and_states_its_licence() {
        let speech = crate::audio::decode_path(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/speech_16k.wav"
        )))
        .unwrap();
        for builtin in &BUILTINS {
            let model = builtin.load(&Device::Cpu).unwrap();
            let clip = crate::classify::classify_audio(
                &model,
                &speech,
                crate::pipeline::DEFAULT_SILENCE_DBFS,
            )
            .unwrap();
            assert_eq!(clip.mean.len(), model.card.labels.len(), "{}", builtin.name);
            assert!((clip.mean.iter().sum::<f32>() - 1.0).abs() < 1e-3);
            assert!(model.card.labels.contains(&clip.emotion));
            let commercial = model.card.license.contains("commercial use allowed");
            assert_eq!(
                commercial,
                builtin.summary.contains("commercial use allowed"),
                "{}: {}",
                builtin.name,
                model.card.license
            );
        }
    }

    #[test]
    fn model_values_parse_to_builtins_or_directories() {
        assert_eq!(ModelSource::default().to_string(), "builtin:default");
        assert_eq!(
            "builtin:crema-d".parse::<ModelSource>().unwrap(),
            ModelSource::Builtin("crema-d")
        );
        assert_eq!(
            "models/phone-ensemble".parse::<ModelSource>().unwrap(),
            ModelSource::Dir("models/phone-ensemble".into())
        );
        let err = "builtin:transformer".parse::<ModelSource>().unwrap_err();
        assert!(err.to_string().contains("builtin:crema-d"), "{err}");
    }
}
