//! The telephony connector's protocol (`serve::twilio::Call`): every text message of a
//! Twilio Media Streams WebSocket, one per line of the input (seeds: a scripted call in
//! `fuzz/seeds/twilio_messages/`).
//!
//! Parsing must never panic. A started call has one or two distinct tracks and a stream
//! id that fits the server's 256-byte limit once `:<track>` is added; audio goes to one of
//! them, its chunks in order; a violation carries one of the documented close codes and
//! ends the connection (nothing after it is read).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentio::serve::twilio::{Action, Call, close};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut call = Call::default();
    let mut tracks: Vec<String> = Vec::new();
    for message in text.lines() {
        match call.handle(message) {
            Ok(Action::Start {
                stream_sid,
                tracks: names,
                ..
            }) => {
                assert!(tracks.is_empty(), "a second start was accepted");
                assert!((1..=2).contains(&names.len()), "{names:?}");
                assert!(names[0] != names[names.len() - 1] || names.len() == 1);
                assert!(!stream_sid.is_empty() && stream_sid.len() + ":outbound".len() <= 256);
                tracks = names;
            }
            Ok(Action::Audio { track, .. }) => assert!(track < tracks.len()),
            Ok(Action::Stop) => assert!(!tracks.is_empty()),
            Ok(Action::None) => {}
            Err(e) => {
                let codes = [close::UNSUPPORTED, close::INVALID_DATA, close::POLICY];
                assert!(codes.contains(&e.code), "{e:?}");
                break;
            }
        }
    }
});
