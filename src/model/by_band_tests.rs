use candle_core::{Device, Tensor};

use super::*;
use crate::audio::{StreamResampler, decode_path};
use crate::features::StreamingLogMel;

fn router() -> Router {
    Router {
        first_high_band: 4,
        gap_db: 68.0,
    }
}

/// (B, T, 6) windows: band values per row, the same in every frame.
fn batch(rows: &[[f32; 6]]) -> Tensor {
    let frames = 3;
    let data: Vec<f32> = rows
        .iter()
        .flat_map(|r| std::iter::repeat_n(r.iter().copied(), frames).flatten())
        .collect();
    Tensor::from_vec(data, (rows.len(), frames, 6), &Device::Cpu).unwrap()
}

#[test]
fn empty_high_bands_make_a_window_narrowband() {
    let x = batch(&[
        [-10.0, 0.0, -5.0, -20.0, -35.0, -40.0],    // wideband speech
        [-10.0, 0.0, -5.0, -20.0, -80.0, -80.0],    // nothing above the cutoff
        [-70.0, -60.0, -65.0, -70.0, -75.0, -72.0], // a quiet room, broadband
    ]);
    assert_eq!(router().narrowband(&x).unwrap(), [false, true, false]);
}

/// Quiet frames sit at the floor in every band: they neither make a phone window wideband
/// nor a wideband one narrowband.
#[test]
fn quiet_frames_do_not_decide() {
    let frames = |rows: &[[f32; 6]]| -> Tensor {
        let data: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(data, (1, rows.len(), 6), &Device::Cpu).unwrap()
    };
    let floor = [-80.0; 6];
    let phone = [-10.0, 0.0, -5.0, -20.0, -80.0, -80.0];
    let wide = [-10.0, 0.0, -5.0, -20.0, -40.0, -45.0];
    let r = router();
    assert_eq!(
        r.narrowband(&frames(&[floor, floor, floor, phone]))
            .unwrap(),
        [true]
    );
    assert_eq!(
        r.narrowband(&frames(&[floor, floor, wide, floor])).unwrap(),
        [false]
    );
}

#[test]
fn each_window_comes_back_in_its_place_from_its_own_member() {
    let x = batch(&[
        [1.0, 0.0, 0.0, 0.0, -80.0, -80.0],
        [2.0, 0.0, 0.0, 0.0, -10.0, -10.0],
        [3.0, 0.0, 0.0, 0.0, -80.0, -80.0],
        [4.0, 0.0, 0.0, 0.0, -10.0, -10.0],
        [5.0, 0.0, 0.0, 0.0, -10.0, -10.0],
    ]);
    // Each member answers (its tag, the row's first value).
    let tagged = |tag: f32| {
        move |w: &Tensor| -> Result<Tensor> {
            let first = w.narrow(1, 0, 1)?.narrow(2, 0, 1)?.squeeze(2)?;
            Tensor::cat(&[(first.zeros_like()? + tag as f64)?, first], 1)
        }
    };
    let out = router()
        .route(&x, tagged(0.0), tagged(1.0))
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(
        out,
        [[1.0, 1.0], [0.0, 2.0], [1.0, 3.0], [0.0, 4.0], [0.0, 5.0]]
    );
}

#[test]
fn the_high_bands_start_at_the_cutoff() {
    use crate::features::mel::{hz_to_mel, linspace, mel_to_hz};
    let f = crate::FeatureConfig::streaming_16k();
    let k = first_band_above(&f, 4000.0);
    let points = linspace(
        hz_to_mel(f.fmin as f64),
        hz_to_mel(f.fmax_hz() as f64),
        f.n_mels + 2,
    );
    assert!(mel_to_hz(points[k]) >= 4000.0 && mel_to_hz(points[k - 1]) < 4000.0);
    assert_eq!(first_band_above(&f, 9000.0), f.n_mels);
}

/// Real speech at 16 kHz is wideband; the same speech through an 8 kHz channel, delivered
/// back at 16 kHz, is narrowband in every window.
#[test]
fn real_speech_is_routed_by_its_line() {
    let model = crate::model::Builtin::named("default")
        .unwrap()
        .load(&Device::Cpu)
        .unwrap();
    let card = &model.card;
    let n = card.features.n_mels;
    let audio = decode_path(std::path::Path::new("tests/fixtures/speech_long_16k.wav")).unwrap();
    let wide = StreamResampler::resample_all(audio.sample_rate, 16_000, &audio.samples).unwrap();
    let line = StreamResampler::resample_all(16_000, 8_000, &wide).unwrap();
    let narrow = StreamResampler::resample_all(8_000, 16_000, &line).unwrap();
    let windows = |y: &[f32]| {
        let mut stream = StreamingLogMel::new(&card.features).unwrap();
        stream.push(y);
        let (len, hop) = (
            card.ms_to_samples(card.window_ms),
            card.ms_to_samples(card.hop_ms),
        );
        let mut rows = Vec::new();
        while let Some(w) = stream.window_logmel((rows.len() * hop) as u64, len) {
            rows.push(Tensor::from_vec(w.clone(), (1, w.len() / n, n), &Device::Cpu).unwrap());
        }
        rows
    };
    let router = Router {
        first_high_band: first_band_above(&card.features, 4000.0),
        gap_db: 68.0,
    };
    let (wide, narrow) = (windows(&wide), windows(&narrow));
    assert!(wide.len() >= 2 && wide.len() == narrow.len());
    for (w, n) in wide.iter().zip(&narrow) {
        assert_eq!(router.narrowband(w).unwrap(), [false]);
        assert_eq!(router.narrowband(n).unwrap(), [true]);
    }
}

/// `Model::predict` sweeps each member over the whole batch (composite models override
/// `forward_in_passes`): a window's probabilities must not depend on its batch, for the
/// default (a router over wideband and phone windows) and for `builtin:crema-d` (an
/// ensemble), in batches larger than one pass.
#[test]
fn a_window_reads_the_same_alone_and_in_any_batch() {
    let audio = decode_path(std::path::Path::new("tests/fixtures/speech_long_16k.wav")).unwrap();
    let wide = StreamResampler::resample_all(audio.sample_rate, 16_000, &audio.samples).unwrap();
    let line = StreamResampler::resample_all(16_000, 8_000, &wide).unwrap();
    let narrow = StreamResampler::resample_all(8_000, 16_000, &line).unwrap();
    for name in ["default", "crema-d"] {
        let model = crate::model::Builtin::named(name)
            .unwrap()
            .load(&Device::Cpu)
            .unwrap();
        let len = model.card.ms_to_samples(model.card.window_ms);
        let step = len / 7;
        let inputs: Vec<_> = (0..2 * crate::model::CPU_WINDOWS_PER_PASS + 3)
            .map(|i| {
                let y = if i % 3 == 1 { &narrow } else { &wide };
                let start = (i * step) % (y.len().min(wide.len()) - len);
                model.window_input(&y[start..start + len]).unwrap()
            })
            .collect();
        let batch = model.predict(&inputs.iter().collect::<Vec<_>>()).unwrap();
        for (input, in_batch) in inputs.iter().zip(&batch) {
            let alone = model.predict(&[input]).unwrap().remove(0);
            for (a, b) in alone.iter().zip(in_batch) {
                assert!((a - b).abs() < 1e-5, "{name}: {alone:?} vs {in_batch:?}");
            }
        }
    }
}
