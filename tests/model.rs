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
        Architecture::Cnn2d(_) | Architecture::Logmel(_) | Architecture::Ensemble(_)
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
