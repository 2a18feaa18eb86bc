//! Waveform augmentation for training: the acted corpora are clean studio recordings, while
//! Sentio serves noisy, level-varying, often telephone-band speech. Every transform works on
//! mono f32 samples and is deterministic given its inputs (and the caller's seeded rng).
//! Stretch and pitch shift follow librosa's `effects.time_stretch` / `effects.pitch_shift`.

use std::f64::consts::PI;

use rand::Rng;
use realfft::RealFftPlanner;
use realfft::num_complex::Complex;
use sentio::audio::StreamResampler;
use sentio::audio::pcm::{SampleFormat, round_trip};
use sentio::{Error, Result};

/// STFT size of the phase vocoder (32 ms at 16 kHz) and its hop (librosa's n_fft / 4).
pub const N_FFT: usize = 512;
pub const HOP: usize = 128;

/// The narrowband codec rate of the telephony channel.
const PHONE_RATE: u32 = 8_000;

/// Adds white Gaussian noise scaled so that signal power / noise power is exactly `snr_db`.
/// Silent (all-zero) input comes back unchanged: it has no power to measure against.
pub fn add_noise(y: &[f32], snr_db: f32, rng: &mut impl Rng) -> Vec<f32> {
    let signal_power = mean_power(y);
    if signal_power == 0.0 {
        return y.to_vec();
    }
    let mut noise = Vec::with_capacity(y.len() + 1);
    while noise.len() < y.len() {
        // Box-Muller: two independent standard normals from two uniforms.
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1], so ln is finite
        let u2: f64 = rng.random();
        let r = (-2.0 * u1.ln()).sqrt();
        noise.push(r * (2.0 * PI * u2).cos());
        noise.push(r * (2.0 * PI * u2).sin());
    }
    noise.truncate(y.len());
    // Scale by the drawn noise's own power, not the expected 1.0, so the SNR is exact.
    let drawn = noise.iter().map(|n| n * n).sum::<f64>() / noise.len() as f64;
    let target = signal_power / 10f64.powf(snr_db as f64 / 10.0);
    let scale = (target / drawn.max(f64::MIN_POSITIVE)).sqrt();
    y.iter()
        .zip(&noise)
        .map(|(&s, &n)| (s as f64 + n * scale) as f32)
        .collect()
}

/// Multiplies by a gain in decibels (no clipping: features do not need [-1, 1]).
pub fn gain_db(y: &[f32], db: f32) -> Vec<f32> {
    let gain = 10f32.powf(db / 20.0);
    y.iter().map(|s| s * gain).collect()
}

/// Shifts by a uniform random offset of up to ±`max_fraction` of the length, filling the gap
/// with silence (wrapping would splice the end of the utterance onto its start).
pub fn time_shift(y: &[f32], max_fraction: f32, rng: &mut impl Rng) -> Vec<f32> {
    let n = y.len();
    let max = (max_fraction.clamp(0.0, 1.0) as f64 * n as f64).floor() as i64;
    let shift = rng.random_range(-max..=max);
    let k = shift.unsigned_abs() as usize;
    let mut out = vec![0.0; n];
    if shift >= 0 {
        out[k..].copy_from_slice(&y[..n - k]);
    } else {
        out[..n - k].copy_from_slice(&y[k..]);
    }
    out
}

/// Changes tempo by `rate` (> 1 faster and shorter) keeping pitch: librosa's STFT, phase
/// vocoder and ISTFT. The output has `round(len / rate)` samples.
///
/// # Panics
/// If `rate` is not a positive finite number (a caller bug, not a data condition).
pub fn time_stretch(y: &[f32], rate: f32) -> Vec<f32> {
    assert!(
        rate.is_finite() && rate > 0.0,
        "time_stretch rate must be > 0, got {rate}"
    );
    stretch(y, rate as f64)
}

/// Shifts pitch by `semitones` keeping duration, as librosa does: stretch by the inverse of
/// the frequency ratio, then resample so the duration is back to `y.len()` samples.
pub fn pitch_shift(y: &[f32], sr: u32, semitones: f32) -> Result<Vec<f32>> {
    if !semitones.is_finite() {
        return Err(Error::Config(format!(
            "pitch shift of {semitones} semitones"
        )));
    }
    if y.is_empty() || semitones == 0.0 {
        return Ok(y.to_vec());
    }
    // The resampler needs integer rates: round sr * ratio, and stretch by the ratio actually
    // realised so that the two steps cancel exactly in duration.
    let from = (sr as f64 * 2f64.powf(semitones as f64 / 12.0)).round();
    let (min, max) = (
        sentio::audio::MIN_SAMPLE_RATE,
        sentio::audio::MAX_SAMPLE_RATE,
    );
    if !(min as f64..=max as f64).contains(&from) {
        let rate = from.clamp(0.0, u64::MAX as f64) as u64;
        return Err(Error::SampleRate { rate, min, max });
    }
    let from = from as u32;
    let stretched = stretch(y, sr as f64 / from as f64);
    let mut out = StreamResampler::resample_all(from, sr, &stretched)?;
    out.resize(y.len(), 0.0);
    Ok(out)
}

