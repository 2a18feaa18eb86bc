//! The JSON that Sentio's command lines print, in one schema: `sentio classify --json`,
//! `sentio-client classify --json` and `sentio-client stream --json` name every field the
//! same way, so a script that reads one reads them all. Offline classification goes
//! through the same [`classify_response`] as the `Classify` RPC, so the two print the same
//! object for the same file and model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::classify::{ClipPrediction, WindowResult};
use crate::proto::{
    ChannelSummary, ClassifyResponse, EmotionScore, StreamSummary, WindowPrediction,
    stream_emotions_response::Response,
};

/// Probability per emotion label (sorted by label).
pub type Scores = BTreeMap<String, f32>;

/// One window's prediction: a line of a stream, or an entry of a clip's `windows`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    pub index: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    /// False for a silent window: its emotion is "silence" and it has no scores.
    pub speech: bool,
    pub emotion: String,
    pub confidence: f32,
    pub scores: Scores,
    /// Server-side latency of a streamed window (absent offline and for Classify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// The window's channel, when channels are analysed separately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<u32>,
}

/// A whole recording's decision (one line per file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipReport {
    pub file: String,
    pub model_id: String,
    pub emotion: String,
    pub confidence: f32,
    pub scores: Scores,
    pub audio_ms: u64,
    pub windows: Vec<WindowReport>,
}

/// A file that could not be classified (its line instead of a [`ClipReport`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileError {
    pub file: String,
    pub error: String,
}

/// A stream's closing line: the clip rule over every window heard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryReport {
    pub audio_ms: u64,
    pub window_count: u64,
    pub speech_window_count: u64,
    pub emotion: String,
    pub scores: Scores,
    /// Why the stream ended, as the proto's `EndReason` without its prefix ("completed").
    pub reason: String,
    /// The same in words, with the limit that ended it.
    pub end_reason: String,
    /// Per channel, when channels are analysed separately.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelReport>,
}

/// One channel's decision in a separately analysed stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelReport {
    pub channel: u32,
    pub window_count: u64,
    pub speech_window_count: u64,
    pub emotion: String,
    pub scores: Scores,
}

/// One line of `sentio-client stream --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    Started { stream_id: String, model_id: String },
    Prediction(WindowReport),
    Summary(SummaryReport),
}

fn scores_of(scores: &[EmotionScore]) -> Scores {
    scores
        .iter()
        .map(|s| (s.emotion.clone(), s.probability))
        .collect()
}

/// The proto's per-label scores of a distribution.
pub fn emotion_scores(labels: &[String], probabilities: &[f32]) -> Vec<EmotionScore> {
    labels
        .iter()
        .zip(probabilities)
        .map(|(l, &p)| EmotionScore {
            emotion: l.clone(),
            probability: p,
        })
        .collect()
}

/// A window result as the proto states it (`latency_us` 0: not streamed).
pub fn window_prediction(labels: &[String], w: &WindowResult) -> WindowPrediction {
    WindowPrediction {
        window_index: w.index,
        start_ms: w.start_ms,
        end_ms: w.end_ms,
        scores: w
            .probabilities
            .as_deref()
            .map(|p| emotion_scores(labels, p))
            .unwrap_or_default(),
        emotion: w.emotion.clone(),
        confidence: w.confidence,
        speech: w.speech,
        latency_us: 0,
        channel: 0,
    }
}

/// One channel's decision (the clip rule over its windows) as the proto states it.
pub fn channel_summary(
    labels: &[String],
    channel: u32,
    rule: &crate::classify::SpeechMean,
) -> ChannelSummary {
    ChannelSummary {
        channel,
        windows: rule.windows(),
        speech_windows: rule.speech_windows(),
        mean_scores: emotion_scores(labels, &rule.mean()),
        dominant_emotion: rule.decision(labels).0,
    }
}

/// A clip's decision as the `Classify` RPC answers it; `sentio classify` prints the same.
pub fn classify_response(
    labels: &[String],
    model_id: &str,
    clip: &ClipPrediction,
) -> ClassifyResponse {
    ClassifyResponse {
        emotion: clip.emotion.clone(),
        confidence: clip.confidence,
        scores: emotion_scores(labels, &clip.mean),
        windows: clip
            .windows
            .iter()
            .map(|w| window_prediction(labels, w))
            .collect(),
        audio_ms: clip.audio_ms,
        model_id: model_id.to_string(),
        channels: Vec::new(),
    }
}

