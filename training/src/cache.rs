//! Feature preparation for training and validation. Every clip is decoded once, augmented
//! into a few fixed variants, and turned into exactly what the server computes: log-mel
//! frames on the stream's frame grid (logmel model) or the 162-value vector of each window
//! (seed model). Epochs then only crop, mask and mix cached features.

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use sentio::audio::{StreamResampler, WindowAssembler, decode_path};
use sentio::features::StreamingLogMel;
use sentio::model::{Augmentation, ModelCard, ModelInput, WindowInput, window_input};

use crate::augment;
use crate::data::Clip;

/// A clip's cached features for one variant.
#[derive(Clone, Debug, Default)]
pub struct CachedClip {
    /// Log-mel dB frames of the whole clip, unclamped (logmel model): frames x n_mels.
    pub frames: usize,
    pub logmel_db: Vec<f32>,
    /// The network input of each server window of the clip, in order.
    pub windows: Vec<WindowInput>,
}

/// Decodes a clip and resamples it to the model rate.
pub fn load_clip(clip: &Clip, rate: u32) -> Result<Vec<f32>> {
    let audio =
        decode_path(&clip.path).with_context(|| format!("decoding {}", clip.path.display()))?;
    Ok(StreamResampler::resample_all(
        audio.sample_rate,
        rate,
        &audio.samples,
    )?)
}

/// Applies one augmentation to a waveform at `sr`.
pub fn augment(
    y: &[f32],
    sr: u32,
    augmentation: Augmentation,
    rng: &mut StdRng,
) -> Result<Vec<f32>> {
    Ok(match augmentation {
        Augmentation::Original => y.to_vec(),
        Augmentation::Noise => augment::add_noise(y, rng.random_range(5.0..25.0), rng),
        Augmentation::NotebookStretchPitch => {
            augment::pitch_shift(&augment::time_stretch(y, 0.8), sr, 0.7)?
        }
        Augmentation::StretchPitch => {
            let shifted = augment::pitch_shift(y, sr, rng.random_range(-2.5..2.5))?;
            augment::time_stretch(&shifted, rng.random_range(0.85..1.15))
        }
        Augmentation::Telephony => augment::gain_db(
            &augment::telephony(y, sr, augment::Codec::MuLaw)?,
            rng.random_range(-12.0..6.0),
        ),
        Augmentation::PhoneLine => augment::gain_db(
            &augment::phone_line(y, sr, &augment::Line::random(rng))?,
            rng.random_range(-12.0..6.0),
        ),
        Augmentation::SpeakerPhone => {
            let shifted = augment::pitch_shift(y, sr, rng.random_range(-4.0..4.0))?;
            let sped = augment::speed(&shifted, sr, rng.random_range(0.9..1.1))?;
            let codec = if rng.random_bool(0.5) {
                augment::Codec::ALaw
            } else {
                augment::Codec::MuLaw
            };
            let noisy = if rng.random_bool(0.5) {
                augment::add_noise(&sped, rng.random_range(10.0..30.0), rng)
            } else {
                sped
            };
            augment::gain_db(
                &augment::telephony(&noisy, sr, codec)?,
                rng.random_range(-12.0..6.0),
            )
        }
        Augmentation::Shift => {
            let max = 5000.0 / y.len().max(1) as f32;
            augment::time_shift(y, max.min(0.5), rng)
        }
    })
}

/// Everything the model needs from one waveform: its frames and its windows' inputs,
/// produced the way a stream produces them (incremental front end + window assembler).
pub fn featurize(card: &ModelCard, y: &[f32]) -> Result<CachedClip> {
    let window = card.ms_to_samples(card.window_ms);
    let hop = card.ms_to_samples(card.hop_ms);
    let min_tail = card.ms_to_samples(card.min_window_ms);
    let input = card.architecture.spec().input();
    let keep_samples = input == ModelInput::ClipVector;
    let mut assembler = WindowAssembler::new(window, hop, card.features.sr, keep_samples)?;
    let mut cut = Vec::new();
    assembler.push(y, &mut cut);
    cut.extend(assembler.finish(min_tail));
    let mut out = CachedClip::default();
    match input {
        ModelInput::LogMelFrames => {
            let mut stream = StreamingLogMel::new(&card.features)?;
            stream.push(y);
            let n_mels = card.features.n_mels;
            for w in &cut {
                if let Some(values) = stream.window_logmel(w.start_sample, w.len) {
                    out.windows.push(WindowInput {
                        frames: values.len() / n_mels,
                        values,
                    });
                }
            }
            // The clip's unclamped dB frames, for random crops.
            let mut all = StreamingLogMel::new(&card.features)?;
            all.push(y);
            out.logmel_db = all.all_frames_db();
            out.frames = out.logmel_db.len() / n_mels;
        }
        ModelInput::ClipVector => {
            for w in &cut {
                out.windows.push(window_input(card, &w.samples)?);
            }
        }
    }
    Ok(out)
}

/// Features of `clips` in the given augmentations, in parallel; `seed` makes the
/// augmentation of clip i depend only on (seed, i). With `narrowband`, each variant then
/// goes through a random phone line.
pub fn prepare(
    card: &ModelCard,
    clips: &[Clip],
    variants: &[Augmentation],
    narrowband: bool,
    seed: u64,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Vec<CachedClip>>> {
    clips
        .par_iter()
        .enumerate()
        .map(|(i, clip)| {
            let y = load_clip(clip, card.features.sr)?;
            let mut rng =
                StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let result = variants
                .iter()
                .map(|&v| {
                    let mut y = augment(&y, card.features.sr, v, &mut rng)?;
                    if narrowband {
                        y = augment(&y, card.features.sr, Augmentation::PhoneLine, &mut rng)?;
                    }
                    featurize(card, &y)
                })
                .collect::<Result<Vec<_>>>();
            progress.inc(1);
            result
        })
        .collect()
}
