//! Front-end speed: features of a 3 s clip per feature family (compare with librosa via
//! `benches/peers/librosa_features.py`), and the per-hop cost of the streaming front end
//! (decode + resample + incremental log-mel for 10 ms of 8 kHz mu-law audio), and the whole
//! window pipeline on a contact-center call shape.

use criterion::{Criterion, criterion_group, criterion_main};
use sentio::FeatureConfig;
use sentio::audio::pcm::encode;
use sentio::audio::{PcmDecoder, SampleFormat, StreamResampler, decode_path};
use sentio::features::{self, AdaptationConfig, FeatureKind, StreamingLogMel};
use sentio::model::ModelCard;
use sentio::model::builtin::Builtin;
use sentio::model::seed::seed_features;
use sentio::pipeline::{WindowPipeline, WindowSpec};

fn clip_3s(rate: u32) -> Vec<f32> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/speech_long_16k.wav");
    let audio = decode_path(&path).unwrap();
    let y = StreamResampler::resample_all(16_000, rate, &audio.samples).unwrap();
    y[..3 * rate as usize].to_vec()
}

fn clip_features(c: &mut Criterion) {
    let librosa = FeatureConfig::default();
    let y22 = clip_3s(librosa.sr);
    let mut group = c.benchmark_group("clip_3s_librosa_defaults_22k");
    for kind in [
        FeatureKind::Mel,
        FeatureKind::Logmel,
        FeatureKind::Mfcc,
        FeatureKind::Chroma,
        FeatureKind::Zcr,
        FeatureKind::Rms,
    ] {
        group.bench_function(format!("{kind:?}").to_lowercase(), |b| {
            b.iter(|| features::compute(kind, &y22, &librosa).unwrap())
        });
    }
    group.bench_function("seed_162_vector", |b| {
        b.iter(|| seed_features(&y22, &librosa).unwrap())
    });
    group.finish();
    let streaming = FeatureConfig::streaming_16k();
    let y16 = clip_3s(16_000);
    c.bench_function("clip_3s_logmel_16k_512_160_64", |b| {
        b.iter(|| features::compute(FeatureKind::Logmel, &y16, &streaming).unwrap())
    });
}

fn per_hop(c: &mut Criterion) {
    let config = FeatureConfig::streaming_16k();
    let y8 = clip_3s(8_000);
    let bytes = encode(&y8, SampleFormat::MuLaw);
    // One hop of 8 kHz mu-law = 80 bytes; run a whole 3 s stream and divide by its 300 hops.
    c.bench_function(
        "stream_3s_mulaw8k_decode_resample_logmel_per_300_hops",
        |b| {
            b.iter(|| {
                let mut decoder = PcmDecoder::new(SampleFormat::MuLaw, 1).unwrap();
                let mut resampler = StreamResampler::new(8_000, 16_000).unwrap();
                let mut logmel = StreamingLogMel::new(&config).unwrap();
                let (mut samples, mut resampled) = (Vec::new(), Vec::new());
                for hop in bytes.chunks(80) {
                    samples.clear();
                    resampled.clear();
                    decoder.decode(hop, &mut samples).unwrap();
                    resampler.process(&samples, &mut resampled).unwrap();
                    logmel.push(&resampled);
                }
                logmel.frames_held()
            })
        },
    );
}

/// The whole stream pipeline as a session runs it (decode, resampling with no hold-back,
/// windows, log-mel frames and each window's network input) on a contact-center call shape:
/// 8 kHz mu-law in 20 ms frames, 2 s windows every second, over 12 s (11 windows).
fn call_pipeline(c: &mut Criterion) {
    let model = Builtin::named("default")
        .unwrap()
        .load(&candle_core::Device::Cpu)
        .unwrap();
    let spec = WindowSpec::resolve(&model.card, 0, 0).unwrap();
    let bytes = encode(&clip_3s(8_000).repeat(4), SampleFormat::MuLaw);
    // The same call read against the caller's running spectrum (`features::adaptation`),
    // and read window by window.
    let adapting = ModelCard {
        adaptation: Some(model.card.adaptation.clone().unwrap_or(AdaptationConfig {
            prior: vec![-45.0; model.card.features.n_mels],
            prior_windows: 4.0,
        })),
        ..model.card.clone()
    };
    let plain = ModelCard {
        adaptation: None,
        ..model.card.clone()
    };
    for (name, card) in [("", &plain), ("_adapting", &adapting)] {
        c.bench_function(
            &format!("stream_12s_mulaw8k_20ms_frames_window_pipeline{name}"),
            |b| {
                b.iter(|| {
                    let mut decoder = PcmDecoder::new(SampleFormat::MuLaw, 1).unwrap();
                    let mut pipeline = WindowPipeline::new(card, 8_000, spec, -200.0).unwrap();
                    let (mut samples, mut windows) = (Vec::new(), Vec::new());
                    for frame in bytes.chunks(160) {
                        samples.clear();
                        decoder.decode(frame, &mut samples).unwrap();
                        pipeline.push(&samples, &mut windows).unwrap();
                    }
                    windows.len()
                })
            },
        );
    }
}

criterion_group!(benches, clip_features, per_hop, call_pipeline);
criterion_main!(benches);
