//! Tests of `augment.rs`.
use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

const SR: u32 = 16_000;

fn tone(hz: f64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (0.5 * (2.0 * PI * hz * i as f64 / SR as f64).sin()) as f32)
        .collect()
}

/// Peak of the Hann-windowed spectrum of the middle half, refined by a parabola.
fn dominant_hz(y: &[f32]) -> f64 {
    let mid = &y[y.len() / 4..3 * y.len() / 4];
    let n = mid.len();
    let mut input: Vec<f64> = mid
        .iter()
        .enumerate()
        .map(|(i, &s)| s as f64 * (0.5 - 0.5 * (2.0 * PI * i as f64 / n as f64).cos()))
        .collect();
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let mut spectrum = fft.make_output_vec();
    fft.process(&mut input, &mut spectrum).expect("fft");
    let mags: Vec<f64> = spectrum.iter().map(|c| c.norm()).collect();
    let k = (1..mags.len() - 1)
        .max_by(|&a, &b| mags[a].total_cmp(&mags[b]))
        .expect("bins");
    let (a, b, c) = (mags[k - 1].ln(), mags[k].ln(), mags[k + 1].ln());
    let offset = 0.5 * (a - c) / (a - 2.0 * b + c);
    (k as f64 + offset) * SR as f64 / n as f64
}

fn db(power_ratio: f64) -> f64 {
    10.0 * power_ratio.log10()
}

fn assert_hz(y: &[f32], want: f64) {
    let got = dominant_hz(y);
    assert!(
        (got / want - 1.0).abs() < 0.02,
        "dominant {got:.1} Hz, want {want:.1}"
    );
}

#[test]
fn stretch_keeps_pitch_and_scales_length() {
    let y = tone(440.0, SR as usize);
    for rate in [0.8f32, 1.25] {
        let out = time_stretch(&y, rate);
        assert_eq!(out.len(), (y.len() as f32 / rate).round() as usize);
        assert_hz(&out, 440.0);
    }
    // Rate 1 is the identity up to rounding (STFT then ISTFT).
    let same = time_stretch(&y, 1.0);
    let err = y
        .iter()
        .zip(&same)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(err < 1e-4, "max error {err}");
    assert!(time_stretch(&[], 0.9).is_empty());
}

#[test]
fn pitch_shift_moves_tone_and_keeps_duration() -> Result<()> {
    let y = tone(440.0, SR as usize);
    for (semitones, want) in [(4.0f32, 554.37), (-3.0, 369.99)] {
        let out = pitch_shift(&y, SR, semitones)?;
        assert_eq!(out.len(), y.len());
        assert_hz(&out, want);
    }
    assert_eq!(pitch_shift(&y, SR, 0.0)?, y);
    assert!(pitch_shift(&y, SR, 60.0).is_err());
    Ok(())
}

#[test]
fn time_shift_keeps_length_and_zero_fills() {
    let y: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..20 {
        let out = time_shift(&y, 0.2, &mut rng);
        assert_eq!(out.len(), y.len());
        // Nonzero samples are one contiguous run of the input, shifted by <= 200.
        let first = out.iter().position(|&s| s != 0.0).expect("signal");
        let shift = first as i64 - (out[first] as i64 - 1);
        assert!(shift.abs() <= 200, "shift {shift}");
        for (i, &s) in out.iter().enumerate() {
            let src = i as i64 - shift;
            let want = if (0..1000).contains(&src) {
                y[src as usize]
            } else {
                0.0
            };
            assert_eq!(s, want);
        }
    }
    assert_eq!(time_shift(&y, 0.0, &mut rng), y);
}

#[test]
fn add_noise_hits_the_snr() {
    let y = tone(300.0, 8000);
    let mut rng = StdRng::seed_from_u64(1);
    for snr in [0.0f32, 10.0, 25.0] {
        let out = add_noise(&y, snr, &mut rng);
        let noise: Vec<f32> = out.iter().zip(&y).map(|(o, s)| o - s).collect();
        let measured = db(mean_power(&y) / mean_power(&noise));
        assert!((measured - snr as f64).abs() < 0.5, "{measured} vs {snr}");
    }
    assert_eq!(add_noise(&[0.0; 64], 10.0, &mut rng), vec![0.0; 64]);
}

#[test]
fn telephony_keeps_voice_band_only() -> Result<()> {
    let n = SR as usize;
    let middle = |y: &[f32]| mean_power(&y[n / 4..3 * n / 4]);
    let speech_band = tone(1000.0, n);
    let out = telephony(&speech_band, SR, Codec::MuLaw)?;
    assert_eq!(out.len(), n);
    let kept = db(middle(&out) / middle(&speech_band));
    assert!(kept.abs() < 1.0, "1 kHz changed by {kept:.2} dB");
    let high = tone(6000.0, n);
    let out = telephony(&high, SR, Codec::ALaw)?;
    assert_eq!(out.len(), n);
    let drop = db(middle(&high) / middle(&out).max(1e-20));
    assert!(drop > 30.0, "6 kHz dropped only {drop:.1} dB");
    assert_eq!(
        telephony(&tone(1000.0, 4410), 44_100, Codec::MuLaw)?.len(),
        4410
    );
    Ok(())
}

