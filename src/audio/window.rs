//! Cuts a stream of samples into overlapping analysis windows. Each window is emitted exactly
//! once, as soon as its last sample arrives, with its position in the stream's own clock.

use crate::error::{Error, Result};

/// One analysis window of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// 0, 1, 2, ... in stream order.
    pub index: u64,
    /// Position of the first sample, counted from the start of the stream.
    pub start_sample: u64,
    /// Number of samples the window covers (shorter than the window length only for the
    /// final partial window).
    pub len: usize,
    /// The samples themselves, when the assembler keeps them.
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl Window {
    pub fn start_ms(&self) -> u64 {
        self.start_sample * 1000 / self.sample_rate as u64
    }

    pub fn end_ms(&self) -> u64 {
        (self.start_sample + self.len as u64) * 1000 / self.sample_rate as u64
    }

    pub fn end_sample(&self) -> u64 {
        self.start_sample + self.len as u64
    }
}

/// Streaming window assembler: `window` samples every `hop` samples.
#[derive(Debug)]
pub struct WindowAssembler {
    window: usize,
    hop: usize,
    sample_rate: u32,
    keep_samples: bool,
    /// Samples from `buffer_start` on (only when `keep_samples`).
    buffer: Vec<f32>,
    buffer_start: u64,
    next_index: u64,
    next_start: u64,
    total: u64,
}

impl WindowAssembler {
    /// `keep_samples = false` tracks positions only, for callers that keep their own
    /// per-frame state (the incremental log-mel front end) and need no copy of the audio.
    pub fn new(window: usize, hop: usize, sample_rate: u32, keep_samples: bool) -> Result<Self> {
        if window == 0 || hop == 0 || hop > window {
            return Err(Error::Config(format!(
                "window ({window} samples) and hop ({hop} samples) must be positive with hop <= window"
            )));
        }
        // Window times divide by the rate (found by fuzz/window_assembler).
        if sample_rate == 0 {
            return Err(Error::Config("the sample rate must be positive".into()));
        }
        Ok(Self {
            window,
            hop,
            sample_rate,
            keep_samples,
            buffer: Vec::new(),
            buffer_start: 0,
            next_index: 0,
            next_start: 0,
            total: 0,
        })
    }

    pub fn window_len(&self) -> usize {
        self.window
    }

    pub fn hop_len(&self) -> usize {
        self.hop
    }

    /// Samples received so far.
    pub fn total_samples(&self) -> u64 {
        self.total
    }

    /// Where the next full window ends (in samples from the start of the stream).
    pub fn next_window_end(&self) -> u64 {
        self.next_start + self.window as u64
    }