/// The G.711 companding law of a phone line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// North America and Japan.
    MuLaw,
    /// Europe and most of the rest of the world.
    ALaw,
}

/// Speed perturbation: plays `y` `factor` times faster, so duration shrinks by `factor` and
/// pitch and formants rise by it (Kaldi's speed perturbation, by resampling).
pub fn speed(y: &[f32], sr: u32, factor: f32) -> Result<Vec<f32>> {
    if !(factor.is_finite() && factor > 0.0) {
        return Err(Error::Config(format!("speed factor {factor}")));
    }
    let from = (sr as f64 * factor as f64).round() as u32;
    if from == sr {
        return Ok(y.to_vec());
    }
    StreamResampler::resample_all(from, sr, y)
}

/// The classic contact-center line: [`phone_line`] with a 300-3400 Hz band-pass.
pub fn telephony(y: &[f32], sr: u32, codec: Codec) -> Result<Vec<f32>> {
    let line = Line {
        band_hz: Some((300.0, 3400.0)),
        codec,
    };
    phone_line(y, sr, &line)
}

/// One phone line: an optional band-pass inside the 8 kHz channel, and its G.711 law.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    /// High-pass and low-pass corners in Hz; `None` keeps the whole 0-4 kHz channel (a
    /// plain 8 kHz line, as a softphone or SIP trunk delivers it).
    pub band_hz: Option<(f64, f64)>,
    pub codec: Codec,
}

impl Line {
    /// A line as contact centers meet them: either law, and half of the time no band-pass
    /// beyond the channel, otherwise corners drawn around the classic 300-3400 Hz.
    pub fn random(rng: &mut impl Rng) -> Line {
        let codec = if rng.random_bool(0.5) {
            Codec::ALaw
        } else {
            Codec::MuLaw
        };
        let band_hz = rng.random_bool(0.5).then(|| {
            (
                rng.random_range(200.0..400.0),
                rng.random_range(3000.0..3700.0),
            )
        });
        Line { band_hz, codec }
    }
}

/// `y` through `line`: resample to 8 kHz, band-limit, G.711 encode and decode, resample back
/// to `sr` (the server's own 8 kHz -> model-rate path). Same length as the input.
pub fn phone_line(y: &[f32], sr: u32, line: &Line) -> Result<Vec<f32>> {
    if y.is_empty() {
        return Ok(Vec::new());
    }
    let mut narrow = StreamResampler::resample_all(sr, PHONE_RATE, y)?;
    if let Some((low, high)) = line.band_hz {
        band_pass(&mut narrow, PHONE_RATE, low, high);
    }
    let format = match line.codec {
        Codec::MuLaw => SampleFormat::MuLaw,
        Codec::ALaw => SampleFormat::ALaw,
    };
    let decoded = round_trip(&narrow, format);
    let mut out = StreamResampler::resample_all(PHONE_RATE, sr, &decoded)?;
    out.resize(y.len(), 0.0);
    Ok(out)
}

/// The telephone band, 300-3400 Hz (second-order Butterworth high- and low-pass), in place.
/// The resampler's anti-aliasing already stops at half the rate.
pub fn telephone_band(y: &mut [f32], sr: u32) {
    band_pass(y, sr, 300.0, 3400.0);
}

fn band_pass(y: &mut [f32], sr: u32, low_hz: f64, high_hz: f64) {
    biquad(y, Pass::High, low_hz, sr);
    biquad(y, Pass::Low, high_hz, sr);
}

#[derive(Clone, Copy)]
enum Pass {
    High,
    Low,
}

/// Second-order Butterworth filter in place (RBJ audio-EQ cookbook, Q = 1/sqrt(2)).
fn biquad(y: &mut [f32], pass: Pass, cutoff_hz: f64, sr: u32) {
    let w0 = 2.0 * PI * cutoff_hz / sr as f64;
    let (cos, alpha) = (w0.cos(), w0.sin() / 2f64.sqrt());
    let (b0, b1) = match pass {
        Pass::High => ((1.0 + cos) / 2.0, -(1.0 + cos)),
        Pass::Low => ((1.0 - cos) / 2.0, 1.0 - cos),
    };
    let a0 = 1.0 + alpha;
    let (b0, b1, b2, a1, a2) = (
        b0 / a0,
        b1 / a0,
        b0 / a0,
        -2.0 * cos / a0,
        (1.0 - alpha) / a0,
    );
    // Transposed direct form II.
    let (mut z1, mut z2) = (0.0f64, 0.0f64);
    for s in y.iter_mut() {
        let x = *s as f64;
        let out = b0 * x + z1;
        z1 = b1 * x - a1 * out + z2;
        z2 = b2 * x - a2 * out;
        *s = out as f32;
    }
}

