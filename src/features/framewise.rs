//! Time-domain frame features: zero-crossing rate and RMS, with librosa's framing (ZCR pads
//! the edges by repeating the edge sample, RMS pads with zeros).

use super::FrameMatrix;
use super::stft::frame_count;

/// librosa's `feature.zero_crossing_rate(y, frame_length, hop_length, center)`: the fraction
/// of sample pairs in each frame whose sign bits differ (|y| <= 1e-10 counts as +0).
pub fn zero_crossing_rate(y: &[f32], frame_length: usize, hop: usize, center: bool) -> FrameMatrix {
    let sign: Vec<bool> = y
        .iter()
        .map(|&v| {
            if v.abs() <= 1e-10 {
                false
            } else {
                v.is_sign_negative()
            }
        })
        .collect();
    let padded = pad(
        &sign,
        frame_length,
        center,
        |s| *s.first().unwrap_or(&false),
        |s| *s.last().unwrap_or(&false),
    );
    let n = frame_count(padded.len(), frame_length, hop);
    let data = (0..n)
        .map(|t| {
            let frame = &padded[t * hop..t * hop + frame_length];
            let crossings = frame.windows(2).filter(|p| p[0] != p[1]).count();
            crossings as f32 / frame_length as f32
        })
        .collect();
    FrameMatrix {
        n_features: 1,
        data,
    }
}

/// librosa's `feature.rms(y, frame_length, hop_length, center)`: the root mean square of
/// each zero-padded frame.
pub fn rms(y: &[f32], frame_length: usize, hop: usize, center: bool) -> FrameMatrix {
    let padded = pad(y, frame_length, center, |_| 0.0, |_| 0.0);
    let n = frame_count(padded.len(), frame_length, hop);
    let data = (0..n)
        .map(|t| {
            let frame = &padded[t * hop..t * hop + frame_length];
            let power =
                frame.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / frame_length as f64;
            power.sqrt() as f32
        })
        .collect();
    FrameMatrix {
        n_features: 1,
        data,
    }
}

fn pad<T: Copy>(
    y: &[T],
    frame_length: usize,
    center: bool,
    left: impl Fn(&[T]) -> T,
    right: impl Fn(&[T]) -> T,
) -> Vec<T> {
    if !center || y.is_empty() {
        return y.to_vec();
    }
    let half = frame_length / 2;
    let mut out = Vec::with_capacity(y.len() + 2 * half);
    out.extend(std::iter::repeat_n(left(y), half));
    out.extend_from_slice(y);
    out.extend(std::iter::repeat_n(right(y), half));
    out
}
