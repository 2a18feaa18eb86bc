//! Evaluation of a saved model exactly as the server decides: each test clip, in each
//! listening condition, goes through `sentio::classify::classify_audio` (resampling from the
//! condition's own rate, windows, silence gate, mean over speech windows). The figures of
//! `EVAL.md` are therefore what `sentio classify` gives on the same audio.

use anyhow::Result;
use rayon::prelude::*;
use sentio::audio::{DecodedAudio, SampleFormat, StreamResampler};
use sentio::classify::{classify_audio, classify_audio_in_call};
use sentio::model::{LABELS, Model};

use crate::augment::{self, Codec};
use crate::cache::load_clip;
use crate::data::{Clip, Dataset};
use crate::eval::{Confusion, argmax};

/// How a test clip reaches the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// As recorded, at 16 kHz.
    Clean,
    /// 8 kHz, G.711 mu-law, no band-pass: the condition earlier `EVAL.md` files reported.
    MuLaw8k,
    /// A phone line: anti-aliased resampling to 8 kHz, 300-3400 Hz band-pass, G.711 mu-law;
    /// sent at 8 kHz so the server's own 8 -> 16 kHz path runs.
    PhoneMuLaw,
    /// The same with G.711 A-law.
    PhoneALaw,
}

impl Condition {
    pub const ALL: [Condition; 4] = [
        Condition::Clean,
        Condition::MuLaw8k,
        Condition::PhoneMuLaw,
        Condition::PhoneALaw,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Condition::Clean => "clean",
            Condition::MuLaw8k => "8 kHz mu-law",
            Condition::PhoneMuLaw => "phone mu-law",
            Condition::PhoneALaw => "phone A-law",
        }
    }

    /// File and metric key.
    pub fn slug(self) -> &'static str {
        match self {
            Condition::Clean => "clean",
            Condition::MuLaw8k => "mulaw8k",
            Condition::PhoneMuLaw => "phone_mulaw",
            Condition::PhoneALaw => "phone_alaw",
        }
    }

    /// The audio a caller would send: `y` at `sr` in, samples at the condition's rate out.
    pub fn apply(self, y: &[f32], sr: u32) -> Result<DecodedAudio> {
        let phone = |codec| -> Result<DecodedAudio> {
            let mut narrow = StreamResampler::resample_all(sr, 8000, y)?;
            augment::telephone_band(&mut narrow, 8000);
            let format = match codec {
                Codec::MuLaw => SampleFormat::MuLaw,
                Codec::ALaw => SampleFormat::ALaw,
            };
            Ok(DecodedAudio {
                samples: sentio::audio::pcm::round_trip(&narrow, format),
                sample_rate: 8000,
            })
        };
        match self {
            Condition::Clean => Ok(DecodedAudio {
                samples: y.to_vec(),
                sample_rate: sr,
            }),
            Condition::MuLaw8k => {
                let narrow = StreamResampler::resample_all(sr, 8000, y)?;
                Ok(DecodedAudio {
                    samples: sentio::audio::pcm::round_trip(&narrow, SampleFormat::MuLaw),
                    sample_rate: 8000,
                })
            }
            Condition::PhoneMuLaw => phone(Codec::MuLaw),
            Condition::PhoneALaw => phone(Codec::ALaw),
        }
    }
}

/// One condition's clip decisions: mean speech-window probabilities per clip (uniform for
/// a clip in which no window held speech, counted in `silent`).
pub struct Decisions {
    pub condition: Condition,
    pub probabilities: Vec<Vec<f32>>,
    pub silent: usize,
}

impl Decisions {
    pub fn predictions(&self) -> Vec<usize> {
        self.probabilities.iter().map(|p| argmax(p)).collect()
    }

    /// The confusion over the clips `keep` selects.
    pub fn confusion(&self, clips: &[Clip], keep: impl Fn(&Clip) -> bool) -> Confusion {
        let predictions = self.predictions();
        let (labels, predicted): (Vec<usize>, Vec<usize>) = clips
            .iter()
            .zip(predictions)
            .filter(|(c, _)| keep(c))
            .map(|(c, p)| (c.label, p))
            .unzip();
        Confusion::from_predictions(&labels, &predicted)
    }
}

