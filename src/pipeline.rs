//! The per-stream analysis pipeline shared by streams, `Classify` and `sentio classify`:
//! samples at the caller's rate -> resampling -> windows -> the model's input for each
//! window (log-mel frames computed incrementally per hop), with silent windows gated out.
//! One implementation, so a file classified offline and the same audio streamed in any
//! chunking get identical windows.

use crate::FeatureConfig;
use crate::audio::{StreamResampler, Window, WindowAssembler};
use crate::error::{Error, Result};
use crate::features::{SpeakerProfile, StreamingLogMel};
use crate::model::{ModelCard, ModelInput, WindowInput, seed::seed_features};

/// Windows quieter than this (RMS, dB relative to full scale) are silence, not speech.
pub const DEFAULT_SILENCE_DBFS: f32 = -55.0;

/// A window ready for the model (or gated as silence).
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedWindow {
    pub index: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The network input; `None` when the window is silence.
    pub input: Option<WindowInput>,
}

/// Most windows covering any one instant (window_ms / hop_ms).
pub const MAX_WINDOW_OVERLAP: u32 = 20;

/// Window length and hop a stream asked for, checked against the model card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    pub window_ms: u32,
    pub hop_ms: u32,
}

impl WindowSpec {
    /// Fills zeros with the card's defaults and validates the result.
    pub fn resolve(card: &ModelCard, window_ms: u32, hop_ms: u32) -> Result<Self> {
        let window_ms = if window_ms == 0 {
            card.window_ms
        } else {
            window_ms
        };
        let hop_ms = if hop_ms == 0 {
            card.hop_ms.min(window_ms)
        } else {
            hop_ms
        };
        if window_ms < card.min_window_ms || window_ms > card.max_window_ms {
            return Err(Error::Config(format!(
                "window_ms {window_ms} is outside the model's range {}..={} ms",
                card.min_window_ms, card.max_window_ms
            )));
        }
        if hop_ms > window_ms {
            return Err(Error::Config(format!(
                "hop_ms {hop_ms} is longer than window_ms {window_ms}"
            )));
        }
        let granularity = hop_granularity_ms(card);
        if hop_ms % granularity != 0 || window_ms % granularity != 0 {
            return Err(Error::Config(format!(
                "window_ms ({window_ms}) and hop_ms ({hop_ms}) must be multiples of {granularity} ms (the model's frame hop)"
            )));
        }
        // Each window costs a forward pass and its frames' memory: a 10 ms hop on an 8 s
        // window would be 800 passes per second of audio.
        if (hop_ms as u64) * (MAX_WINDOW_OVERLAP as u64) < window_ms as u64 {
            return Err(Error::Config(format!(
                "hop_ms {hop_ms} is too short for window_ms {window_ms}: windows may overlap at most {MAX_WINDOW_OVERLAP} times (hop_ms >= {})",
                window_ms.div_ceil(MAX_WINDOW_OVERLAP)
            )));
        }
        Ok(Self { window_ms, hop_ms })
    }
}

/// Window and hop must be whole multiples of this many ms, so windows sit on the frame grid.
pub fn hop_granularity_ms(card: &ModelCard) -> u32 {
    let hop_ms = card.features.hop_length as f64 * 1000.0 / card.features.sr as f64;
    if hop_ms.fract() == 0.0 {
        hop_ms as u32
    } else {
        1
    }
}

/// Sum of squares per hop-sized block of the stream, so a window's level is known without
/// keeping its samples (the log-mel path keeps only mel frames: ~50 KB per stream).
#[derive(Debug)]
struct BlockEnergy {
    block: usize,
    sums: std::collections::VecDeque<f64>,
    first_block: u64,
    current: f64,
    filled: usize,
}

impl BlockEnergy {
    fn new(block: usize) -> Self {
        Self {
            block,
            sums: Default::default(),
            first_block: 0,
            current: 0.0,
            filled: 0,
        }
    }

    fn push(&mut self, samples: &[f32]) {
        for &s in samples {
            self.current += (s as f64) * (s as f64);
            self.filled += 1;
            if self.filled == self.block {
                self.sums.push_back(self.current);
                (self.current, self.filled) = (0.0, 0);
            }
        }
    }

