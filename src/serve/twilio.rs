//! The Twilio Media Streams protocol, as a state machine with no I/O: each text message of
//! the WebSocket is parsed and checked against the call's state, and becomes an action
//! (open the tracks' streams, audio for a track, stop) or a protocol error with the close
//! code that ends the WebSocket. Messages: `connected`, `start` (`streamSid`, `callSid`,
//! `tracks`, `mediaFormat`, `customParameters`), `media` (`track`, `chunk`, `timestamp`,
//! base64 `payload`), `mark`, `dtmf`, `stop`.

use std::collections::HashMap;

use base64::Engine;
use serde::Deserialize;

/// WebSocket close codes (RFC 6455 section 7.4.1) and what ends a connection with each.
pub mod close {
    /// `stop` received: the call ended normally.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down (its drain timeout passed).
    pub const GOING_AWAY: u16 = 1001;
    /// A binary frame, an unknown event, or a media format other than 8 kHz mono mu-law.
    pub const UNSUPPORTED: u16 = 1003;
    /// Malformed JSON, a message missing a field, bad base64.
    pub const INVALID_DATA: u16 = 1007;
    /// Out of sequence: media before start, a second start, an unknown track, a chunk out
    /// of order; or no valid API key.
    pub const POLICY: u16 = 1008;
    /// The server refused the streams (its stream limit, or draining): try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Why a WebSocket is closed: its close code and a reason (also logged).
#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: u16,
    pub reason: String,
}

fn error(code: u16, reason: impl Into<String>) -> ProtocolError {
    ProtocolError {
        code,
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start {
    stream_sid: String,
    #[serde(default)]
    call_sid: String,
    tracks: Vec<String>,
    media_format: MediaFormat,
    #[serde(default)]
    custom_parameters: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaFormat {
    encoding: String,
    sample_rate: u32,
    channels: u32,
}

#[derive(Deserialize)]
struct Media {
    track: String,
    chunk: String,
    payload: String,
}

/// What the connector does with a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing (connected, mark, dtmf).
    None,
    /// Open one stream per track; `api_key` from the custom parameters, if any.
    Start {
        stream_sid: String,
        call_sid: String,
        tracks: Vec<String>,
        api_key: Option<String>,
    },
    /// Mu-law bytes for the track at this index of `Start::tracks`.
    Audio { track: usize, mulaw: Vec<u8> },
    /// The call ended.
    Stop,
}

/// One WebSocket's call.
#[derive(Default)]
pub struct Call {
    /// Per track of `start`: its name and the chunk number expected next.
    tracks: Vec<(String, u64)>,
    started: bool,
}

impl Call {
    /// Parses and checks one text message.
    pub fn handle(&mut self, text: &str) -> Result<Action, ProtocolError> {
        let message: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| error(close::INVALID_DATA, format!("malformed JSON: {e}")))?;
        let event = message
            .get("event")
            .and_then(|e| e.as_str())
            .ok_or_else(|| error(close::INVALID_DATA, "a message without an `event` string"))?;
        match event {
            "connected" | "mark" | "dtmf" => Ok(Action::None),
            "start" => self.start(field(&message, "start")?),
            "media" => self.media(field(&message, "media")?),
            "stop" if self.started => Ok(Action::Stop),
            "stop" => Err(error(close::POLICY, "`stop` before `start`")),
            other => Err(error(
                close::UNSUPPORTED,
                format!("unknown event `{}`", other.escape_debug()),
            )),
        }
    }

    fn start(&mut self, start: Start) -> Result<Action, ProtocolError> {
        if self.started {
            return Err(error(close::POLICY, "a second `start` on one WebSocket"));
        }
        let format = &start.media_format;
        if format.encoding != "audio/x-mulaw" || format.sample_rate != 8000 || format.channels != 1
        {
            return Err(error(
                close::UNSUPPORTED,
                format!(
                    "media format {} at {} Hz, {} channel(s): Twilio streams are audio/x-mulaw at 8000 Hz, 1 channel",
                    format.encoding, format.sample_rate, format.channels
                ),
            ));
        }
        let known = ["inbound", "outbound"];
        // Each track once, in the order given (a repeated name would open two streams with
        // one id).
        let mut tracks: Vec<String> = Vec::new();
        for track in &start.tracks {
            if !tracks.contains(track) {
                tracks.push(track.clone());
            }
        }
        if tracks.is_empty() || tracks.iter().any(|t| !known.contains(&t.as_str())) {
            return Err(error(
                close::INVALID_DATA,
                format!(
                    "`start.tracks` {:?}: expected inbound and/or outbound",
                    start.tracks
                ),
            ));
        }
        if start.stream_sid.is_empty() || start.stream_sid.len() > 128 {
            return Err(error(
                close::INVALID_DATA,
                "`start.streamSid` empty or over 128 bytes",
            ));
        }
        self.started = true;
        self.tracks = tracks.iter().map(|t| (t.clone(), 1)).collect();
        Ok(Action::Start {
            stream_sid: start.stream_sid,
            call_sid: start.call_sid,
            tracks,
            api_key: start.custom_parameters.get("apiKey").cloned(),
        })
    }

    fn media(&mut self, media: Media) -> Result<Action, ProtocolError> {
        if !self.started {
            return Err(error(close::POLICY, "`media` before `start`"));
        }
        let Some(track) = self.tracks.iter().position(|(t, _)| *t == media.track) else {
            return Err(error(
                close::POLICY,
                format!(
                    "media for track `{}`, not one `start` announced",
                    media.track.escape_debug()
                ),
            ));
        };
        let chunk: u64 = media.chunk.parse().map_err(|_| {
            error(
                close::INVALID_DATA,
                format!("`media.chunk` {:?} is not a number", media.chunk),
            )
        })?;
        let expected = &mut self.tracks[track].1;
        if chunk != *expected {
            return Err(error(
                close::POLICY,
                format!(
                    "chunk {chunk} of track {} out of order: expected {expected}",
                    media.track
                ),
            ));
        }
        *expected += 1;
        let mulaw = base64::engine::general_purpose::STANDARD
            .decode(media.payload.as_bytes())
            .map_err(|e| {
                error(
                    close::INVALID_DATA,
                    format!("`media.payload` is not base64: {e}"),
                )
            })?;
        Ok(Action::Audio { track, mulaw })
    }
}

/// The event's body, as its type.
fn field<T: serde::de::DeserializeOwned>(
    message: &serde_json::Value,
    name: &str,
) -> Result<T, ProtocolError> {
    let value = message.get(name).ok_or_else(|| {
        error(
            close::INVALID_DATA,
            format!("a `{name}` event without its `{name}` object"),
        )
    })?;
    T::deserialize(value)
        .map_err(|e| error(close::INVALID_DATA, format!("malformed `{name}`: {e}")))
}

#[cfg(test)]
#[path = "twilio_tests.rs"]
mod tests;
