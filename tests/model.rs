//! The shipped model: it loads from the binary, classifies generated clips (espeak-ng speech,
//! synthetic tones, silence) without error, with probabilities that sum to 1, and its card is
//! consistent with its weights.

mod common;

use candle_core::Device;
use sentio::audio::decode_path;
use sentio::classify::classify_audio;
use sentio::model::{Architecture, LABELS, Model};
use sentio::pipeline::DEFAULT_SILENCE_DBFS;

#[test]
fn the_shipped_model_classifies_generated_clips() {
    let model = Model::default_model(&Device::Cpu).unwrap();
    assert_eq!(model.card.labels, LABELS.map(String::from).to_vec());
    assert!(matches!(
        model.card.architecture,
        Architecture::Cnn2d(_)
            | Architecture::Logmel(_)
            | Architecture::Ensemble(_)
            | Architecture::ByBand(_)
    ));
    assert!(
        model.card.metrics["test_clean"]["uar"].as_f64().is_some(),
        "the card carries test metrics"
    );
    for name in [
        "speech_long_16k.wav",
        "speech_16k.wav",
        "speech_like_16k.wav",
        "speech_48k_stereo.wav",
        "speech_16k.mp3",
        "noise_bursts_16k.wav",
    ] {
        let audio = decode_path(&common::fixture(name)).unwrap();
        let clip = classify_audio(&model, &audio, DEFAULT_SILENCE_DBFS).unwrap();
        assert!(!clip.windows.is_empty(), "{name}");
        assert!(
            LABELS.contains(&clip.emotion.as_str()),
            "{name}: {}",
            clip.emotion
        );
        assert!(
            (clip.mean.iter().sum::<f32>() - 1.0).abs() < 1e-4,
            "{name}: {:?}",
            clip.mean
        );
        for w in &clip.windows {
            let p = w.probabilities.as_ref().unwrap();
            assert!(p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
            assert!(
                (p.iter().sum::<f32>() - 1.0).abs() < 1e-4,
                "{name} window {}",
                w.index
            );
        }
    }
    // Digital silence is gated, not classified.
    let silence = sentio::audio::DecodedAudio {
        samples: vec![0.0; 48_000],
        sample_rate: 16_000,
    };
    let clip = classify_audio(&model, &silence, DEFAULT_SILENCE_DBFS).unwrap();
    assert_eq!(clip.emotion, "silence");
    assert!(clip.windows.iter().all(|w| !w.speech));
}

#[test]
fn the_seed_model_directory_loads_and_predicts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/seed");
    let model = Model::load_dir(&dir, &Device::Cpu).unwrap();
    assert!(matches!(model.card.architecture, Architecture::Seed(_)));
    let audio = decode_path(&common::fixture("speech_long_16k.wav")).unwrap();
    let clip = classify_audio(&model, &audio, DEFAULT_SILENCE_DBFS).unwrap();
    assert_eq!(clip.windows.len(), 6);
    assert!((clip.mean.iter().sum::<f32>() - 1.0).abs() < 1e-4);
}

/// One member of the shipped `by_band` model as a model of its own: its network and
/// statistics, its weights without the member's prefix.
fn member_model(model: &Model, member: &sentio::model::ensemble::Member, prefix: &str) -> Model {
    let card = sentio::model::ModelCard {
        architecture: member.architecture.clone(),
        normalization: member.normalization.clone(),
        ..model.card.clone()
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let weights: std::collections::HashMap<String, candle_core::Tensor> =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)
            .unwrap()
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v)))
            .collect();
    let out = std::env::temp_dir().join(format!("sentio-{}-{prefix}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    candle_core::safetensors::save(&weights, out.join("model.safetensors")).unwrap();
    std::fs::write(
        out.join("model.json"),
        serde_json::to_string(&card).unwrap(),
    )
    .unwrap();
    let member = Model::load_dir(&out, &Device::Cpu).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    member
}

/// The shipped model reads phone audio (8 kHz G.711, sent at 8 kHz) with its narrowband
/// member and wideband audio with its wideband member: each answer equals that member's
/// own, clip by clip.
#[test]
fn the_shipped_model_reads_each_line_with_its_own_member() {
    use sentio::audio::{DecodedAudio, SampleFormat, StreamResampler, pcm::round_trip};
    let model = Model::default_model(&Device::Cpu).unwrap();
    let Architecture::ByBand(config) = &model.card.architecture else {
        panic!("the default is a by_band model");
    };
    let wideband = member_model(&model, &config.wideband, "wideband.");
    let narrowband = member_model(&model, &config.narrowband, "narrowband.");
    let clean = decode_path(&common::fixture("speech_long_16k.wav")).unwrap();
    let line = StreamResampler::resample_all(clean.sample_rate, 8_000, &clean.samples).unwrap();
    for (audio, member) in [
        (clean.clone(), &wideband),
        (
            DecodedAudio {
                samples: round_trip(&line, SampleFormat::MuLaw),
                sample_rate: 8_000,
            },
            &narrowband,
        ),
        (
            DecodedAudio {
                samples: round_trip(&line, SampleFormat::ALaw),
                sample_rate: 8_000,
            },
            &narrowband,
        ),
    ] {
        let ours = classify_audio(&model, &audio, DEFAULT_SILENCE_DBFS).unwrap();
        let theirs = classify_audio(member, &audio, DEFAULT_SILENCE_DBFS).unwrap();
        assert!(ours.windows.len() >= 3);
        for (a, b) in ours.mean.iter().zip(&theirs.mean) {
            assert!((a - b).abs() < 1e-5, "{:?} vs {:?}", ours.mean, theirs.mean);
        }
    }
    // The two members do read phone audio differently (the routing is not a no-op).
    let phone = DecodedAudio {
        samples: round_trip(&line, SampleFormat::MuLaw),
        sample_rate: 8_000,
    };
    let a = classify_audio(&wideband, &phone, DEFAULT_SILENCE_DBFS).unwrap();
    let b = classify_audio(&narrowband, &phone, DEFAULT_SILENCE_DBFS).unwrap();
    assert!(
        a.mean
            .iter()
            .zip(&b.mean)
            .any(|(x, y)| (x - y).abs() > 1e-3)
    );
}
