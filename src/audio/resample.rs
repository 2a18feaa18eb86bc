//! Streaming resampling with rubato. Input is buffered into the resampler's fixed chunk size,
//! so the output depends only on the samples, never on how they were split into chunks; the
//! resampler's delay is trimmed, so output sample n sits at input time n / rate_out.
//!
//! Final output lags the input by up to one block plus the filter's half length (about
//! 20-30 ms). A window must not wait for that: `provisional_tail` returns the output still
//! missing as if the stream ended at the last input sample (what `finish` would give now),
//! computed on a scratch engine so the stream's own state is untouched. It is exactly
//! `resample_all` of the input so far, whatever the chunking.

use rubato::{FftFixedIn, Resampler};

use super::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use crate::error::{Error, Result};

/// Converts a mono stream from one sample rate to another, chunk by chunk.
pub struct StreamResampler {
    from_hz: u32,
    to_hz: u32,
    engine: Option<FftFixedIn<f32>>,
    /// Input not yet handed to the engine (less than one engine chunk).
    pending: Vec<f32>,
    /// Leading output samples still to discard (the engine's delay).
    delay_left: usize,
    input_total: u64,
    output_total: u64,
    out_buf: Vec<Vec<f32>>,
    /// The last block handed to the engine: its output overlaps the next block's, so a
    /// scratch engine replays it before resampling the provisional tail.
    last_block: Vec<f32>,
    /// Blocks handed to the engine so far.
    blocks: u64,
    scratch: Option<FftFixedIn<f32>>,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StreamResampler({} Hz -> {} Hz)",
            self.from_hz, self.to_hz
        )
    }
}

/// Checks that a caller-supplied sample rate is one Sentio can resample from.
pub fn validate_rate(rate: u64) -> Result<u32> {
    if rate < MIN_SAMPLE_RATE as u64 || rate > MAX_SAMPLE_RATE as u64 {
        return Err(Error::SampleRate {
            rate,
            min: MIN_SAMPLE_RATE,
            max: MAX_SAMPLE_RATE,
        });
    }
    Ok(rate as u32)
}

impl StreamResampler {
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self> {
        validate_rate(from_hz as u64)?;
        validate_rate(to_hz as u64)?;
        let engine = if from_hz == to_hz {
            None
        } else {
            Some(make_engine(from_hz, to_hz)?)
        };
        let delay_left = engine.as_ref().map_or(0, |e| e.output_delay());
        let out_buf = engine
            .as_ref()
            .map_or(Vec::new(), |e| vec![vec![0.0; e.output_frames_max()]]);
        let last_block = vec![0.0; engine.as_ref().map_or(0, |e| e.input_frames_max())];
        Ok(Self {
            from_hz,
            to_hz,
            engine,
            pending: Vec::new(),
            delay_left,
            input_total: 0,
            output_total: 0,
            out_buf,
            last_block,
            blocks: 0,
            scratch: None,
        })
    }

    /// Input samples received so far.
    pub fn input_total(&self) -> u64 {
        self.input_total
    }

    /// Output samples the input so far amounts to (what `finish` would stop at).
    pub fn output_for_input(&self, input: u64) -> u64 {
        (input * self.to_hz as u64).div_ceil(self.from_hz as u64)
    }

    /// The fewest input samples whose output reaches `output` samples.
    pub fn input_for_output(&self, output: u64) -> u64 {
        if output == 0 {
            return 0;
        }
        (output - 1) * self.from_hz as u64 / self.to_hz as u64 + 1
    }

