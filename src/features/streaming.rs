//! The incremental front end of a stream. Samples arrive a chunk at a time; each new hop of
//! audio costs one FFT and one mel projection, never a recomputation of the window. Frames
//! sit on the stream's fixed grid (frame k covers samples k*hop .. k*hop + n_fft, librosa's
//! `center=False`), so a window whose start is a multiple of the hop gets exactly the mel
//! frames that `librosa.feature.melspectrogram(y=window, center=False)` computes offline.

use std::collections::VecDeque;

use super::mel::{MelFilterbank, power_to_db_in_place};
use super::stft::{Spectrogram, SpectrumPower};
use crate::config::FeatureConfig;
use crate::error::{Error, Result};

/// Mel power frames computed as samples arrive, kept until the windows that need them pass.
#[derive(Debug)]
pub struct StreamingLogMel {
    n_fft: usize,
    hop: usize,
    n_mels: usize,
    top_db: Option<f32>,
    spectrogram: Spectrogram,
    filterbank: MelFilterbank,
    /// Samples from `next_frame * hop` on, not yet fully consumed by frames.
    pending: Vec<f32>,
    next_frame: u64,
    /// Mel frames `first_frame ..`, n_mels values each.
    frames: VecDeque<f32>,
    first_frame: u64,
    spectrum: Vec<f32>,
}

impl StreamingLogMel {
    pub fn new(config: &FeatureConfig) -> Result<Self> {
        config.validate()?;
        if config.center {
            return Err(Error::Config(
                "streaming features need center = false".into(),
            ));
        }
        let spectrogram = Spectrogram::new(config.n_fft);
        let spectrum = vec![0.0; spectrogram.n_bins()];
        Ok(Self {
            n_fft: config.n_fft,
            hop: config.hop_length,
            n_mels: config.n_mels,
            top_db: config.top_db,
            spectrogram,
            filterbank: MelFilterbank::new(config),
            pending: Vec::new(),
            next_frame: 0,
            frames: VecDeque::new(),
            first_frame: 0,
            spectrum,
        })
    }

    /// Frames in a window of `window_len` samples.
    pub fn frames_per_window(&self, window_len: usize) -> usize {
        super::stft::frame_count(window_len, self.n_fft, self.hop)
    }

    /// Sizes the frame store for `samples` of audio (a window and a hop: the most a stream
    /// fed in chunks of up to a hop holds), so it is not left at the next power of two of
    /// its growth (75 of 128 KiB used, seen in a heap profile).
    pub fn reserve_frames_for(&mut self, samples: usize) {
        let frames = self.frames_per_window(samples) + 1;
        self.frames.reserve_exact(frames * self.n_mels);
    }

    /// Adds samples and computes every frame that is now complete.
    pub fn push(&mut self, samples: &[f32]) {
        self.pending.extend_from_slice(samples);
        let mut offset = 0;
        let mut mel = vec![0.0f32; self.n_mels];
        while self.pending.len() - offset >= self.n_fft {
            let frame = &self.pending[offset..offset + self.n_fft];
            self.spectrogram
                .frame(frame, SpectrumPower::Power, &mut self.spectrum);
            self.filterbank.apply_frame(&self.spectrum, &mut mel);
            self.frames.extend(mel.iter().copied());
            self.next_frame += 1;
            offset += self.hop;
        }
        self.pending.drain(..offset);
    }

    /// `window_logmel` for a window whose last samples are `ahead`, provisional samples
    /// that follow those pushed: the frames they complete are computed for this window
    /// only and not kept.
    pub fn window_logmel_ahead(
        &mut self,
        start_sample: u64,
        window_len: usize,
        ahead: &[f32],
    ) -> Option<Vec<f32>> {
        let end_frame = start_sample / self.hop as u64 + self.frames_per_window(window_len) as u64;
        let missing = end_frame.saturating_sub(self.next_frame) as usize;
        if missing == 0 {
            return self.window_logmel(start_sample, window_len);
        }
        let mut samples = self.pending.clone();
        samples.extend_from_slice(ahead);
        if samples.len() < (missing - 1) * self.hop + self.n_fft {
            return None;
        }
        let mut mel = vec![0.0f32; self.n_mels];
        for k in 0..missing {
            let frame = &samples[k * self.hop..k * self.hop + self.n_fft];
            self.spectrogram
                .frame(frame, SpectrumPower::Power, &mut self.spectrum);
            self.filterbank.apply_frame(&self.spectrum, &mut mel);
            self.frames.extend(mel.iter().copied());
        }
        self.next_frame += missing as u64;
        let values = self.window_logmel(start_sample, window_len);
        // Forget the provisional frames: the real samples will compute their own.
        self.next_frame -= missing as u64;
        self.frames
            .truncate(self.frames.len() - missing * self.n_mels);
        values
    }

    /// The log-mel matrix (frames x n_mels, frame-major) of the window that starts at
    /// `start_sample` (a multiple of the hop) and spans `window_len` samples, clamped to
    /// `top_db` below the window's own peak. Frames before the window are released, so
    /// windows must be requested in order. `None` if the frames are not all computed yet.
    pub fn window_logmel(&mut self, start_sample: u64, window_len: usize) -> Option<Vec<f32>> {
        debug_assert_eq!(
            start_sample % self.hop as u64,
            0,
            "window start off the frame grid"
        );
        let start_frame = start_sample / self.hop as u64;
        let n = self.frames_per_window(window_len) as u64;
        if n == 0 || start_frame + n > self.next_frame || start_frame < self.first_frame {
            return None;
        }
        let release =
            ((start_frame - self.first_frame) as usize * self.n_mels).min(self.frames.len());
        self.frames.drain(..release);
        self.first_frame = start_frame;
        let mut values: Vec<f32> = self
            .frames
            .iter()
            .take(n as usize * self.n_mels)
            .copied()
            .collect();
        power_to_db_in_place(&mut values, self.top_db);
        Some(values)
    }

    /// Every frame still held, as unclamped dB (`10 log10(max(power, 1e-10))`); training
    /// crops these and clamps each crop to `top_db` below its own peak, as a window does.
    pub fn all_frames_db(&self) -> Vec<f32> {
        self.frames
            .iter()
            .map(|&p| 10.0 * p.max(1e-10).log10())
            .collect()
    }

    /// Mel frames held (memory per stream is proportional to this).
    pub fn frames_held(&self) -> usize {
        self.frames.len() / self.n_mels
    }
}
