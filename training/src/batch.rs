//! What a log-mel training window is made of: a random crop of a cached clip (padded and
//! clamped as a served window is), a random shift along the mel axis, SpecAugment masks.

use rand::Rng;
use rand::rngs::StdRng;

use crate::cache::CachedClip;

/// A random crop of `crop` frames, clamped to top_db below its own peak as a window is;
/// clips shorter than a crop are padded with silence (which the clamp lifts to the floor),
/// or with each band's minimum over the clip when `pad_with_floor`.
pub fn crop_window(
    clip: &CachedClip,
    n_mels: usize,
    crop: usize,
    top_db: f32,
    rng: &mut StdRng,
) -> Vec<f32> {
    crop_window_padded(clip, n_mels, crop, top_db, false, rng)
}

pub fn crop_window_padded(
    clip: &CachedClip,
    n_mels: usize,
    crop: usize,
    top_db: f32,
    pad_with_floor: bool,
    rng: &mut StdRng,
) -> Vec<f32> {
    let mut out = vec![-100.0f32; crop * n_mels];
    if pad_with_floor && clip.frames <= crop && clip.frames > 0 {
        let mut floor = vec![f32::INFINITY; n_mels];
        for frame in clip.logmel_db.chunks_exact(n_mels) {
            floor
                .iter_mut()
                .zip(frame)
                .for_each(|(f, &v)| *f = f.min(v));
        }
        out.chunks_exact_mut(n_mels)
            .for_each(|f| f.copy_from_slice(&floor));
    }
    if clip.frames > crop {
        let start = rng.random_range(0..=clip.frames - crop);
        out.copy_from_slice(&clip.logmel_db[start * n_mels..(start + crop) * n_mels]);
    } else {
        let offset = rng.random_range(0..=crop - clip.frames);
        out[offset * n_mels..(offset + clip.frames) * n_mels].copy_from_slice(&clip.logmel_db);
    }
    let floor = out.iter().copied().fold(f32::NEG_INFINITY, f32::max) - top_db;
    out.iter_mut().for_each(|v| *v = v.max(floor));
    out
}

/// Shifts a window (frames x n_mels) along the mel axis by `shift` bands, repeating the edge
/// band into the gap.
pub fn shift_mel(window: &mut [f32], n_mels: usize, shift: isize) {
    if shift == 0 {
        return;
    }
    for frame in window.chunks_exact_mut(n_mels) {
        let source = frame.to_vec();
        for (m, v) in frame.iter_mut().enumerate() {
            let from = (m as isize - shift).clamp(0, n_mels as isize - 1) as usize;
            *v = source[from];
        }
    }
}

/// Colours a window (frames x n_mels, in dB) as another microphone and room would: a
/// linear tilt of `tilt_db` from the lowest band to the highest, and from band `rolloff_from`
/// up a loss of `rolloff_db_per_band` per band. The same curve is added to every frame.
pub fn colour(
    window: &mut [f32],
    n_mels: usize,
    tilt_db: f32,
    rolloff_from: usize,
    rolloff_db_per_band: f32,
) {
    let curve: Vec<f32> = (0..n_mels)
        .map(|m| {
            let tilt = tilt_db * (m as f32 / (n_mels - 1).max(1) as f32 - 0.5);
            tilt - rolloff_db_per_band * m.saturating_sub(rolloff_from) as f32
        })
        .collect();
    for frame in window.chunks_exact_mut(n_mels) {
        frame.iter_mut().zip(&curve).for_each(|(v, c)| *v += c);
    }
}

/// SpecAugment: two frequency masks of up to 8 bands, two time masks of up to `max_time`
/// frames, as a multiplicative 0/1 mask over normalized (zero-mean) input.
pub fn spec_augment_mask(
    batch: usize,
    n_mels: usize,
    frames: usize,
    max_time: usize,
    rng: &mut StdRng,
) -> Vec<f32> {
    let mut mask = vec![1.0f32; batch * n_mels * frames];
    for b in 0..batch {
        let item = &mut mask[b * n_mels * frames..(b + 1) * n_mels * frames];
        for _ in 0..2 {
            let width = rng.random_range(0..=8);
            let start = rng.random_range(0..=n_mels - width);
            item[start * frames..(start + width) * frames]
                .iter_mut()
                .for_each(|v| *v = 0.0);
            let width = rng.random_range(0..=max_time.min(frames));
            let start = rng.random_range(0..=frames - width);
            for m in 0..n_mels {
                item[m * frames + start..m * frames + start + width]
                    .iter_mut()
                    .for_each(|v| *v = 0.0);
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_adds_one_curve_to_every_frame() {
        let (n_mels, frames) = (8, 3);
        let mut window = vec![-40.0f32; n_mels * frames];
        colour(&mut window, n_mels, 7.0, 6, 2.0);
        for frame in window.chunks_exact(n_mels) {
            assert_eq!(frame, &window[..n_mels]);
        }
        // The tilt spans 7 dB from the lowest band to the highest; the roll-off starts
        // after band 6 and takes 2 dB per band.
        assert!((window[0] - (-43.5)).abs() < 1e-5);
        assert!((window[6] - (-40.0 + 7.0 * (6.0 / 7.0 - 0.5))).abs() < 1e-5);
        assert!((window[7] - (-36.5 - 2.0)).abs() < 1e-5);
    }
}
