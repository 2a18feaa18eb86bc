//! How an architecture is trained by default: `sentio-train` reads these instead of asking
//! which architecture it trains. They are part of the library so that an architecture's
//! file holds everything about it.

use serde::{Deserialize, Serialize};

/// A waveform variant in which training clips are cached (each is computed once, then
/// epochs draw among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Augmentation {
    /// The clip as recorded.
    Original,
    /// Additive white noise at 5-25 dB SNR.
    Noise,
    /// Pitch shift of up to +-2.5 semitones and a 0.85-1.15 time stretch.
    StretchPitch,
    /// The notebook's fixed stretch 0.8 then pitch shift 0.7 semitones.
    NotebookStretchPitch,
    /// The phone channel (8 kHz, 300-3400 Hz, G.711 mu-law) at a random level.
    Telephony,
    /// A phone line drawn per clip (`augment::Line::random`): mu-law or A-law, half of the
    /// time a plain 8 kHz channel with no band-pass, otherwise corners around 300-3400 Hz;
    /// a random level.
    PhoneLine,
    /// Another speaker on another line: pitch shift of up to +-4 semitones, a 0.9-1.1 speed
    /// change, noise half of the time, then the phone channel with A-law or mu-law.
    SpeakerPhone,
    /// The notebook's roll by up to +-5000 samples.
    Shift,
}

impl Augmentation {
    /// The variants of the speaker-and-phone recipes (EXPERIMENTS.md E1, E3).
    pub const SPEAKER_AND_PHONE: [Augmentation; 5] = [
        Augmentation::Original,
        Augmentation::Noise,
        Augmentation::StretchPitch,
        Augmentation::Telephony,
        Augmentation::SpeakerPhone,
    ];
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Linear warm-up over `warmup_epochs`, then a cosine to zero.
    WarmupCosine { warmup_epochs: usize },
    /// Keras's ReduceLROnPlateau(factor 0.4, patience 2) on validation loss.
    ReduceOnPlateau,
}

/// What a window fed to the network is drawn as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Every server window of every clip, as cut (clip-vector models).
    EveryWindow,
    /// One random crop of `crop_frames` per clip and epoch.
    RandomCrop,
}

/// Training hyper-parameters (recorded in the card's `training.config`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub sampling: Sampling,
    /// Log-mel crop length in frames (a 2 s window's frames).
    pub crop_frames: usize,
    pub augmentations: Vec<Augmentation>,
    /// Probability of drawing the original variant (otherwise any variant, uniformly).
    pub original_prob: f64,
    /// Mixup Beta(alpha, alpha); 0 disables.
    pub mixup_alpha: f32,
    /// Keep the first clip's share >= 0.5, so its label stays the main one.
    pub mixup_major_first: bool,
    pub spec_augment: bool,
    /// Longest SpecAugment time mask, in frames.
    pub time_mask_frames: usize,
    /// Each target moves this much mass evenly over all classes.
    pub label_smoothing: f32,
    /// Probability of shifting the mel axis by up to `mel_shift_bands` (a cheap
    /// vocal-tract-length perturbation in feature space).
    pub mel_shift_prob: f64,
    pub mel_shift_bands: usize,
    /// Probability of colouring a window as another microphone would: a spectral tilt of up
    /// to +-`colour_tilt_db` across the mel range and, half of the time, a roll-off of up to
    /// 1 dB per band above a random band of the upper half (a model trained on some corpora
    /// hears an unseen one as angry: EXPERIMENTS.md E7).
    #[serde(default)]
    pub colour_prob: f64,
    #[serde(default)]
    pub colour_tilt_db: f32,
    /// Pad clips shorter than a crop with each band's minimum (their noise floor), not
    /// silence.
    pub pad_with_floor: bool,
    /// Calm's loss weight at most neutral's: calm exists in one corpus only, and a
    /// rare-class boost teaches "sounds like RAVDESS" rather than calm.
    pub cap_calm_weight: bool,
    /// Weight of the corpus adversary (0 disables): a small head learns which corpus a
    /// window came from, and its gradient reaches the network reversed, so the embedding
    /// learns to hide the recording (domain-adversarial training, Ganin et al. 2016). The
    /// weight ramps up from 0 over the run. Training only; the served model is unchanged.
    #[serde(default)]
    pub corpus_adversary: f32,
    /// Keep the mean of the weights at the end of each of the last this-many epochs
    /// instead of one epoch's (stochastic weight averaging, Izmailov et al. 2018); 0 keeps
    /// the best (or, in a refit, the last) epoch. Batch-norm statistics are averaged too.
    #[serde(default)]
    pub average_last_epochs: usize,
    /// Draw each epoch's clips with probability proportional to (clips of their corpus)^-this:
    /// 0 draws every clip once (CREMA-D is 60% of the data, so "sounds like CREMA-D" is a
    /// cheap feature), 1 gives every corpus the same share, 0.5 shares in proportion to the
    /// square root of each corpus' size.
    #[serde(default)]
    pub corpus_balance: f64,
    /// Read each window against its speaker's spectrum, as a stream reads it against the
    /// call so far (`features::adaptation`); the card then carries the prior.
    #[serde(default)]
    pub speaker_adaptation: bool,
    /// Windows of evidence the training set's mean spectrum is worth in a profile.
    #[serde(default = "default_prior_windows")]
    pub adaptation_prior_windows: f32,
    /// Most earlier clips of the speaker a training window's profile is built from (a
    /// random number up to this, so early and late moments of a call are both seen).
    #[serde(default = "default_adaptation_clips")]
    pub adaptation_max_clips: usize,
    /// Probability that a training window's profile holds no earlier clip (the window is
    /// read as the first of a call, or as a clip Classify gets alone); otherwise 0 to
    /// `adaptation_max_clips` earlier clips, uniformly.
    #[serde(default)]
    pub adaptation_alone_prob: f64,
    /// Probability that a training window's earlier clips are drawn from its speaker's clips
    /// of the same emotion only (a caller who stays angry all call has an angry profile);
    /// otherwise from all of the speaker's other clips.
    #[serde(default)]
    pub adaptation_same_emotion_prob: f64,
    /// Pass every variant, and the validation clips, through a random phone line
    /// (`phone_line`) after its own augmentation: a model for narrowband audio only, the
    /// narrowband member of a `by_band` model.
    #[serde(default)]
    pub narrowband: bool,
    /// Start from this trained model directory's weights and input statistics instead of
    /// a seeded initialization (fine-tuning; same architecture and labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<std::path::PathBuf>,
}