    /// Appends the output samples not yet final, as if the input ended here: samples
    /// `final .. output_for_input(input_total)`. The stream's state is not changed.
    pub fn provisional_tail(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let Some(engine) = self.engine.as_ref() else {
            return Ok(());
        };
        let expected = self.output_for_input(self.input_total);
        if self.output_total >= expected {
            return Ok(());
        }
        let (block_in, block_out) = (engine.input_frames_max(), engine.output_frames_max());
        let delay = engine.output_delay() as u64;
        if self.scratch.is_none() {
            self.scratch = Some(make_engine(self.from_hz, self.to_hz)?);
        }
        let scratch = self.scratch.as_mut().expect("created above");
        scratch.reset();
        // Replaying the last block restores the overlap the next block adds to.
        scratch.process_into_buffer(&[&self.last_block], &mut self.out_buf, None)?;
        // Raw (untrimmed) output index of the next block's first sample, and how much of
        // the scratch output is already final.
        let mut raw = self.blocks * block_out as u64;
        let first = self.output_total + delay;
        let end = expected + delay;
        let mut block = vec![0.0f32; block_in];
        let mut rest: &[f32] = &self.pending;
        while raw < end {
            let take = rest.len().min(block_in);
            block[..take].copy_from_slice(&rest[..take]);
            block[take..].fill(0.0);
            rest = &rest[take..];
            let (_, produced) = scratch.process_into_buffer(&[&block], &mut self.out_buf, None)?;
            let from = first.saturating_sub(raw).min(produced as u64) as usize;
            let to = (end - raw).min(produced as u64) as usize;
            if from < to {
                out.extend_from_slice(&self.out_buf[0][from..to]);
            }
            raw += produced as u64;
        }
        Ok(())
    }

    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Feeds input samples, appending every output sample that is final to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.input_total += input.len() as u64;
        let Some(engine) = self.engine.as_mut() else {
            out.extend_from_slice(input);
            self.output_total += input.len() as u64;
            return Ok(());
        };
        self.pending.extend_from_slice(input);
        let mut consumed = 0;
        loop {
            let need = engine.input_frames_next();
            if self.pending.len() - consumed < need {
                break;
            }
            let chunk = [&self.pending[consumed..consumed + need]];
            let (used, produced) = engine.process_into_buffer(&chunk, &mut self.out_buf, None)?;
            self.last_block.copy_from_slice(chunk[0]);
            self.blocks += 1;
            consumed += used;
            emit(
                &self.out_buf[0][..produced],
                &mut self.delay_left,
                &mut self.output_total,
                out,
            );
        }
        self.pending.drain(..consumed);
        Ok(())
    }

    /// Flushes the tail: pads with silence until every output sample that corresponds to the
    /// input has been produced, then stops at exactly ceil(input * to / from) samples.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let expected = (self.input_total * self.to_hz as u64).div_ceil(self.from_hz as u64);
        let Some(engine) = self.engine.as_mut() else {
            return Ok(());
        };
        let start = out.len();
        let mut guard = 0;
        while self.output_total < expected {
            let need = engine.input_frames_next();
            let take = self.pending.len().min(need);
            let mut chunk = self.pending[..take].to_vec();
            chunk.resize(need, 0.0);
            self.pending.drain(..take);
            let (_, produced) = engine.process_into_buffer(&[&chunk], &mut self.out_buf, None)?;
            emit(
                &self.out_buf[0][..produced],
                &mut self.delay_left,
                &mut self.output_total,
                out,
            );
            guard += 1;
            if guard > 10_000 {
                return Err(Error::InvalidAudio("resampler failed to flush".into()));
            }
        }
        let surplus = (self.output_total - expected) as usize;
        out.truncate(out.len().max(start + surplus) - surplus);
        self.output_total = expected;
        Ok(())
    }

    /// Resamples a whole signal at once (the offline path; same samples as streaming it).
    pub fn resample_all(from_hz: u32, to_hz: u32, input: &[f32]) -> Result<Vec<f32>> {
        let mut resampler = Self::new(from_hz, to_hz)?;
        let mut out = Vec::with_capacity(input.len() * to_hz as usize / from_hz as usize + 16);
        resampler.process(input, &mut out)?;
        resampler.finish(&mut out)?;
        Ok(out)
    }
}

