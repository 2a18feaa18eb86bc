//! librosa parity: every feature family, frame by frame, against references written by
//! `tests/reference/make_fixtures.py` (librosa 0.11.0, numpy 2.4.6) for real and synthetic
//! fixture audio. Tolerances, and why:
//! - mel power: |d| <= 1e-4 * |ref| + 1e-9 * peak. Sentio's FFT is float32, librosa's
//!   float64 rounded to complex64; both sum float32 mel weights. Values more than 90 dB
//!   below the matrix peak are float32 rounding noise in both, hence the peak-relative floor.
//! - log-mel: 1e-3 dB (10 log10 of a 2.3e-4 relative power error), and the top_db floor
//!   must land on the same value.
//! - MFCC: 2e-3 absolute (a DCT of 64-128 log-mel values, each within 1e-3 dB).
//! - chroma: same argmax in every frame with energy, 1e-3 absolute per bin (tuning can
//!   differ by one 0.01-bin histogram step if a float32 residual sits on a bin edge; the
//!   estimated tuning itself must match within 0.01).
//! - ZCR: exact (counts of sign changes); RMS: 1e-5 relative.

use std::path::Path;

use sentio::FeatureConfig;
use sentio::audio::decode_path;
use sentio::features::{self, FeatureKind, FrameMatrix, SpectrumPower};
use serde_json::Value;

struct Reference {
    name: String,
    samples: Vec<f32>,
    config: FeatureConfig,
    features: Value,
}

fn references() -> Vec<Reference> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["librosa_version"], "0.11.0");
        let wav = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(json["fixture"].as_str().unwrap());
        let audio = decode_path(&wav).unwrap();
        assert_eq!(
            audio.sample_rate as u64,
            json["sample_rate"].as_u64().unwrap()
        );
        let c = &json["config"];
        let config = FeatureConfig {
            sr: audio.sample_rate,
            n_fft: c["n_fft"].as_u64().unwrap() as usize,
            hop_length: c["hop_length"].as_u64().unwrap() as usize,
            n_mels: c["n_mels"].as_u64().unwrap() as usize,
            fmin: c["fmin"].as_f64().unwrap() as f32,
            fmax: c["fmax"].as_f64().map(|f| f as f32),
            n_mfcc: c["n_mfcc"].as_u64().unwrap() as usize,
            top_db: c["top_db"].as_f64().map(|f| f as f32),
            center: c["center"].as_bool().unwrap(),
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push(Reference {
            name,
            samples: audio.samples,
            config,
            features: json["features"].clone(),
        });
    }
    assert!(out.len() >= 5, "reference files missing");
    out
}

fn rows(value: &Value) -> Vec<Vec<f32>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// Compares a Sentio matrix with a librosa one; `tol(expected, peak)` is the allowed error.
fn compare(what: &str, ours: &FrameMatrix, theirs: &Value, tol: impl Fn(f32, f32) -> f32) -> f32 {
    let expected = rows(theirs);
    let got = ours.to_rows();
    assert_eq!(
        (got.len(), got[0].len()),
        (expected.len(), expected[0].len()),
        "{what}: shape"
    );
    let peak = expected
        .iter()
        .flatten()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    let mut worst = 0.0f32;
    for (f, (g_row, e_row)) in got.iter().zip(&expected).enumerate() {
        for (t, (g, e)) in g_row.iter().zip(e_row).enumerate() {
            let err = (g - e).abs();
            assert!(
                err <= tol(*e, peak),
                "{what}: feature {f} frame {t}: sentio {g} librosa {e}"
            );
            worst = worst.max(err / tol(*e, peak));
        }
    }
    worst
}

#[test]
fn every_feature_family_matches_librosa() {
    for r in references() {
        let cfg = &r.config;
        let f = |kind| features::compute(kind, &r.samples, cfg).unwrap();
        let n = &r.name;
        let mel = compare(
            &format!("{n} mel"),
            &f(FeatureKind::Mel),
            &r.features["mel"],
            |e, peak| 1e-4 * e.abs() + 1e-9 * peak,
        );
        let logmel = compare(
            &format!("{n} logmel"),
            &f(FeatureKind::Logmel),
            &r.features["logmel"],
            |_, _| 1e-3,
        );
        let mfcc = compare(
            &format!("{n} mfcc"),
            &f(FeatureKind::Mfcc),
            &r.features["mfcc"],
            |_, _| 2e-3,
        );
        let zcr = compare(
            &format!("{n} zcr"),
            &f(FeatureKind::Zcr),
            &r.features["zcr"],
            |_, _| 1e-7,
        );
        let rms = compare(
            &format!("{n} rms"),
            &f(FeatureKind::Rms),
            &r.features["rms"],
            |e, _| 1e-5 * e.abs() + 1e-9,
        );
        eprintln!(
            "{n}: worst error / tolerance: mel {mel:.3} logmel {logmel:.3} mfcc {mfcc:.3} zcr {zcr:.3} rms {rms:.3}"
        );
    }
}

#[test]
fn chroma_and_tuning_match_librosa() {
    for r in references() {
        let cfg = &r.config;
        for (power, key) in [
            (SpectrumPower::Power, "power"),
            (SpectrumPower::Magnitude, "magnitude"),
        ] {
            let spec = features::Spectrogram::new(cfg.n_fft).compute(
                &r.samples,
                cfg.hop_length,
                cfg.center,
                power,
            );
            let tuning = features::estimate_tuning(&spec, cfg.sr, cfg.n_fft);
            let expected_tuning = r.features[format!("tuning_{key}")].as_f64().unwrap();
            assert!(
                (tuning - expected_tuning).abs() <= 0.0100001,
                "{} {key}: tuning {tuning} vs {expected_tuning}",
                r.name
            );
            let chroma = features::chroma_stft(&spec, cfg.sr, cfg.n_fft);
            let expected = rows(&r.features[format!("chroma_{key}")]);
            let worst = compare(
                &format!("{} chroma {key}", r.name),
                &chroma,
                &r.features[format!("chroma_{key}")],
                |_, _| 1e-3,
            );
            for t in 0..chroma.n_frames() {
                let ours = chroma.frame(t);
                let theirs: Vec<f32> = expected.iter().map(|row| row[t]).collect();
                if theirs.iter().all(|&v| v == 0.0) {
                    continue;
                }
                let argmax =
                    |v: &[f32]| (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
                assert_eq!(
                    argmax(ours),
                    argmax(&theirs),
                    "{} chroma {key} frame {t}",
                    r.name
                );
            }
            eprintln!(
                "{} chroma {key}: tuning {tuning:+.2} (librosa {expected_tuning:+.2}), worst error / tolerance {worst:.3}",
                r.name
            );
        }
    }
}