fn default_prior_windows() -> f32 {
    4.0
}

fn default_adaptation_clips() -> usize {
    30
}

impl Recipe {
    /// This recipe with the fields of a JSON object replaced (e.g. `{"epochs": 12,
    /// "label_smoothing": 0}`); an unknown field or a wrong type is an error naming it.
    pub fn with_overrides(&self, json: &str) -> Result<Recipe, serde_json::Error> {
        let mut merged = serde_json::to_value(self)?;
        let changes: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)?;
        if let Some(fields) = merged.as_object_mut() {
            fields.extend(changes);
        }
        serde_json::from_value(merged)
    }
}

impl Default for Recipe {
    /// The log-mel recipe; architectures change what differs.
    fn default() -> Self {
        Self {
            epochs: 40,
            batch_size: 64,
            learning_rate: 3e-3,
            weight_decay: 1e-2,
            schedule: Schedule::WarmupCosine { warmup_epochs: 1 },
            sampling: Sampling::RandomCrop,
            crop_frames: 197,
            augmentations: vec![
                Augmentation::Original,
                Augmentation::Noise,
                Augmentation::StretchPitch,
                Augmentation::Telephony,
            ],
            original_prob: 0.4,
            mixup_alpha: 0.3,
            mixup_major_first: false,
            spec_augment: true,
            time_mask_frames: 19,
            label_smoothing: 0.0,
            mel_shift_prob: 0.0,
            mel_shift_bands: 0,
            colour_prob: 0.0,
            colour_tilt_db: 12.0,
            pad_with_floor: false,
            cap_calm_weight: false,
            corpus_adversary: 0.0,
            average_last_epochs: 0,
            corpus_balance: 0.0,
            speaker_adaptation: false,
            adaptation_prior_windows: default_prior_windows(),
            adaptation_max_clips: default_adaptation_clips(),
            adaptation_alone_prob: 0.0,
            adaptation_same_emotion_prob: 0.0,
            narrowband: false,
            init_from: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_named_fields_and_reject_typos() {
        let base = Recipe::default();
        let changed = base
            .with_overrides(r#"{"epochs": 12, "augmentations": ["original"]}"#)
            .unwrap();
        assert_eq!(changed.epochs, 12);
        assert_eq!(changed.augmentations, [Augmentation::Original]);
        assert_eq!(changed.learning_rate, base.learning_rate);
        let typo = base.with_overrides(r#"{"epoch": 12}"#).unwrap_err();
        assert!(typo.to_string().contains("unknown field `epoch`"), "{typo}");
    }
}