#[test]
fn a_plain_line_keeps_what_the_band_pass_cuts() -> Result<()> {
    let n = SR as usize;
    let middle = |y: &[f32]| mean_power(&y[n / 4..3 * n / 4]);
    let low = tone(150.0, n);
    let plain = Line {
        band_hz: None,
        codec: Codec::ALaw,
    };
    let banded = Line {
        band_hz: Some((300.0, 3400.0)),
        codec: Codec::ALaw,
    };
    let kept = db(middle(&phone_line(&low, SR, &plain)?) / middle(&low));
    assert!(
        kept.abs() < 1.0,
        "plain line changed 150 Hz by {kept:.2} dB"
    );
    let cut = db(middle(&phone_line(&low, SR, &banded)?) / middle(&low));
    assert!(cut < -6.0, "band-passed line kept 150 Hz at {cut:.2} dB");
    // Both lines stop what an 8 kHz channel cannot carry, and keep the length.
    let high = tone(6000.0, n);
    for line in [plain, banded] {
        let out = phone_line(&high, SR, &line)?;
        assert_eq!(out.len(), n);
        let drop = db(middle(&high) / middle(&out).max(1e-20));
        assert!(drop > 30.0, "6 kHz dropped only {drop:.1} dB on {line:?}");
    }
    Ok(())
}

#[test]
fn random_lines_cover_both_laws_and_both_kinds_of_band() {
    let mut rng = StdRng::seed_from_u64(5);
    let lines: Vec<Line> = (0..200).map(|_| Line::random(&mut rng)).collect();
    assert!(lines.iter().any(|l| l.codec == Codec::MuLaw));
    assert!(lines.iter().any(|l| l.codec == Codec::ALaw));
    assert!(lines.iter().any(|l| l.band_hz.is_none()));
    for (low, high) in lines.iter().filter_map(|l| l.band_hz) {
        assert!((200.0..400.0).contains(&low) && (3000.0..3700.0).contains(&high));
    }
}

#[test]
fn telephone_band_cuts_below_300_and_above_3400_hz() {
    let rate = 8000u32;
    let n = rate as usize;
    let at = |hz: f64| {
        let mut y: Vec<f32> = (0..n)
            .map(|i| (0.5 * (2.0 * PI * hz * i as f64 / rate as f64).sin()) as f32)
            .collect();
        let before = mean_power(&y[n / 4..]);
        telephone_band(&mut y, rate);
        db(mean_power(&y[n / 4..]) / before)
    };
    assert!(at(1000.0).abs() < 0.5, "1 kHz: {:.2} dB", at(1000.0));
    assert!(at(100.0) < -9.0, "100 Hz: {:.2} dB", at(100.0));
    assert!(at(3900.0) < -6.0, "3.9 kHz: {:.2} dB", at(3900.0));
}

#[test]
fn speed_perturbation_changes_duration_and_pitch_together() -> Result<()> {
    let y = tone(440.0, SR as usize);
    for factor in [1.1f32, 0.9] {
        let out = speed(&y, SR, factor)?;
        let want_len = y.len() as f32 / factor;
        assert!(
            (out.len() as f32 - want_len).abs() <= 2.0,
            "speed {factor}: {} samples, want {want_len}",
            out.len()
        );
        assert_hz(&out, 440.0 * factor as f64);
    }
    assert_eq!(speed(&y, SR, 1.0)?, y);
    assert!(speed(&y, SR, 0.0).is_err());
    Ok(())
}

#[test]
fn short_inputs_keep_their_lengths() -> Result<()> {
    for n in [1, 7, 100, 513] {
        let y = tone(440.0, n);
        assert_eq!(
            time_stretch(&y, 1.1).len(),
            (n as f32 / 1.1).round() as usize
        );
        assert_eq!(pitch_shift(&y, SR, -2.5)?.len(), n);
        assert_eq!(telephony(&y, SR, Codec::MuLaw)?.len(), n);
    }
    Ok(())
}

#[test]
fn gain_is_in_decibels() {
    let out = gain_db(&[0.25, -0.5], 20.0 * 2f32.log10());
    assert!((out[0] - 0.5).abs() < 1e-6 && (out[1] + 1.0).abs() < 1e-6);
}

#[test]
fn augmentations_are_deterministic_given_a_seed() {
    let y = tone(440.0, 4000);
    let run = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        let noisy = add_noise(&y, 15.0, &mut rng);
        time_shift(&noisy, 0.3, &mut rng)
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}
