//! Tests of `train.rs`.
use super::*;
use candle_nn::VarBuilder;
use sentio::FeatureConfig;
use sentio::model::{Architecture, LABELS, Normalization, WindowInput};

fn card() -> ModelCard {
    ModelCard {
        id: "test".into(),
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
        features: FeatureConfig::streaming_16k(),
        window_ms: 2000,
        hop_ms: 1000,
        min_window_ms: 500,
        max_window_ms: 8000,
        normalization: Normalization {
            mean: vec![0.0; 64],
            std: vec![10.0; 64],
        },
        architecture: Architecture::default_of("logmel").unwrap(),
        training: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
        license: String::new(),
        adaptation: None,
    }
}

/// Synthetic "clips": class c is loud in mel bands 8c..8c+8, quiet elsewhere.
fn synthetic(n: usize, frames: usize) -> (Vec<usize>, Vec<Vec<CachedClip>>) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut labels = Vec::new();
    let mut clips = Vec::new();
    for i in 0..n {
        let label = i % 8;
        let mut db = vec![0.0f32; frames * 64];
        for (k, v) in db.iter_mut().enumerate() {
            let band = k % 64;
            *v = rng.random_range(-60.0..-40.0) + if band / 8 == label { 40.0 } else { 0.0 };
        }
        let window = WindowInput {
            frames,
            values: db.clone(),
        };
        labels.push(label);
        clips.push(vec![CachedClip {
            frames,
            logmel_db: db,
            windows: vec![window],
        }]);
    }
    (labels, clips)
}

/// The card's network on the CPU, with its variables.
fn build_net(card: &ModelCard) -> (VarMap, Box<dyn Network>) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = card.architecture.spec().build(card, vb).unwrap();
    (varmap, net)
}

/// A tiny run on synthetic clips; returns its history (loss, validation UAR).
fn tiny_run(corpus_adversary: f32, mixup_alpha: f32, average_last_epochs: usize) -> Trained {
    let (labels, clips) = synthetic(64, 60);
    let train_set = TrainSet {
        labels: labels.clone(),
        // Two "corpora" that say nothing about the class.
        corpora: (0..labels.len()).map(|i| (i / 8) % 2).collect(),
        variants: clips.iter().map(|v| v.as_slice()).collect(),
        adaptation: None,
    };
    let val: Vec<&CachedClip> = clips.iter().map(|v| &v[0]).collect();
    let config = TrainConfig {
        seed: 1,
        recipe: Recipe {
            epochs: 8,
            batch_size: 16,
            weight_decay: 0.0,
            crop_frames: 50,
            mixup_alpha,
            spec_augment: false,
            corpus_adversary,
            average_last_epochs,
            ..Recipe::default()
        },
    };
    train(
        &card(),
        &config,
        &train_set,
        &val,
        &labels,
        &Device::Cpu,
        None,
    )
    .unwrap()
}

/// The mean of the last epochs' weights is what the run returns, and it classifies (the
/// history scores single epochs; the returned network is scored here).
#[test]
fn a_tiny_run_keeping_the_mean_of_its_last_epochs_learns_the_classes() {
    let trained = tiny_run(0.0, 0.0, 3);
    let (labels, clips) = synthetic(64, 60);
    let val: Vec<&CachedClip> = clips.iter().map(|v| &v[0]).collect();
    let input = card().architecture.spec().input();
    let (uar, _) = validate(trained.net.as_ref(), input, &Device::Cpu, &val, &labels).unwrap();
    assert!(uar > 0.95, "{uar}");
}

#[test]
fn a_tiny_run_overfits_synthetic_clips() {
    let history = tiny_run(0.0, 0.0, 0).history;
    assert!(history.last().unwrap().1 > 0.95, "{history:?}");
}

/// With the corpus adversary on (and mixup mixing its targets), the emotion is still learnt.
#[test]
fn a_tiny_run_with_the_corpus_adversary_still_learns_the_classes() {
    let history = tiny_run(1.0, 0.3, 0).history;
    assert!(history.last().unwrap().1 > 0.9, "{history:?}");
}

