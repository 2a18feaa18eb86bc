//! Feature preparation for training and evaluation. Every clip is decoded once, augmented
//! into a few fixed variants, and turned into exactly what the server computes: log-mel
//! frames on the stream's frame grid (logmel model) or the 162-value vector of each window
//! (seed model). Epochs then only crop, mask and mix cached features.

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use sentio::audio::{StreamResampler, WindowAssembler, decode_path};
use sentio::features::StreamingLogMel;
use sentio::model::{ModelCard, ModelKind, WindowInput, window_input};

use crate::augment;
use crate::data::Clip;

/// The waveform variants a training clip is cached in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Original,
    /// Additive white noise at 5-25 dB SNR.
    Noise,
    /// Pitch shift of up to +-2.5 semitones and a 0.85-1.15 time stretch (and for the seed
    /// model, the notebook's fixed stretch 0.8 + pitch 0.7).
    StretchPitch,
    /// 8 kHz band limit and a G.711 mu-law round trip, at a random level.
    Telephony,
    /// The notebook's roll by up to +-5000 samples (seed model only).
    Shift,
    /// Evaluation only: resampled to 8 kHz, G.711 mu-law encoded and decoded, resampled back.
    MuLaw8k,
}

impl Variant {
    pub fn for_training(kind: ModelKind) -> Vec<Variant> {
        match kind {
            ModelKind::Logmel => vec![
                Variant::Original,
                Variant::Noise,
                Variant::StretchPitch,
                Variant::Telephony,
            ],
            // The reference notebook's four rows per clip.
            ModelKind::Seed => vec![
                Variant::Original,
                Variant::Noise,
                Variant::StretchPitch,
                Variant::Shift,
            ],
        }
    }
}

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

/// Applies one augmentation variant to a waveform at `sr`.
pub fn apply_variant(
    y: &[f32],
    sr: u32,
    kind: ModelKind,
    variant: Variant,
    rng: &mut StdRng,
) -> Result<Vec<f32>> {
    Ok(match (variant, kind) {
        (Variant::Original, _) => y.to_vec(),
        (Variant::Noise, _) => augment::add_noise(y, rng.random_range(5.0..25.0), rng),
        (Variant::StretchPitch, ModelKind::Seed) => {
            augment::pitch_shift(&augment::time_stretch(y, 0.8), sr, 0.7)?
        }
        (Variant::StretchPitch, ModelKind::Logmel) => {
            let shifted = augment::pitch_shift(y, sr, rng.random_range(-2.5..2.5))?;
            augment::time_stretch(&shifted, rng.random_range(0.85..1.15))
        }
        (Variant::Telephony, _) => {
            augment::gain_db(&augment::telephony(y, sr)?, rng.random_range(-12.0..6.0))
        }
        (Variant::MuLaw8k, _) => {
            let narrow = StreamResampler::resample_all(sr, 8000, y)?;
            let bytes = sentio::audio::pcm::encode(&narrow, sentio::audio::SampleFormat::MuLaw);
            let decoded: Vec<f32> = bytes
                .iter()
                .map(|&b| sentio::audio::pcm::mulaw_to_linear(b) as f32 / 32768.0)
                .collect();
            let mut back = StreamResampler::resample_all(8000, sr, &decoded)?;
            back.resize(y.len(), 0.0);
            back
        }
        (Variant::Shift, _) => {
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
    let keep_samples = card.kind == ModelKind::Seed;
    let mut assembler = WindowAssembler::new(window, hop, card.features.sr, keep_samples)?;
    let mut cut = Vec::new();
    assembler.push(y, &mut cut);
    cut.extend(assembler.finish(min_tail));
    let mut out = CachedClip::default();
    match card.kind {
        ModelKind::Logmel => {
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
        ModelKind::Seed => {
            for w in &cut {
                out.windows.push(window_input(card, &w.samples)?);
            }
        }
    }
    Ok(out)
}

/// Features of `clips` in the given variants, in parallel; `seed` makes the augmentation
/// of clip i depend only on (seed, i).
pub fn prepare(
    card: &ModelCard,
    clips: &[Clip],
    variants: &[Variant],
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
                    featurize(
                        card,
                        &apply_variant(&y, card.features.sr, card.kind, v, &mut rng)?,
                    )
                })
                .collect::<Result<Vec<_>>>();
            progress.inc(1);
            result
        })
        .collect()
}
