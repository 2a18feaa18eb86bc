//! Whole-clip classification: every window of a recording is classified and the clip's
//! distribution is the mean over its speech windows, the same rule for `sentio classify`,
//! the `Classify` RPC and a stream's summary.

use crate::audio::DecodedAudio;
use crate::error::Result;
use crate::features::SpeakerProfile;
use crate::model::Model;
use crate::pipeline::{PreparedWindow, WindowPipeline, WindowSpec};

/// One window's result; `probabilities` is `None` for silence. (What the command lines print
/// is `report::WindowReport`; this is the pipeline's own value.)
#[derive(Clone, Debug, PartialEq)]
pub struct WindowResult {
    pub index: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    pub speech: bool,
    pub emotion: String,
    pub confidence: f32,
    pub probabilities: Option<Vec<f32>>,
}

impl WindowResult {
    pub fn new(
        labels: &[String],
        window: &PreparedWindow,
        probabilities: Option<Vec<f32>>,
    ) -> Self {
        let (emotion, confidence) = match &probabilities {
            Some(p) => top(labels, p),
            None => ("silence".to_string(), 0.0),
        };
        Self {
            index: window.index,
            start_ms: window.start_ms,
            end_ms: window.end_ms,
            speech: probabilities.is_some(),
            emotion,
            confidence,
            probabilities,
        }
    }
}

/// The label with the highest probability, and that probability.
pub fn top(labels: &[String], probabilities: &[f32]) -> (String, f32) {
    let best = (0..probabilities.len()).fold(0, |b, i| {
        if probabilities[i] > probabilities[b] {
            i
        } else {
            b
        }
    });
    (
        labels.get(best).cloned().unwrap_or_default(),
        probabilities.get(best).copied().unwrap_or(0.0),
    )
}

/// A recording's decision.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipPrediction {
    /// Top emotion of the mean distribution, or "silence" when no window held speech.
    pub emotion: String,
    pub confidence: f32,
    /// Mean probability per label over the speech windows (empty without speech).
    pub mean: Vec<f32>,
    pub windows: Vec<WindowResult>,
    pub audio_ms: u64,
}

/// The clip decision rule, in one place for `sentio classify`, the `Classify` RPC, a
/// stream's summary and the training evaluation: the mean of the speech windows'
/// probabilities (silent windows do not vote); its top label is the clip's emotion.
#[derive(Clone, Debug, Default)]
pub struct SpeechMean {
    windows: u64,
    speech: u64,
    sums: Vec<f64>,
}

impl SpeechMean {
    pub fn new(classes: usize) -> Self {
        Self {
            sums: vec![0.0; classes],
            ..Self::default()
        }
    }

    /// Adds one window's probabilities (`None` for silence).
    pub fn add(&mut self, probabilities: Option<&[f32]>) {
        self.windows += 1;
        if let Some(p) = probabilities {
            self.speech += 1;
            self.sums
                .iter_mut()
                .zip(p)
                .for_each(|(s, &v)| *s += v as f64);
        }
    }

    pub fn windows(&self) -> u64 {
        self.windows
    }

    pub fn speech_windows(&self) -> u64 {
        self.speech
    }

    /// The mean distribution (empty without speech).
    pub fn mean(&self) -> Vec<f32> {
        if self.speech == 0 {
            return Vec::new();
        }
        self.sums
            .iter()
            .map(|s| (s / self.speech as f64) as f32)
            .collect()
    }

    /// The top label and its probability, or ("silence", 0) without speech.
    pub fn decision(&self, labels: &[String]) -> (String, f32) {
        let mean = self.mean();
        if mean.is_empty() {
            ("silence".to_string(), 0.0)
        } else {
            top(labels, &mean)
        }
    }
}

/// Mean of the speech windows' probabilities.
pub fn aggregate(labels: &[String], windows: Vec<WindowResult>, audio_ms: u64) -> ClipPrediction {
    let mut rule = SpeechMean::new(labels.len());
    windows
        .iter()
        .for_each(|w| rule.add(w.probabilities.as_deref()));
    let (emotion, confidence) = rule.decision(labels);
    ClipPrediction {
        emotion,
        confidence,
        mean: rule.mean(),
        windows,
        audio_ms,
    }
}

/// A whole recording's windows, cut and featurized as a stream would (the first half of
/// the clip path; the model's half runs on the caller's thread or through the batcher).
pub fn prepare_clip(
    model_card: &crate::model::ModelCard,
    audio: &DecodedAudio,
    silence_dbfs: f32,
) -> Result<(Vec<PreparedWindow>, u64)> {
    prepare_clip_in_call(model_card, audio, silence_dbfs, &mut None)
}

/// [`prepare_clip`] for one of several recordings of the same caller: an adapting model
/// reads it against `profile` (the caller's spectrum so far; `None` starts afresh), which
/// then holds this recording too.
pub fn prepare_clip_in_call(
    model_card: &crate::model::ModelCard,
    audio: &DecodedAudio,
    silence_dbfs: f32,
    profile: &mut Option<SpeakerProfile>,
) -> Result<(Vec<PreparedWindow>, u64)> {
    let spec = WindowSpec::resolve(model_card, 0, 0)?;
    let mut pipeline = WindowPipeline::new(model_card, audio.sample_rate, spec, silence_dbfs)?;
    pipeline.continue_profile(profile.take());
    let mut prepared = Vec::new();
    pipeline.push(&audio.samples, &mut prepared)?;
    pipeline.finish(&mut prepared)?;
    *profile = pipeline.take_profile();
    Ok((prepared, pipeline.audio_ms()))
}

/// Runs a whole recording through the stream pipeline and the model, in batches.
pub fn classify_audio(
    model: &Model,
    audio: &DecodedAudio,
    silence_dbfs: f32,
) -> Result<ClipPrediction> {
    classify_audio_in_call(model, audio, silence_dbfs, &mut None)
}

/// [`classify_audio`] continuing a caller's profile ([`prepare_clip_in_call`]).
pub fn classify_audio_in_call(
    model: &Model,
    audio: &DecodedAudio,
    silence_dbfs: f32,
    profile: &mut Option<SpeakerProfile>,
) -> Result<ClipPrediction> {
    let card = &model.card;
    let (prepared, audio_ms) = prepare_clip_in_call(card, audio, silence_dbfs, profile)?;
    let mut results = Vec::with_capacity(prepared.len());
    for chunk in prepared.chunks(64) {
        let inputs: Vec<_> = chunk.iter().filter_map(|w| w.input.as_ref()).collect();
        let mut probabilities = model.predict(&inputs)?.into_iter();
        for window in chunk {
            let p = window.input.as_ref().and_then(|_| probabilities.next());
            results.push(WindowResult::new(&card.labels, window, p));
        }
    }
    Ok(aggregate(&card.labels, results, audio_ms))
}