#[test]
fn saved_weights_load_back_to_identical_logits() {
    for kind in Architecture::NAMES {
        let mut card = card();
        card.architecture = Architecture::default_of(kind).unwrap();
        if kind == "cnn2d" {
            card.normalization = Normalization::default();
        }
        if kind == "seed" {
            card.features = FeatureConfig::default();
            card.normalization = Normalization {
                mean: vec![0.1; 162],
                std: vec![2.0; 162],
            };
        }
        let (varmap, net) = build_net(&card);
        init_vars(&varmap, 3).unwrap();
        let shape: Vec<usize> = if kind == "seed" {
            vec![4, 162]
        } else {
            vec![4, 120, 64]
        };
        let x = Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap();
        let before = net.forward_t(&x, false).unwrap().to_vec2::<f32>().unwrap();
        let path = std::env::temp_dir().join(format!(
            "sentio-roundtrip-{kind:?}-{}.safetensors",
            std::process::id()
        ));
        varmap.save(&path).unwrap();
        let weights = std::fs::read(&path).unwrap();
        let (_, loaded) = sentio::model::load_network(
            &serde_json::to_string(&card).unwrap(),
            &weights,
            &Device::Cpu,
        )
        .unwrap();
        let after = loaded
            .forward_t(&x, false)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(before, after, "{kind:?}");
        // The serving pass (batch norm folded) computes the same logits.
        let served = loaded.inference().unwrap().forward(&x).unwrap();
        let served = served.to_vec2::<f32>().unwrap();
        for (a, b) in before.iter().flatten().zip(served.iter().flatten()) {
            assert!((a - b).abs() < 1e-3, "{kind}: served {b} vs trained {a}");
        }
        std::fs::remove_file(&path).unwrap();
    }
}

/// Weight averaging keeps the element-wise mean of the snapshots it was given.
#[test]
fn weight_average_is_the_mean_of_its_snapshots() {
    let mut average = WeightAverage::default();
    assert!(average.mean().unwrap().is_none());
    for values in [[1.0f32, -2.0], [3.0, 4.0], [5.0, 7.0]] {
        let snapshot =
            HashMap::from([("w".to_string(), Tensor::new(&values, &Device::Cpu).unwrap())]);
        average.add(&snapshot).unwrap();
    }
    let mean = average.mean().unwrap().unwrap();
    assert_eq!(mean["w"].to_vec1::<f32>().unwrap(), [3.0, 3.0]);
}

/// Corpus balancing draws each corpus' share as its size to the power 1 - alpha.
#[test]
fn corpus_balance_evens_out_the_corpora() {
    let (labels, clips) = synthetic(64, 60);
    let recipe = Recipe {
        corpus_balance: 1.0,
        ..Recipe::default()
    };
    let card = card();
    let (_varmap, net) = build_net(&card);
    let mut run = Run {
        card: &card,
        recipe: &recipe,
        net,
        device: &Device::Cpu,
        rng: StdRng::seed_from_u64(3),
        class_weights: Tensor::ones((1, 8), DType::F32, &Device::Cpu).unwrap(),
        beta: Beta::new(1.0, 1.0).unwrap(),
        corpus_weights: vec![1.0; 2],
        adversary: None,
    };
    // 56 clips of corpus 0 and 8 of corpus 1.
    let corpora: Vec<usize> = (0..labels.len()).map(|i| usize::from(i >= 56)).collect();
    let samples: Vec<(usize, usize)> = (0..clips.len()).map(|c| (c, 0)).collect();
    let mut second = 0;
    for _ in 0..50 {
        let order = run.epoch_order(&samples, &corpora);
        assert_eq!(order.len(), samples.len());
        second += order.iter().filter(|&&(c, _)| corpora[c] == 1).count();
    }
    // Half of 50 x 64 draws, against 8/64 of them without balancing.
    let share = second as f64 / (50.0 * 64.0);
    assert!((share - 0.5).abs() < 0.05, "{share}");
}
