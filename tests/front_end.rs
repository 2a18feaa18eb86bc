//! The front end end to end: every container decodes, streaming equals offline for any
//! chunking (resampling, windows and incremental log-mel frames) with no window held back
//! past its last sample, and bad input is a typed error, never a panic.

use std::path::PathBuf;

use proptest::prelude::*;
use sentio::audio::pcm::encode;
use sentio::audio::{PcmDecoder, SampleFormat, StreamResampler, decode_file, decode_path};
use sentio::features::{self, FeatureKind};
use sentio::features::{AdaptationConfig, SpeakerProfile};
use sentio::model::ModelCard;
use sentio::model::builtin::Builtin;
use sentio::pipeline::{PreparedWindow, WindowPipeline, WindowSpec};
use sentio::{Error, FeatureConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn every_container_decodes_to_the_same_speech() {
    let reference = decode_path(&fixture("speech_16k.wav")).unwrap();
    assert_eq!(reference.sample_rate, 16_000);
    assert_eq!(reference.samples.len(), 25_600);
    // Lossless containers give the same samples; lossy ones the same length and energy.
    for name in [
        "speech_16k.flac",
        "speech_16k.aiff",
        "speech_16k_aiff_named.wav",
    ] {
        let audio = decode_path(&fixture(name)).unwrap();
        assert_eq!(audio, reference, "{name}");
    }
    let energy = |s: &[f32]| s.iter().map(|v| v * v).sum::<f32>() / s.len() as f32;
    for name in ["speech_16k.ogg", "speech_16k.mp3"] {
        let audio = decode_path(&fixture(name)).unwrap();
        assert_eq!(audio.sample_rate, 16_000, "{name}");
        assert!(
            audio.samples.len().abs_diff(reference.samples.len()) < 2000,
            "{name}: {} samples",
            audio.samples.len()
        );
        let ratio = energy(&audio.samples) / energy(&reference.samples);
        assert!((0.7..1.3).contains(&ratio), "{name}: energy ratio {ratio}");
    }
    let stereo = decode_path(&fixture("speech_48k_stereo.wav")).unwrap();
    assert_eq!((stereo.sample_rate, stereo.samples.len()), (48_000, 38_400));
}

#[test]
fn bad_files_are_typed_errors() {
    let wav = std::fs::read(fixture("speech_16k.wav")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated header", wav[..20].to_vec()),
        ("header only", wav[..44].to_vec()),
        (
            "garbage",
            b"this is not audio at all, just some text".repeat(20),
        ),
        ("zeros", vec![0u8; 4096]),
    ];
    for (what, bytes) in cases {
        match decode_file(bytes, Some("wav")) {
            Err(Error::InvalidAudio(msg)) | Err(Error::UnsupportedAudio(msg)) => {
                assert!(!msg.is_empty(), "{what}")
            }
            other => panic!("{what}: expected an audio error, got {other:?}"),
        }
    }
    // A float WAV holding NaN.
    let mut nan_wav = wav_header_f32(16_000, 4);
    for v in [0.1f32, f32::NAN, 0.2, f32::INFINITY] {
        nan_wav.extend_from_slice(&v.to_le_bytes());
    }
    let err = decode_file(nan_wav, Some("wav")).unwrap_err();
    assert!(err.to_string().contains("finite"), "{err}");
    // A float WAV far beyond full scale.
    let mut loud_wav = wav_header_f32(16_000, 2);
    for v in [0.1f32, 1.0e20] {
        loud_wav.extend_from_slice(&v.to_le_bytes());
    }
    let err = decode_file(loud_wav, Some("wav")).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}

fn wav_header_f32(rate: u32, samples: u32) -> Vec<u8> {
    let data = samples * 4;
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 4).to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&32u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h
}

#[test]
fn absurd_rates_and_configs_are_rejected() {
    for rate in [0u32, 1, 7_999, 192_001, 10_000_000] {
        assert!(
            matches!(
                StreamResampler::new(rate, 16_000),
                Err(Error::SampleRate { .. })
            ),
            "{rate}"
        );
    }
    let bad = FeatureConfig {
        n_fft: 0,
        ..FeatureConfig::default()
    };
    assert!(matches!(
        features::compute(FeatureKind::Mel, &[0.0; 4096], &bad),
        Err(Error::Config(_))
    ));
    let bad = FeatureConfig {
        fmax: Some(20_000.0),
        ..FeatureConfig::default()
    };
    assert!(bad.validate().is_err());
    let short = FeatureConfig {
        center: false,
        ..FeatureConfig::default()
    };
    assert!(matches!(
        features::compute(FeatureKind::Mel, &[0.0; 100], &short),
        Err(Error::InvalidAudio(_))
    ));
}

/// Runs a byte stream through the stream pipeline as a session does, chunk by chunk:
/// the windows (index, start sample, network input) and the input samples each window's
/// end needed.
fn stream(bytes: &[u8], chunks: &[usize], rate: u32, spec: WindowSpec) -> Vec<PreparedWindow> {
    stream_with(&default_card(), bytes, chunks, rate, spec)
}

