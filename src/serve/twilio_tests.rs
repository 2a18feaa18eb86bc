//! Tests of `twilio.rs` on messages shaped as Twilio's documentation shows them.
use super::*;

const START: &str = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0","callSid":"CA1","tracks":["inbound","outbound"],"customParameters":{"apiKey":"k1"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}"#;

fn media(track: &str, chunk: u64, payload: &str) -> String {
    format!(
        r#"{{"event":"media","sequenceNumber":"{chunk}","media":{{"track":"{track}","chunk":"{chunk}","timestamp":"{}","payload":"{payload}"}},"streamSid":"MZ18"}}"#,
        chunk * 20
    )
}

#[test]
fn a_call_starts_streams_its_tracks_in_order_and_stops() {
    let mut call = Call::default();
    let connected = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;
    assert_eq!(call.handle(connected), Ok(Action::None));
    assert_eq!(
        call.handle(START),
        Ok(Action::Start {
            stream_sid: "MZ18ad3ab5a668481ce02b83e7395059f0".into(),
            call_sid: "CA1".into(),
            tracks: vec!["inbound".into(), "outbound".into()],
            api_key: Some("k1".into()),
        })
    );
    // "/39A" is base64 of 0xff 0xfd 0xc0.
    assert_eq!(
        call.handle(&media("outbound", 1, "//3A")),
        Ok(Action::Audio {
            track: 1,
            mulaw: vec![0xff, 0xfd, 0xc0]
        })
    );
    assert!(matches!(
        call.handle(&media("inbound", 1, "//3A")),
        Ok(Action::Audio { track: 0, .. })
    ));
    assert!(matches!(
        call.handle(&media("inbound", 2, "")),
        Ok(Action::Audio { track: 0, .. })
    ));
    let mark =
        r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ18","mark":{"name":"greeting"}}"#;
    assert_eq!(call.handle(mark), Ok(Action::None));
    let stop = r#"{"event":"stop","sequenceNumber":"5","streamSid":"MZ18","stop":{"accountSid":"AC1","callSid":"CA1"}}"#;
    assert_eq!(call.handle(stop), Ok(Action::Stop));
}

#[test]
fn each_protocol_violation_has_its_close_code() {
    let started = || {
        let mut call = Call::default();
        call.handle(START).unwrap();
        call
    };
    let code = |mut call: Call, text: &str| call.handle(text).unwrap_err().code;
    assert_eq!(code(Call::default(), "{not json"), close::INVALID_DATA);
    assert_eq!(
        code(Call::default(), r#"{"no":"event"}"#),
        close::INVALID_DATA
    );
    assert_eq!(
        code(Call::default(), r#"{"event":"party"}"#),
        close::UNSUPPORTED
    );
    assert_eq!(
        code(Call::default(), &media("inbound", 1, "AAAA")),
        close::POLICY
    );
    assert_eq!(code(Call::default(), r#"{"event":"stop"}"#), close::POLICY);
    assert_eq!(code(started(), START), close::POLICY);
    assert_eq!(
        code(started(), &media("inbound", 1, "not base64!")),
        close::INVALID_DATA
    );
    assert_eq!(code(started(), &media("inbound", 2, "AAAA")), close::POLICY);
    assert_eq!(code(started(), &media("both", 1, "AAAA")), close::POLICY);
    assert_eq!(
        code(
            started(),
            &media("inbound", 1, "AAAA").replace("\"1\"", "\"one\"")
        ),
        close::INVALID_DATA
    );
    assert_eq!(code(started(), r#"{"event":"media"}"#), close::INVALID_DATA);
    let pcm = START.replace("audio/x-mulaw", "audio/l16");
    assert_eq!(code(Call::default(), &pcm), close::UNSUPPORTED);
    let mut call = Call::default();
    let repeated = START.replace(
        r#"["inbound","outbound"]"#,
        r#"["inbound","outbound","inbound"]"#,
    );
    assert!(
        matches!(call.handle(&repeated), Ok(Action::Start { tracks, .. }) if tracks.len() == 2)
    );
    let no_tracks = START.replace(r#"["inbound","outbound"]"#, "[]");
    assert_eq!(code(Call::default(), &no_tracks), close::INVALID_DATA);
}
