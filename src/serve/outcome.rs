//! How a stream ends: the outcome metrics count, the reason its summary states, and the
//! summary itself (the clip decision rule over every window of the stream).

use crate::classify::SpeechMean;
use crate::proto::StreamSummary;
use crate::report::{channel_summary, emotion_scores};

/// How a stream ended, as `sentio_streams_total{outcome}` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client half-closed and got every window and the summary.
    Completed,
    /// A server limit or shutdown ended it; it still got its windows and the summary.
    Limited,
    /// The client went away.
    Cancelled,
    /// It was ended with an error status.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Completed,
        Outcome::Limited,
        Outcome::Cancelled,
        Outcome::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Limited => "limited",
            Outcome::Cancelled => "cancelled",
            Outcome::Error => "error",
        }
    }
}

/// Why a served stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndReason {
    Completed,
    Shutdown,
    MaxDuration(u64),
    IdleTimeout(u64),
}

impl EndReason {
    /// The words of `StreamSummary.end_reason`.
    fn text(self) -> String {
        match self {
            EndReason::Completed => "completed".into(),
            EndReason::Shutdown => "server shutting down".into(),
            EndReason::MaxDuration(s) => format!("max stream duration of {s} s reached"),
            EndReason::IdleTimeout(s) => format!("idle timeout: no audio for {s} s"),
        }
    }

    fn proto(self) -> crate::proto::EndReason {
        use crate::proto::EndReason as P;
        match self {
            EndReason::Completed => P::Completed,
            EndReason::Shutdown => P::ServerShutdown,
            EndReason::MaxDuration(_) => P::MaxDuration,
            EndReason::IdleTimeout(_) => P::IdleTimeout,
        }
    }
}

/// Running totals for the stream's summary: the clip decision rule over every window, and
/// over each channel's when channels are analysed separately.
pub(crate) struct Summary {
    all: SpeechMean,
    channels: Vec<SpeechMean>,
}

impl Summary {
    /// `separate_channels`: 0 for a mixed stream, else the number of channels.
    pub(crate) fn new(classes: usize, separate_channels: usize) -> Self {
        Self {
            all: SpeechMean::new(classes),
            channels: (0..separate_channels)
                .map(|_| SpeechMean::new(classes))
                .collect(),
        }
    }

    pub(crate) fn add(&mut self, channel: u32, probabilities: Option<&[f32]>) {
        self.all.add(probabilities);
        if let Some(rule) = self.channels.get_mut(channel as usize) {
            rule.add(probabilities);
        }
    }

    pub(crate) fn finish(self, labels: &[String], audio_ms: u64, end: EndReason) -> StreamSummary {
        StreamSummary {
            audio_ms,
            windows: self.all.windows(),
            speech_windows: self.all.speech_windows(),
            mean_scores: emotion_scores(labels, &self.all.mean()),
            dominant_emotion: self.all.decision(labels).0,
            end_reason: end.text(),
            reason: end.proto() as i32,
            channels: (self.channels.iter().enumerate())
                .map(|(i, rule)| channel_summary(labels, i as u32, rule))
                .collect(),
        }
    }
}