    /// Mean square over [start, start + len), releasing blocks before `start`; samples past
    /// those pushed come from `ahead` (provisional samples that follow them).
    fn mean_square(&mut self, start: u64, len: usize, ahead: &[f32]) -> f64 {
        let first = start / self.block as u64;
        while self.first_block < first && !self.sums.is_empty() {
            self.sums.pop_front();
            self.first_block += 1;
        }
        let blocks = len.div_ceil(self.block);
        let mut total: f64 = self.sums.iter().take(blocks).sum();
        if blocks > self.sums.len() {
            total += self.current;
            let pushed = (self.sums.len() * self.block + self.filled).min(len);
            let from_ahead = (len - pushed).min(ahead.len());
            total += ahead[..from_ahead]
                .iter()
                .map(|&s| (s as f64) * (s as f64))
                .sum::<f64>();
        }
        total / len.max(1) as f64
    }
}

/// Samples in, prepared windows out.
#[derive(Debug)]
pub struct WindowPipeline {
    /// Only the features: a whole card (with its metrics JSON) per stream would cost tens
    /// of KB of every stream's memory.
    features: FeatureConfig,
    resampler: StreamResampler,
    assembler: WindowAssembler,
    logmel: Option<StreamingLogMel>,
    energy: BlockEnergy,
    silence_dbfs: f32,
    min_tail: usize,
    resampled: Vec<f32>,
    /// The resampler's provisional output past `resampled` (see `push`).
    ahead: Vec<f32>,
    windows: Vec<Window>,
    /// The caller's running spectrum, for a model trained on adapted windows.
    profile: Option<SpeakerProfile>,
}

impl WindowPipeline {
    pub fn new(
        card: &ModelCard,
        input_rate: u32,
        spec: WindowSpec,
        silence_dbfs: f32,
    ) -> Result<Self> {
        let rate = card.features.sr;
        // A clip-vector model needs a window's samples; log-mel models only its frames.
        let input = card.architecture.spec().input();
        let assembler = WindowAssembler::new(
            card.ms_to_samples(spec.window_ms),
            card.ms_to_samples(spec.hop_ms),
            rate,
            input == ModelInput::ClipVector,
        )?;
        let logmel = match input {
            ModelInput::LogMelFrames => {
                let mut logmel = StreamingLogMel::new(&card.features)?;
                logmel.reserve_frames_for(card.ms_to_samples(spec.window_ms + spec.hop_ms));
                Some(logmel)
            }
            ModelInput::ClipVector => None,
        };
        Ok(Self {
            features: card.features.clone(),
            resampler: StreamResampler::new(input_rate, rate)?,
            assembler,
            logmel,
            energy: BlockEnergy::new(card.features.hop_length),
            silence_dbfs,
            min_tail: card.ms_to_samples(card.min_window_ms),
            resampled: Vec::new(),
            ahead: Vec::new(),
            windows: Vec::new(),
            profile: card.adaptation.as_ref().map(SpeakerProfile::new),
        })
    }

    /// Reads each window on its own, not against the caller's running spectrum (for a
    /// model with `adaptation` in its card; others never adapt).
    pub fn without_adaptation(mut self) -> Self {
        self.profile = None;
        self
    }

    /// Continues a caller's profile from an earlier pipeline (one call split over several
    /// recordings); `None` leaves this pipeline's own.
    pub fn continue_profile(&mut self, profile: Option<SpeakerProfile>) {
        if profile.is_some() && self.profile.is_some() {
            self.profile = profile;
        }
    }

    /// The caller's profile so far (`None` when this pipeline does not adapt).
    pub fn take_profile(&mut self) -> Option<SpeakerProfile> {
        self.profile.take()
    }

