//! Raw stream decoding (`PcmDecoder`): what `StreamEmotions` does with every audio chunk.
//!
//! Checks that no format, channel count or chunking panics; that the output is exactly one
//! sample per complete frame of the bytes accepted so far, whatever the chunking; that the
//! partial frame carried over is always shorter than a frame; that integer formats decode
//! into [-1, 1]; and that f32 input that is not finite or beyond ±32768 is rejected (the
//! server's INVALID_ARGUMENT) with nothing appended and the decoder unchanged, never passed on.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sentio::audio::pcm::MAX_CHANNELS;
use sentio::audio::{PcmDecoder, SampleFormat};

/// Names a client or the CLI may give, valid and not (parsed with `FromStr`).
const FORMAT_NAMES: &[&str] = &[
    "s16le",
    "f32le",
    "mulaw",
    "alaw",
    "S16",
    "pcm_f32le",
    "ulaw",
    "PCMA",
    "s24le",
    "",
    "f64le",
];

#[derive(Arbitrary, Debug)]
struct Input {
    format: u8,
    channels: Channels,
    chunks: Vec<Vec<u8>>,
}

/// Mostly small counts around the valid 1..=32, sometimes huge ones.
#[derive(Arbitrary, Debug)]
enum Channels {
    Small(u8),
    Any(usize),
}

fuzz_target!(|input: Input| {
    let name = FORMAT_NAMES[input.format as usize % FORMAT_NAMES.len()];
    let Ok(format) = name.parse::<SampleFormat>() else {
        return;
    };
    let channels = match input.channels {
        Channels::Small(n) => n as usize % 40,
        Channels::Any(n) => n,
    };
    let decoder = PcmDecoder::new(format, channels);
    assert_eq!(
        decoder.is_ok(),
        (1..=MAX_CHANNELS).contains(&channels),
        "channel count {channels} validated wrongly"
    );
    let Ok(mut decoder) = decoder else {
        return;
    };
    let bps = format.bytes_per_sample();
    let frame = bps * channels;

    let mut out = Vec::new();
    // Every byte of every chunk that decoded without error, in order.
    let mut accepted = Vec::new();
    for chunk in &input.chunks {
        let before = out.len();
        let pending = decoder.pending_bytes();
        // The bytes this call completes frames from: the carry, then the chunk.
        let carried = &accepted[accepted.len() - pending..];
        let whole = (pending + chunk.len()) / frame * frame;
        let joined: Vec<u8> = carried.iter().chain(chunk).copied().collect();
        let non_finite = format == SampleFormat::F32Le
            && joined[..whole].chunks_exact(4).any(|b| {
                let v = f32::from_le_bytes(b.try_into().unwrap());
                !v.is_finite() || v.abs() > sentio::audio::MAX_FLOAT_SAMPLE
            });
        match decoder.decode(chunk, &mut out) {
            Ok(()) => {
                assert!(!non_finite, "a non-finite or out-of-range f32 sample was accepted");
                accepted.extend_from_slice(chunk);
                assert_eq!(out.len() - before, whole / frame);
            }
            Err(err) => {
                // Only non-finite or out-of-range floats are malformed; the rest is audio.
                assert!(non_finite, "valid audio rejected: {err}");
                assert_eq!(out.len(), before, "a rejected chunk appended samples");
                assert_eq!(
                    decoder.pending_bytes(),
                    pending,
                    "a rejected chunk moved the carry"
                );
            }
        }
        assert!(decoder.pending_bytes() < frame);
    }

    assert_eq!(out.len(), accepted.len() / frame);
    assert_eq!(decoder.pending_bytes(), accepted.len() % frame);
    for &sample in &out {
        // Every format: finite, since the model cannot do anything useful with NaN or inf.
        assert!(
            sample.is_finite(),
            "{format:?} x{channels} decoded to {sample}"
        );
        assert!(sample.abs() <= sentio::audio::MAX_FLOAT_SAMPLE);
        if format != SampleFormat::F32Le {
            assert!(
                (-1.0..=1.0).contains(&sample),
                "{format:?} decoded to {sample}"
            );
        }
    }

    // The chunking must not matter: one call over the same bytes gives the same samples.
    let mut whole = PcmDecoder::new(format, channels).unwrap();
    let mut reference = Vec::new();
    whole.decode(&accepted, &mut reference).unwrap();
    assert!(
        reference
            .iter()
            .map(|s| s.to_bits())
            .eq(out.iter().map(|s| s.to_bits())),
        "chunked and one-shot decoding differ"
    );
});
