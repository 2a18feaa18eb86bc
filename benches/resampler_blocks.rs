//! How rubato's FFT resampler's block size sets its cost when many streams' engines compete
//! for the cache, as in a loaded server: 150 engines fed 10 ms each in turn.
//!   taskset -c 1 cargo bench --bench resampler_blocks
//! (BENCHMARKS.md section 5b: a smaller 48 kHz block was cheaper here but not measurably
//! cheaper in the server, so the block rule was left as it is.)

use std::time::Instant;

use rubato::{FftFixedIn, Resampler};

fn main() {
    let streams = 150;
    for (from, to, feed, blocks) in [
        (
            48_000usize,
            16_000usize,
            480usize,
            &[192usize, 384, 480, 768, 960, 1536][..],
        ),
        (8_000, 16_000, 160, &[64, 128, 160, 256, 480, 960][..]),
    ] {
        let signal: Vec<f32> = (0..from * 4)
            .map(|i| (i as f32 * 0.01).sin() * 0.3)
            .collect();
        for &block in blocks {
            let mut engines: Vec<_> = (0..streams)
                .map(|_| FftFixedIn::<f32>::new(from, to, block, 1, 1).expect("engine"))
                .collect();
            let mut pending = vec![Vec::new(); streams];
            let mut out = vec![vec![0.0f32; engines[0].output_frames_max()]];
            let seconds = 4;
            let start = Instant::now();
            for turn in 0..from * seconds / feed {
                for (engine, pending) in engines.iter_mut().zip(&mut pending) {
                    pending.extend_from_slice(
                        &signal[(turn * feed) % (signal.len() - feed)..][..feed],
                    );
                    let mut used = 0;
                    while pending.len() - used >= block {
                        let input = [&pending[used..used + block]];
                        engine
                            .process_into_buffer(&input, &mut out, None)
                            .expect("resample");
                        used += block;
                    }
                    pending.drain(..used);
                }
            }
            let per_stream_second =
                start.elapsed().as_secs_f64() * 1e6 / (seconds * streams) as f64;
            println!(
                "{from} -> {to} Hz, block {block}: {per_stream_second:.0} us per stream-second"
            );
        }
    }
}