impl From<&WindowPrediction> for WindowReport {
    fn from(p: &WindowPrediction) -> Self {
        Self {
            index: p.window_index,
            start_ms: p.start_ms,
            end_ms: p.end_ms,
            speech: p.speech,
            emotion: p.emotion.clone(),
            confidence: p.confidence,
            scores: scores_of(&p.scores),
            latency_us: (p.latency_us > 0).then_some(p.latency_us),
            channel: None,
        }
    }
}

impl WindowReport {
    /// One line of a readable timeline: the span, the emotion, its probability and a bar
    /// (what `sentio classify` and `sentio-client stream` print without `--json`).
    pub fn timeline_line(&self) -> String {
        let bar = "#".repeat((self.confidence * 20.0).round() as usize);
        let channel = self.channel.map_or(String::new(), |c| format!("ch{c} "));
        format!(
            "{channel}{:>7.2}-{:<7.2} s  {:<9} {:>5.1}% {bar}",
            self.start_ms as f64 / 1000.0,
            self.end_ms as f64 / 1000.0,
            self.emotion,
            self.confidence * 100.0
        )
    }
}

impl ClipReport {
    pub fn new(file: impl Into<String>, r: &ClassifyResponse) -> Self {
        Self {
            file: file.into(),
            model_id: r.model_id.clone(),
            emotion: r.emotion.clone(),
            confidence: r.confidence,
            scores: scores_of(&r.scores),
            audio_ms: r.audio_ms,
            windows: r.windows.iter().map(WindowReport::from).collect(),
        }
    }
}

impl From<&StreamSummary> for SummaryReport {
    fn from(s: &StreamSummary) -> Self {
        let reason = s.reason().as_str_name();
        Self {
            audio_ms: s.audio_ms,
            window_count: s.windows,
            speech_window_count: s.speech_windows,
            emotion: s.dominant_emotion.clone(),
            scores: scores_of(&s.mean_scores),
            reason: reason
                .trim_start_matches("END_REASON_")
                .to_ascii_lowercase(),
            end_reason: s.end_reason.clone(),
            channels: s
                .channels
                .iter()
                .map(|c| ChannelReport {
                    channel: c.channel,
                    window_count: c.windows,
                    speech_window_count: c.speech_windows,
                    emotion: c.dominant_emotion.clone(),
                    scores: scores_of(&c.mean_scores),
                })
                .collect(),
        }
    }
}

impl From<&Response> for StreamEvent {
    fn from(response: &Response) -> Self {
        match response {
            Response::Started(s) => StreamEvent::Started {
                stream_id: s.stream_id.clone(),
                model_id: s.model_id.clone(),
            },
            Response::Prediction(p) => StreamEvent::Prediction(p.into()),
            Response::Summary(s) => StreamEvent::Summary(s.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["angry".into(), "sad".into()]
    }

    fn clip() -> ClipPrediction {
        let speech = WindowResult {
            index: 0,
            start_ms: 0,
            end_ms: 2000,
            speech: true,
            emotion: "sad".into(),
            confidence: 0.75,
            probabilities: Some(vec![0.25, 0.75]),
        };
        let silence = WindowResult {
            index: 1,
            start_ms: 1000,
            end_ms: 3000,
            speech: false,
            emotion: "silence".into(),
            confidence: 0.0,
            probabilities: None,
        };
        crate::classify::aggregate(&labels(), vec![speech, silence], 3000)
    }

    #[test]
    fn a_clip_report_names_every_field_once_and_round_trips() {
        let response = classify_response(&labels(), "m", &clip());
        let report = ClipReport::new("a.wav", &response);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["emotion"], "sad");
        assert_eq!(json["scores"]["sad"], 0.75);
        assert_eq!(json["windows"][0]["index"], 0);
        assert_eq!(json["windows"][1]["speech"], false);
        assert!(json["windows"][0].get("latency_us").is_none());
        let back: ClipReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn stream_lines_share_the_window_schema_and_name_the_end_reason() {
        let response = classify_response(&labels(), "m", &clip());
        let mut prediction = response.windows[0].clone();
        prediction.latency_us = 1200;
        let line =
            serde_json::to_value(StreamEvent::from(&Response::Prediction(prediction))).unwrap();
        assert_eq!(line["type"], "prediction");
        assert_eq!(line["index"], 0);
        assert_eq!(line["latency_us"], 1200);
        let summary = StreamSummary {
            reason: crate::proto::EndReason::IdleTimeout as i32,
            end_reason: "idle timeout: no audio for 30 s".into(),
            ..Default::default()
        };
        let line = serde_json::to_value(StreamEvent::from(&Response::Summary(summary))).unwrap();
        assert_eq!(line["type"], "summary");
        assert_eq!(line["reason"], "idle_timeout");
    }
}
