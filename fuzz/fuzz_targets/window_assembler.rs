//! Windowing (`WindowAssembler`): cuts every stream into analysis windows.
//!
//! Arbitrary window, hop, rate and chunking. Bad shapes must be a clean `Err`. Otherwise
//! every window is emitted exactly once, as soon as its last sample arrives: indices
//! 0, 1, 2 ..., starts at multiples of the hop, `window` samples each, holding exactly
//! those samples of the stream (when kept), floor((total - window) / hop) + 1 of them.
//! `finish` returns the trailing partial window exactly when some samples are uncovered
//! and there are at least `min_len` of them, and only once.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sentio::audio::{Window, WindowAssembler};

/// Keeps a run fast: the stream is at most this many samples (their values, their own
/// positions, stay exact in f32).
const MAX_TOTAL: usize = 1 << 14;
/// Kept windows are copies: a push of `chunk` samples holds up to chunk / hop + 1 windows of
/// `window` samples each. These bounds keep that near 4 MiB, so an input runs in
/// milliseconds; the logic does not depend on the sizes.
const MAX_WINDOW: usize = 1024;
const MAX_CHUNK: usize = 1024;

#[derive(Arbitrary, Debug)]
struct Input {
    window: u16,
    hop: u16,
    sample_rate: u32,
    keep_samples: bool,
    min_len: u16,
    chunks: Vec<u16>,
}

/// Number of complete windows in a stream of `total` samples.
fn full_windows(total: usize, window: usize, hop: usize) -> usize {
    if total >= window {
        (total - window) / hop + 1
    } else {
        0
    }
}

fn check(w: &Window, index: usize, hop: usize, len: usize, keep: bool, rate: u32) {
    assert_eq!(w.index, index as u64);
    assert_eq!(w.start_sample, (index * hop) as u64);
    assert_eq!(w.len, len);
    assert_eq!(w.end_sample(), w.start_sample + len as u64);
    assert_eq!(w.sample_rate, rate);
    if keep {
        // Each sample's value is its position in the stream.
        let expected = (w.start_sample..w.end_sample()).map(|i| i as f32);
        assert!(
            w.samples.iter().copied().eq(expected),
            "window {index}: wrong samples"
        );
    } else {
        assert!(w.samples.is_empty());
    }
    assert_eq!(w.start_ms(), w.start_sample * 1000 / rate as u64);
    assert!(w.start_ms() <= w.end_ms());
}

fuzz_target!(|input: Input| {
    let window = input.window as usize % (MAX_WINDOW + 1);
    let hop = input.hop as usize;
    let rate = input.sample_rate;
    let assembler = WindowAssembler::new(window, hop, rate, input.keep_samples);
    let valid = window > 0 && hop > 0 && hop <= window && rate > 0;
    assert_eq!(
        assembler.is_ok(),
        valid,
        "window {window}, hop {hop}, rate {rate}"
    );
    let Ok(mut assembler) = assembler else {
        return;
    };
    let keep = input.keep_samples;

    let mut windows = Vec::new();
    // Windows emitted so far (checked, then dropped, after each push).
    let mut n = 0;
    let mut total = 0usize;
    for &len in &input.chunks {
        let len = (len as usize).min(MAX_CHUNK).min(MAX_TOTAL - total);
        let chunk: Vec<f32> = (total..total + len).map(|i| i as f32).collect();
        assembler.push(&chunk, &mut windows);
        total += len;
        assert_eq!(assembler.total_samples(), total as u64);
        for w in windows.drain(..) {
            check(&w, n, hop, window, keep, rate);
            n += 1;
        }
        // Emitted as soon as complete: never late, never early.
        assert_eq!(n, full_windows(total, window, hop));
    }

    let covered = if n == 0 { 0 } else { (n - 1) * hop + window };
    let uncovered = total - covered.min(total);
    let tail = assembler.finish(input.min_len as usize);
    let min_len = (input.min_len as usize).max(1);
    match &tail {
        Some(t) => {
            assert!(uncovered > 0, "a tail with every sample already covered");
            // It starts where the next full window would have, and runs to the end.
            check(t, n, hop, total - n * hop, keep, rate);
            assert!(t.len < window && t.len >= min_len);
        }
        None => assert!(
            uncovered == 0 || total.saturating_sub(n * hop) < min_len,
            "{uncovered} uncovered samples but no tail"
        ),
    }
    assert_eq!(
        assembler.finish(input.min_len as usize),
        None,
        "finish gave a second tail"
    );
});
