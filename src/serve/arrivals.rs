//! When each part of a stream's audio arrived, so that a window's latency counts from the
//! chunk that held its last sample, not from the later chunk that let the resampler emit it
//! (`WindowPrediction.latency_us`).

use std::collections::VecDeque;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct ChunkArrivals {
    rate: u64,
    /// Per chunk still needed: input samples through its end, and when it arrived.
    chunks: VecDeque<(u64, Instant)>,
}

impl ChunkArrivals {
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            rate: rate.max(1) as u64,
            chunks: VecDeque::new(),
        }
    }

    /// A chunk arrived at `at`; the stream's input now holds `samples_through` samples.
    pub(crate) fn record(&mut self, samples_through: u64, at: Instant) {
        self.chunks.push_back((samples_through, at));
    }

    /// When the chunk holding the input sample at `end_ms` (a window's end, on the stream's
    /// own clock) arrived. Windows come in order, so older chunks are forgotten.
    pub(crate) fn window_end(&mut self, end_ms: u64) -> Instant {
        let needed = (end_ms * self.rate).div_ceil(1000);
        while self.chunks.len() > 1 && self.chunks[0].0 < needed {
            self.chunks.pop_front();
        }
        self.chunks.front().map_or_else(Instant::now, |c| c.1)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 8 kHz in 250 ms chunks: a window ending at 2 s was held by the 8th chunk, whatever
    /// later chunk completed it.
    #[test]
    fn a_window_dates_from_the_chunk_with_its_last_sample() {
        let start = Instant::now();
        let mut arrivals = ChunkArrivals::new(8_000);
        for i in 1..=12u64 {
            arrivals.record(i * 2_000, start + Duration::from_millis(250 * i));
        }
        assert_eq!(
            arrivals.window_end(2_000),
            start + Duration::from_millis(2_000)
        );
        // 2.1 s lies inside the 9th chunk (2.0-2.25 s).
        assert_eq!(
            arrivals.window_end(2_100),
            start + Duration::from_millis(2_250)
        );
        assert_eq!(
            arrivals.window_end(3_000),
            start + Duration::from_millis(3_000)
        );
        // Past the audio received (the flushed tail): the last chunk.
        assert_eq!(
            arrivals.window_end(9_000),
            start + Duration::from_millis(3_000)
        );
    }
}