impl Decisions {
    /// The confusion over the clips `keep` selects, each decided among the classes those
    /// clips hold only (argmax over their labels): an unseen corpus without calm cannot be
    /// heard as calm. It separates a wrong label set from a wrong emotion.
    pub fn confusion_within_own_classes(
        &self,
        clips: &[Clip],
        keep: impl Fn(&Clip) -> bool,
    ) -> Confusion {
        let kept: Vec<(&Clip, &Vec<f32>)> = clips
            .iter()
            .zip(&self.probabilities)
            .filter(|(c, _)| keep(c))
            .collect();
        let mut own = [false; 8];
        kept.iter().for_each(|(c, _)| own[c.label] = true);
        let (labels, predicted): (Vec<usize>, Vec<usize>) = kept
            .iter()
            .map(|(c, p)| {
                let masked: Vec<f32> = p
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| if own[i] { v } else { f32::NEG_INFINITY })
                    .collect();
                (c.label, argmax(&masked))
            })
            .unzip();
        Confusion::from_predictions(&labels, &predicted)
    }
}

/// One line of JSON per clip and condition (path, corpus, speaker, label, condition, the
/// eight probabilities in `LABELS` order), for analyses outside `sentio-train` such as
/// fitting a decision rule on validation speakers.
pub fn write_decisions(
    path: &std::path::Path,
    clips: &[Clip],
    decisions: &[Decisions],
) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for d in decisions {
        for (clip, p) in clips.iter().zip(&d.probabilities) {
            let line = serde_json::json!({
                "path": clip.path,
                "corpus": clip.dataset.name(),
                "speaker": clip.speaker,
                "label": LABELS[clip.label],
                "condition": d.condition.slug(),
                "probabilities": p,
            });
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Classifies every clip in every condition through the server's clip path.
pub fn evaluate(
    model: &Model,
    clips: &[Clip],
    conditions: &[Condition],
    silence_dbfs: f32,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Decisions>> {
    let sr = model.card.features.sr;
    let per_clip: Vec<Vec<Option<Vec<f32>>>> = clips
        .par_iter()
        .map(|clip| {
            let y = load_clip(clip, sr)?;
            let result = conditions
                .iter()
                .map(|c| {
                    let decision = classify_audio(model, &c.apply(&y, sr)?, silence_dbfs)?;
                    Ok((!decision.mean.is_empty()).then_some(decision.mean))
                })
                .collect::<Result<Vec<_>>>();
            progress.inc(1);
            result
        })
        .collect::<Result<_>>()?;
    Ok(decisions_of(model, conditions, &per_clip))
}

/// The call-level protocol: each of `calls` (e.g. a speaker's clips in a random order,
/// `adapt::call_orders`) is one call, read through the server's clip path with the caller's
/// profile carried from clip to clip (an adapting model), and each clip is scored on its
/// own windows. For a model without adaptation it equals [`evaluate`].
pub fn evaluate_calls(
    model: &Model,
    clips: &[Clip],
    conditions: &[Condition],
    silence_dbfs: f32,
    calls: &[Vec<usize>],
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Decisions>> {
    let sr = model.card.features.sr;
    let scored: Vec<Vec<(usize, ClipMeans)>> = calls
        .par_iter()
        .map(|order| {
            let mut profiles = vec![None; conditions.len()];
            order
                .iter()
                .map(|&i| {
                    let y = load_clip(&clips[i], sr)?;
                    let result = conditions
                        .iter()
                        .zip(&mut profiles)
                        .map(|(c, profile)| {
                            let audio = c.apply(&y, sr)?;
                            let decision =
                                classify_audio_in_call(model, &audio, silence_dbfs, profile)?;
                            Ok((!decision.mean.is_empty()).then_some(decision.mean))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    progress.inc(1);
                    Ok((i, result))
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    let mut per_clip = vec![Vec::new(); clips.len()];
    for (i, result) in scored.into_iter().flatten() {
        per_clip[i] = result;
    }
    Ok(decisions_of(model, conditions, &per_clip))
}

/// A clip's speech-window mean in each condition (`None`: no speech).
type ClipMeans = Vec<Option<Vec<f32>>>;

/// Per-condition decisions from each clip's per-condition speech means.
fn decisions_of(model: &Model, conditions: &[Condition], per_clip: &[ClipMeans]) -> Vec<Decisions> {
    let classes = model.card.labels.len();
    let uniform = in_all_labels(&model.card.labels, &vec![1.0 / classes as f32; classes]);
    conditions
        .iter()
        .enumerate()
        .map(|(i, &condition)| {
            let silent = per_clip.iter().filter(|c| c[i].is_none()).count();
            let probabilities = per_clip
                .iter()
                .map(|c| match &c[i] {
                    Some(p) => in_all_labels(&model.card.labels, p),
                    None => uniform.clone(),
                })
                .collect();
            Decisions {
                condition,
                probabilities,
                silent,
            }
        })
        .collect()
}

/// A distribution over a model's labels, spread over all of [`LABELS`] (0 for a label the
/// model lacks), so that models with fewer classes are scored in the same tables.
fn in_all_labels(model_labels: &[String], probabilities: &[f32]) -> Vec<f32> {
    let mut all = vec![0.0; LABELS.len()];
    for (label, &p) in model_labels.iter().zip(probabilities) {
        if let Some(i) = LABELS.iter().position(|l| l == label) {
            all[i] = p;
        }
    }
    all
}

/// Clips of `dataset`, or all clips for `None`.
pub fn of_dataset(dataset: Option<Dataset>) -> impl Fn(&Clip) -> bool {
    move |c| dataset.is_none_or(|d| c.dataset == d)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use sentio::audio::decode_path;

    use super::*;

    /// EVAL.md's clean figures are what `sentio classify` answers, clip by clip: the same
    /// files through `evaluate` and through `classify_audio` on the decoded file (at its
    /// own rate, as the CLI does) give the same distribution.
    #[test]
    fn evaluation_agrees_with_sentio_classify_clip_by_clip() {
        let model = Model::default_model(&Device::Cpu).unwrap();
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let clips: Vec<Clip> = [
            "speech_long_16k.wav",
            "speech_48k_stereo.wav",
            "speech_like_22k.wav",
        ]
        .iter()
        .map(|name| Clip {
            path: fixtures.join(name),
            dataset: Dataset::Crema,
            speaker: "CREMA-D:0000".into(),
            label: 0,
        })
        .collect();
        let silence = sentio::pipeline::DEFAULT_SILENCE_DBFS;
        let progress = indicatif::ProgressBar::hidden();
        let decisions = evaluate(&model, &clips, &[Condition::Clean], silence, &progress).unwrap();
        for (clip, ours) in clips.iter().zip(&decisions[0].probabilities) {
            let audio = decode_path(&clip.path).unwrap();
            let cli = classify_audio(&model, &audio, silence).unwrap();
            assert_eq!(ours.len(), cli.mean.len(), "{}", clip.path.display());
            for (a, b) in ours.iter().zip(&cli.mean) {
                assert!(
                    (a - b).abs() < 2e-3,
                    "{}: {ours:?} vs {:?}",
                    clip.path.display(),
                    cli.mean
                );
            }
            assert_eq!(argmax(ours), argmax(&cli.mean), "{}", clip.path.display());
        }
    }

    /// Deciding among a set's own classes: a neutral clip heard as calm (absent from the
    /// set) counts as its best present class; a sad clip heard as neutral stays wrong.
    #[test]
    fn own_classes_view_ignores_labels_the_set_lacks() {
        let clip = |label| Clip {
            path: "x.ogg".into(),
            dataset: Dataset::Crema,
            speaker: "CREMA-D:0001".into(),
            label,
        };
        let clips = [clip(0), clip(3)];
        // Labels: neutral 0, calm 1, ..., sad 3.
        let decisions = Decisions {
            condition: Condition::Clean,
            probabilities: vec![
                vec![0.3, 0.6, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0],
                vec![0.5, 0.1, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0],
            ],
            silent: 0,
        };
        assert_eq!(decisions.confusion(&clips, |_| true).uar(), 0.0);
        let own = decisions.confusion_within_own_classes(&clips, |_| true);
        assert_eq!(own.counts[0][0], 1);
        assert_eq!(own.counts[3][0], 1);
        assert_eq!(own.uar(), 0.5);
    }

    /// The phone conditions reach the server at 8 kHz, the clean one at the model rate.
    #[test]
    fn phone_conditions_send_8_khz_audio() {
        let y: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        for c in Condition::ALL {
            let audio = c.apply(&y, 16_000).unwrap();
            let rate = if c == Condition::Clean { 16_000 } else { 8_000 };
            assert_eq!(audio.sample_rate, rate, "{c:?}");
            assert!(
                (audio.samples.len() as i64 - rate as i64).abs() <= 2,
                "{c:?}"
            );
        }
    }
}