fn emit(produced: &[f32], delay_left: &mut usize, total: &mut u64, out: &mut Vec<f32>) {
    let skip = (*delay_left).min(produced.len());
    *delay_left -= skip;
    out.extend_from_slice(&produced[skip..]);
    *total += (produced.len() - skip) as u64;
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn make_engine(from_hz: u32, to_hz: u32) -> Result<FftFixedIn<f32>> {
    let (from, to) = (from_hz as usize, to_hz as usize);
    let divisor = gcd(from, to);
    let (min_in, min_out) = (from / divisor, to / divisor);
    // About 20 ms of input per chunk, rounded up to the ratio's smallest exact block. Common
    // rates (8, 11.025, 22.05, 44.1, 48, 96 kHz ...) give blocks of a few ms; an odd rate
    // such as TESS's 24414 Hz gives a block of up to a second, which costs latency only.
    let mut fft_chunks = (from / 50).max(64).div_ceil(min_in);
    // The resampler's delay is half its output FFT: keep that even so the trimmed delay is
    // a whole number of samples and the output stays in phase with the input.
    if min_out % 2 == 1 && fft_chunks % 2 == 1 {
        fft_chunks += 1;
    }
    FftFixedIn::<f32>::new(from, to, fft_chunks * min_in, 1, 1).map_err(|source| {
        Error::ResamplerSetup {
            from_hz,
            to_hz,
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn output_length_and_alignment() {
        for (from, to) in [
            (8000, 16000),
            (48000, 16000),
            (44100, 16000),
            (16000, 22050),
            (44099, 16000),
            (24414, 16000),
            (192000, 16000),
        ] {
            let input = tone(from, 440.0, from as usize / 2 + 37);
            let out = StreamResampler::resample_all(from, to, &input).unwrap();
            let expected = (input.len() as u64 * to as u64).div_ceil(from as u64) as usize;
            assert_eq!(out.len(), expected, "{from}->{to}");
            // The delay is trimmed: the resampled tone is in phase with the ideal one to within
            // half an output sample (0.05 for this tone; an untrimmed delay gives ~1).
            let ideal = tone(to, 440.0, out.len());
            let mid = out.len() / 2;
            let err: f32 = (mid..mid + 200)
                .map(|i| (out[i] - ideal[i]).abs())
                .fold(0.0, f32::max);
            assert!(err < 0.05, "{from}->{to}: max error {err}");
        }
    }

    /// The final output plus the provisional tail, at any point of any chunking, is exactly
    /// the offline resampling of the input so far.
    #[test]
    fn provisional_tail_is_the_offline_resampling_of_the_input_so_far() {
        for (from, to) in [
            (8000, 16000),
            (44100, 16000),
            (48000, 16000),
            (24414, 16000),
        ] {
            let input = tone(from, 330.0, from as usize / 3);
            let mut resampler = StreamResampler::new(from, to).unwrap();
            let mut fin = Vec::new();
            let mut received = 0;
            for size in [1, 7, 160, 333, 2000, 41].iter().cycle().take(40) {
                let end = (received + size).min(input.len());
                resampler.process(&input[received..end], &mut fin).unwrap();
                received = end;
                let mut tail = Vec::new();
                resampler.provisional_tail(&mut tail).unwrap();
                let mut now = fin.clone();
                now.extend_from_slice(&tail);
                let offline = StreamResampler::resample_all(from, to, &input[..received]).unwrap();
                assert_eq!(now, offline, "{from}->{to} after {received} samples");
                assert!(resampler.input_for_output(now.len() as u64) <= received as u64);
            }
        }
    }

    /// Gain in dB of a tone at `hz` through `from -> to`, measured away from the edges.
    fn gain_db(from: u32, to: u32, hz: f32) -> f32 {
        let input = tone(from, hz, from as usize);
        let out = StreamResampler::resample_all(from, to, &input).unwrap();
        let mid = &out[out.len() / 4..3 * out.len() / 4];
        let rms = (mid.iter().map(|v| v * v).sum::<f32>() / mid.len() as f32).sqrt();
        20.0 * (rms / (0.5 / 2f32.sqrt())).log10()
    }

    /// The passband and stopband the resampler is documented with (measured: 8 -> 16 kHz is
    /// flat to 0.85 x 4 kHz = 3.4 kHz, the whole telephone band, -2 dB at 3.6 kHz; 44.1 and
    /// 48 -> 16 kHz are flat to 7.2 kHz, -2 dB at 7.6 kHz, and anything above 8.4 kHz, which
    /// would alias, is at least 62 dB down).
    #[test]
    fn passband_is_flat_and_aliases_are_stopped() {
        for (from, to, flat_to) in [
            (8_000, 16_000, 0.85),
            (44_100, 16_000, 0.9),
            (48_000, 16_000, 0.9),
        ] {
            let nyquist = from.min(to) as f32 / 2.0;
            for f in [100.0, 1_000.0, 3_000.0, flat_to * nyquist] {
                let g = gain_db(from, to, f);
                assert!(g.abs() < 0.05, "{from}->{to} {f} Hz: {g} dB");
            }
            if from > to {
                for f in [1.05 * nyquist, 1.5 * nyquist] {
                    let g = gain_db(from, to, f);
                    assert!(g < -60.0, "{from}->{to} {f} Hz: {g} dB");
                }
            }
        }
    }

    #[test]
    fn input_for_output_inverts_output_for_input() {
        let r = StreamResampler::new(44_100, 16_000).unwrap();
        for out in 0..2000u64 {
            let need = r.input_for_output(out);
            assert!(r.output_for_input(need) >= out);
            assert!(need == 0 || r.output_for_input(need - 1) < out);
        }
    }

    #[test]
    fn rates_are_validated() {
        assert!(StreamResampler::new(0, 16000).is_err());
        assert!(StreamResampler::new(10_000_000, 16000).is_err());
        assert!(StreamResampler::new(7999, 16000).is_err());
        assert!(validate_rate(u64::MAX).is_err());
    }
}