fn default_card() -> ModelCard {
    Builtin::named("default")
        .unwrap()
        .load(&candle_core::Device::Cpu)
        .unwrap()
        .card
}

fn stream_with(
    card: &ModelCard,
    bytes: &[u8],
    chunks: &[usize],
    rate: u32,
    spec: WindowSpec,
) -> Vec<PreparedWindow> {
    let mut decoder = PcmDecoder::new(SampleFormat::S16Le, 1).unwrap();
    let mut pipeline = WindowPipeline::new(card, rate, spec, -200.0).unwrap();
    let resampler = StreamResampler::new(rate, 16_000).unwrap();
    let (mut decoded, mut out) = (Vec::new(), Vec::new());
    let mut rest = bytes;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).min(rest.len());
        decoded.clear();
        decoder.decode(&rest[..n], &mut decoded).unwrap();
        rest = &rest[n..];
        let before = out.len();
        pipeline.push(&decoded, &mut out).unwrap();
        // No hold-back: a window comes out with the chunk that holds its last sample (the
        // input its end needs by the resampler's own count: at 22.05 kHz, end_ms * rate / 1000
        // can be one sample more than that, and chunks may end in between).
        for w in &out[before..] {
            let needed = resampler.input_for_output(w.end_ms * 16) as usize;
            let received = (bytes.len() - rest.len()) / 2;
            assert!(needed > received - decoded.len() && needed <= received);
        }
    }
    pipeline.finish(&mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any chunking gives the same windows, each as soon as its last sample is in, and each
    /// equals the offline computation on the input up to its end (resampled as a whole).
    #[test]
    fn random_chunkings_give_identical_windows_without_hold_back(
        chunks in prop::collection::vec(1usize..5000, 1..6),
        rate in prop::sample::select(vec![8_000u32, 16_000, 22_050, 44_100, 48_000]),
    ) {
        let speech = decode_path(&fixture("speech_16k.wav")).unwrap();
        let input = StreamResampler::resample_all(16_000, rate, &speech.samples).unwrap();
        let bytes = encode(&input, SampleFormat::S16Le);
        let spec = WindowSpec { window_ms: 1000, hop_ms: 500 };
        let whole = stream(&bytes, &[bytes.len()], rate, spec);
        let windows = stream(&bytes, &chunks, rate, spec);
        prop_assert_eq!(&windows, &whole);
        prop_assert!(windows.len() > 2);
        let mut decoded = Vec::new();
        PcmDecoder::new(SampleFormat::S16Le, 1).unwrap().decode(&bytes, &mut decoded).unwrap();
        let config = FeatureConfig::streaming_16k();
        for w in windows.iter().filter(|w| w.end_ms - w.start_ms == 1000) {
            let needed = StreamResampler::new(rate, 16_000).unwrap().input_for_output(w.end_ms * 16);
            let audio = StreamResampler::resample_all(rate, 16_000, &decoded[..needed as usize]).unwrap();
            let slice = &audio[w.start_ms as usize * 16..w.end_ms as usize * 16];
            let offline = features::compute(FeatureKind::Logmel, slice, &config).unwrap();
            prop_assert_eq!(&offline.data, &w.input.as_ref().unwrap().values);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// A model that reads windows against the caller's running spectrum: any chunking gives
    /// the same windows, and each is the unadapted window read against the profile of the
    /// windows before it and itself, in order.
    #[test]
    fn adapting_to_the_caller_is_chunking_independent(
        chunks in prop::collection::vec(1usize..5000, 1..6),
        rate in prop::sample::select(vec![8_000u32, 16_000, 44_100, 48_000]),
    ) {
        let plain = default_card();
        let adaptation = AdaptationConfig { prior: vec![-45.0; plain.features.n_mels], prior_windows: 4.0 };
        let card = ModelCard { adaptation: Some(adaptation.clone()), ..plain.clone() };
        let speech = decode_path(&fixture("speech_long_16k.wav")).unwrap();
        let input = StreamResampler::resample_all(16_000, rate, &speech.samples).unwrap();
        let bytes = encode(&input, SampleFormat::S16Le);
        let spec = WindowSpec { window_ms: 1000, hop_ms: 500 };
        let whole = stream_with(&card, &bytes, &[bytes.len()], rate, spec);
        let windows = stream_with(&card, &bytes, &chunks, rate, spec);
        prop_assert_eq!(&windows, &whole);
        let unadapted = stream_with(&plain, &bytes, &[bytes.len()], rate, spec);
        prop_assert_eq!(unadapted.len(), windows.len());
        let mut profile = SpeakerProfile::new(&adaptation);
        for (a, u) in windows.iter().zip(&unadapted) {
            let mut expected = u.input.as_ref().unwrap().values.clone();
            profile.adapt(&mut expected);
            prop_assert_eq!(&a.input.as_ref().unwrap().values, &expected);
            prop_assert_ne!(&a.input, &u.input);
        }
    }
}