    /// Feeds samples at the input rate; appends every window completed by them.
    ///
    /// A window is prepared as soon as its last input sample is here, never a resampler
    /// block later: input is fed up to exactly that sample, and what the resampler has not
    /// finalized yet is taken from its provisional tail (resampled as if the audio ended
    /// there). So each window depends only on the input up to its end, whatever the
    /// chunking, and equals the offline resampling of that prefix.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<PreparedWindow>) -> Result<()> {
        let mut rest = samples;
        loop {
            let window_end = self.assembler.next_window_end();
            let boundary = self.resampler.input_for_output(window_end);
            let room = boundary.saturating_sub(self.resampler.input_total());
            let (now, later) = rest.split_at(rest.len().min(room as usize));
            rest = later;
            self.resampled.clear();
            self.resampler.process(now, &mut self.resampled)?;
            self.advance(out)?;
            if self.resampler.input_total() == boundary
                && self.assembler.next_window_end() == window_end
            {
                self.ahead.clear();
                self.resampler.provisional_tail(&mut self.ahead)?;
                self.advance_ahead(out)?;
                if self.assembler.next_window_end() == window_end {
                    return Err(Error::Model("the resampler's tail missed a window".into()));
                }
            }
            if rest.is_empty() {
                return Ok(());
            }
        }
    }

    /// Ends the stream: flushes the resampler and emits the final partial window, if long
    /// enough.
    pub fn finish(&mut self, out: &mut Vec<PreparedWindow>) -> Result<()> {
        self.resampled.clear();
        self.resampler.finish(&mut self.resampled)?;
        self.advance(out)?;
        if let Some(tail) = self.assembler.finish(self.min_tail) {
            out.push(self.prepare(&tail, &[])?);
        }
        Ok(())
    }

    /// Milliseconds of audio received (at the model rate).
    pub fn audio_ms(&self) -> u64 {
        self.assembler.total_samples() * 1000 / self.features.sr as u64
    }

    fn advance(&mut self, out: &mut Vec<PreparedWindow>) -> Result<()> {
        if let Some(logmel) = self.logmel.as_mut() {
            logmel.push(&self.resampled);
        }
        self.energy.push(&self.resampled);
        self.windows.clear();
        self.assembler.push(&self.resampled, &mut self.windows);
        self.prepare_windows(&[], out)
    }

    /// Emits the windows that the provisional samples in `self.ahead` complete.
    fn advance_ahead(&mut self, out: &mut Vec<PreparedWindow>) -> Result<()> {
        self.windows.clear();
        self.assembler.push_ahead(&self.ahead, &mut self.windows);
        let ahead = std::mem::take(&mut self.ahead);
        let result = self.prepare_windows(&ahead, out);
        self.ahead = ahead;
        result
    }

    fn prepare_windows(&mut self, ahead: &[f32], out: &mut Vec<PreparedWindow>) -> Result<()> {
        let windows = std::mem::take(&mut self.windows);
        for w in &windows {
            out.push(self.prepare(w, ahead)?);
        }
        self.windows = windows;
        Ok(())
    }

    fn prepare(&mut self, w: &Window, ahead: &[f32]) -> Result<PreparedWindow> {
        let power = self.energy.mean_square(w.start_sample, w.len, ahead);
        let dbfs = 10.0 * power.max(1e-20).log10();
        let speech = dbfs >= self.silence_dbfs as f64;
        let input = match (&mut self.logmel, speech) {
            (_, false) => {
                // Still advance the frame cache past this window.
                if let Some(logmel) = self.logmel.as_mut() {
                    logmel.window_logmel_ahead(w.start_sample, w.len, ahead);
                }
                None
            }
            (Some(logmel), true) => {
                let mut values = logmel
                    .window_logmel_ahead(w.start_sample, w.len, ahead)
                    .ok_or_else(|| Error::Model("log-mel frames missing for a window".into()))?;
                if let Some(profile) = self.profile.as_mut() {
                    profile.adapt(&mut values);
                }
                Some(WindowInput {
                    frames: values.len() / self.features.n_mels,
                    values,
                })
            }
            (None, true) => Some(WindowInput {
                frames: 1,
                values: seed_features(&w.samples, &self.features)?,
            }),
        };
        Ok(PreparedWindow {
            index: w.index,
            start_ms: w.start_ms(),
            end_ms: w.end_ms(),
            input,
        })
    }
}
