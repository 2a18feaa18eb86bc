//! How a stream ends: the outcome metrics count, the reason its summary states, and the
//! summary itself (the clip decision rule over every window of the stream).

use crate::proto::StreamSummary;
use crate::report::emotion_scores;

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

/// Running totals for the stream's summary: the clip decision rule over every window.
pub(crate) struct Summary(crate::classify::SpeechMean);

impl Summary {
    pub(crate) fn new(classes: usize) -> Self {
        Self(crate::classify::SpeechMean::new(classes))
    }

    pub(crate) fn add(&mut self, probabilities: Option<&[f32]>) {
        self.0.add(probabilities);
    }

    pub(crate) fn finish(self, labels: &[String], audio_ms: u64, end: EndReason) -> StreamSummary {
        let dominant_emotion = self.0.decision(labels).0;
        StreamSummary {
            audio_ms,
            windows: self.0.windows(),
            speech_windows: self.0.speech_windows(),
            mean_scores: emotion_scores(labels, &self.0.mean()),
            dominant_emotion,
            end_reason: end.text(),
            reason: end.proto() as i32,
        }
    }
}