    /// Adds samples and appends every window that is now complete to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<Window>) {
        self.total += samples.len() as u64;
        if self.keep_samples {
            self.buffer.extend_from_slice(samples);
        }
        while self.next_window_end() <= self.total {
            let window = self.cut(self.window, &[]);
            out.push(window);
        }
    }

    /// Appends every window completed by `ahead`, provisional samples that follow those
    /// received (a resampler's not-yet-final output). They are not kept: later samples
    /// replace them, and each window is still emitted once.
    pub fn push_ahead(&mut self, ahead: &[f32], out: &mut Vec<Window>) {
        while self.next_window_end() <= self.total + ahead.len() as u64 {
            let window = self.cut(self.window, ahead);
            out.push(window);
        }
    }

    /// Ends the stream: returns the trailing partial window if it holds at least
    /// `min_len` samples that no full window covered.
    pub fn finish(&mut self, min_len: usize) -> Option<Window> {
        let covered = if self.next_index == 0 {
            0
        } else {
            self.next_start - self.hop as u64 + self.window as u64
        };
        let remaining = self.total.saturating_sub(self.next_start) as usize;
        if self.total <= covered || remaining == 0 || remaining < min_len.max(1) {
            return None;
        }
        Some(self.cut(remaining, &[]))
    }

    /// The window of `len` samples at `next_start`; any samples past those received come
    /// from `ahead`.
    fn cut(&mut self, len: usize, ahead: &[f32]) -> Window {
        let samples = if self.keep_samples {
            let offset = (self.next_start - self.buffer_start) as usize;
            let held = self.buffer.len().saturating_sub(offset).min(len);
            let mut samples = self.buffer[offset..offset + held].to_vec();
            samples.extend_from_slice(&ahead[..len - held]);
            samples
        } else {
            Vec::new()
        };
        let window = Window {
            index: self.next_index,
            start_sample: self.next_start,
            len,
            samples,
            sample_rate: self.sample_rate,
        };
        self.next_index += 1;
        self.next_start += self.hop as u64;
        if self.keep_samples {
            let drop = ((self.next_start - self.buffer_start) as usize).min(self.buffer.len());
            self.buffer.drain(..drop);
            self.buffer_start += drop as u64;
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_emitted_once_in_order_with_their_times() {
        let signal: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let mut assembler = WindowAssembler::new(40, 20, 1000, true).unwrap();
        let mut windows = Vec::new();
        for chunk in signal.chunks(7) {
            assembler.push(chunk, &mut windows);
        }
        let tail = assembler.finish(10);
        let starts: Vec<u64> = windows.iter().map(|w| w.start_sample).collect();
        assert_eq!(starts, [0, 20, 40, 60]);
        for w in &windows {
            assert_eq!(w.samples, signal[w.start_sample as usize..][..40]);
            assert_eq!(
                (w.start_ms(), w.end_ms()),
                (w.start_sample, w.start_sample + 40)
            );
        }
        // 100 samples: windows cover 0..100 entirely, so no partial tail.
        assert_eq!(tail, None);
    }

    #[test]
    fn trailing_partial_window_needs_uncovered_samples() {
        let mut assembler = WindowAssembler::new(40, 20, 1000, true).unwrap();
        let mut windows = Vec::new();
        assembler.push(&[0.0; 115], &mut windows);
        assert_eq!(windows.len(), 4);
        let tail = assembler.finish(10).unwrap();
        assert_eq!((tail.index, tail.start_sample, tail.len), (4, 80, 35));
        // A short stream gets one partial window if it is long enough.
        let mut short = WindowAssembler::new(40, 20, 1000, false).unwrap();
        short.push(&[0.0; 15], &mut windows);
        assert_eq!(short.finish(10).map(|w| w.len), Some(15));
        let mut tiny = WindowAssembler::new(40, 20, 1000, false).unwrap();
        tiny.push(&[0.0; 5], &mut windows);
        assert_eq!(tiny.finish(10), None);
    }

    #[test]
    fn windows_completed_ahead_are_emitted_once_with_the_provisional_samples() {
        let mut assembler = WindowAssembler::new(40, 20, 1000, true).unwrap();
        let mut windows = Vec::new();
        assembler.push(&[1.0; 35], &mut windows);
        assert!(windows.is_empty());
        assembler.push_ahead(&[2.0; 10], &mut windows);
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].samples[..35], [1.0; 35]);
        assert_eq!(windows[0].samples[35..], [2.0; 5]);
        // The real samples replace the provisional ones; the window is not emitted again.
        assembler.push(&[3.0; 20], &mut windows);
        assert_eq!(windows.len(), 1);
        assembler.push(&[3.0; 5], &mut windows);
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[1].samples[..15], [1.0; 15]);
        assert_eq!(windows[1].samples[15..], [3.0; 25]);
    }

    #[test]
    fn hop_longer_than_window_is_rejected() {
        assert!(WindowAssembler::new(10, 20, 16000, true).is_err());
        assert!(WindowAssembler::new(0, 0, 16000, true).is_err());
    }

    #[test]
    fn zero_sample_rate_is_rejected() {
        assert!(WindowAssembler::new(40, 20, 0, true).is_err());
    }
}