fn mean_power(y: &[f32]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    y.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / y.len() as f64
}

/// librosa.effects.time_stretch: stft (centred, zero-padded), phase_vocoder, istft.
fn stretch(y: &[f32], rate: f64) -> Vec<f32> {
    // Python's round() rounds half to even.
    let out_len = (y.len() as f64 / rate).round_ties_even() as usize;
    if y.is_empty() || out_len == 0 {
        return vec![0.0; out_len];
    }
    let window = sentio::features::stft::hann_window_f64(N_FFT);
    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(N_FFT);
    let inverse = planner.plan_fft_inverse(N_FFT);
    let bins = N_FFT / 2 + 1;

    // STFT, centred: N_FFT / 2 zeros each side (librosa >= 0.10's pad_mode="constant").
    let mut padded = vec![0.0f64; y.len() + N_FFT];
    for (p, &s) in padded[N_FFT / 2..].iter_mut().zip(y) {
        *p = s as f64;
    }
    let n_frames = 1 + (padded.len() - N_FFT) / HOP;
    let mut frame = vec![0.0; N_FFT];
    let mut spectra = Vec::with_capacity(n_frames + 2);
    for t in 0..n_frames {
        for (i, f) in frame.iter_mut().enumerate() {
            *f = padded[t * HOP + i] * window[i];
        }
        let mut spectrum = forward.make_output_vec();
        // Lengths match the plan, so this cannot fail.
        let _ = forward.process(&mut frame, &mut spectrum);
        spectra.push(spectrum);
    }
    // phase_vocoder pads two silent frames so the interpolation can read past the end.
    spectra.push(vec![Complex::default(); bins]);
    spectra.push(vec![Complex::default(); bins]);

    // Phase vocoder: interpolate magnitudes between frames at fractional steps, and advance
    // each bin's phase by its measured instantaneous frequency.
    let phi_advance: Vec<f64> = (0..bins)
        .map(|k| PI * HOP as f64 * k as f64 / (bins - 1) as f64)
        .collect();
    let mut phase: Vec<f64> = spectra[0].iter().map(|c| c.arg()).collect();
    let steps = (n_frames as f64 / rate).ceil() as usize; // len(np.arange(0, n, rate))
    let mut stretched = Vec::with_capacity(steps);
    for t in 0..steps {
        let step = t as f64 * rate;
        let i = step as usize;
        let alpha = step.fract();
        let (left, right) = (&spectra[i], &spectra[i + 1]);
        let mut column = Vec::with_capacity(bins);
        for k in 0..bins {
            let mag = (1.0 - alpha) * left[k].norm() + alpha * right[k].norm();
            column.push(Complex::from_polar(mag, phase[k]));
            let mut dphase = right[k].arg() - left[k].arg() - phi_advance[k];
            dphase -= 2.0 * PI * (dphase / (2.0 * PI)).round_ties_even();
            phase[k] += phi_advance[k] + dphase;
        }
        stretched.push(column);
    }

    // ISTFT: overlap-add the windowed inverse frames, divide by the summed squared window.
    let total = N_FFT + HOP * (stretched.len() - 1);
    let (mut out, mut norm) = (vec![0.0f64; total], vec![0.0f64; total]);
    for (t, column) in stretched.iter_mut().enumerate() {
        // irfft ignores the imaginary parts of the DC and Nyquist bins; realfft rejects them.
        column[0].im = 0.0;
        column[bins - 1].im = 0.0;
        let _ = inverse.process(column, &mut frame);
        for i in 0..N_FFT {
            out[t * HOP + i] += frame[i] / N_FFT as f64 * window[i];
            norm[t * HOP + i] += window[i] * window[i];
        }
    }
    let tiny = f32::MIN_POSITIVE as f64;
    (0..out_len)
        .map(|n| {
            let j = n + N_FFT / 2;
            match (out.get(j), norm.get(j)) {
                (Some(&v), Some(&w)) if w > tiny => (v / w) as f32,
                (Some(&v), _) => v as f32,
                _ => 0.0,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "augment_tests.rs"]
mod tests;
