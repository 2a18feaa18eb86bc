//! Whole-file decoding (`decode_file`, symphonia): what `Classify` and `sentio classify` do
//! with an uploaded file.
//!
//! Any bytes, with any extension hint, must give `Ok` or a clean `Err`: no panic, no hang
//! (libFuzzer `-timeout`), no runaway allocation (`-rss_limit_mb` / `-malloc_limit_mb`).
//! `Ok` audio must be non-empty, finite, within ±32768 and have a positive sample rate.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentio::audio::decode_file;

/// The hint is not trusted: a wrong or unknown one must not change safety, only the probe.
const HINTS: &[Option<&str>] = &[
    None,
    Some("wav"),
    Some("flac"),
    Some("ogg"),
    Some("mp3"),
    Some("aiff"),
    Some("garbage"),
];

fuzz_target!(
    init: {
        // libfuzzer-sys aborts on every panic, even one `decode_file` catches and turns into
        // an error (symphonia still panics on some files). Report it and go on instead; a
        // panic that escapes `decode_file` still aborts, in libfuzzer-sys's own catch_unwind.
        std::panic::set_hook(Box::new(|info| eprintln!("caught panic: {info}")));
    },
    |data: &[u8]| {
    // The last byte picks the hint, so the file itself starts at byte 0 where magic
    // numbers live, and seed files stay valid files.
    let Some((&pick, _)) = data.split_last() else {
        return;
    };
    let hint = HINTS[pick as usize % HINTS.len()];
    if let Ok(audio) = decode_file(data.to_vec(), hint) {
        assert!(audio.sample_rate > 0);
        assert!(!audio.samples.is_empty());
        assert!(audio
            .samples
            .iter()
            .all(|s| s.is_finite() && s.abs() <= sentio::audio::MAX_FLOAT_SAMPLE));
    }
    }
);
