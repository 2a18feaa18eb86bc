//! One load-generating stream: sends a clip in a loop (paced in real time or flat out) and
//! records, for every window, the time from sending the chunk that holds its last sample to
//! receiving its prediction.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentio::proto::{
    StreamConfig, StreamEmotionsRequest, stream_emotions_request::Request,
    stream_emotions_response::Response,
};

use super::Live;
use sentio::audio::SampleFormat;

/// What one stream does.
#[derive(Clone)]
pub(super) struct StreamPlan {
    pub rate: u32,
    pub encoding: SampleFormat,
    pub bytes: Arc<Vec<u8>>,
    pub chunk_ms: u64,
    pub pace: bool,
    pub offset: Duration,
    pub deadline: Instant,
}

/// When each chunk was sent and where the stream's audio stood after it (samples since the
/// stream began, loops included), oldest first; trimmed as windows come back so a long soak
/// keeps a constant footprint.
#[derive(Default)]
struct SentLog {
    chunks: VecDeque<(u64, Instant)>,
}

impl SentLog {
    fn sent(&mut self, end_sample: u64, at: Instant) {
        self.chunks.push_back((end_sample, at));
    }

    /// The send time of the chunk that holds `sample` (the first chunk ending after it).
    fn holding(&self, sample: u64) -> Option<Instant> {
        let i = self.chunks.partition_point(|&(end, _)| end <= sample);
        self.chunks.get(i).map(|&(_, at)| at)
    }

    /// Drops chunks that end at or before `sample` (no later window needs them).
    fn forget_through(&mut self, sample: u64) {
        while self.chunks.front().is_some_and(|&(end, _)| end <= sample) {
            self.chunks.pop_front();
        }
    }
}

/// Stream time in ms to a sample index at `rate`.
fn sample_at(ms: u64, rate: u32) -> u64 {
    ms * rate as u64 / 1000
}

/// The next `len` bytes of the clip from `position`, wrapping around its end, so every chunk
/// has the same length and the stream's clock runs on across loops as a call's would.
fn cyclic_chunk(clip: &[u8], position: &mut usize, len: usize) -> Vec<u8> {
    let mut piece = Vec::with_capacity(len);
    while piece.len() < len && !clip.is_empty() {
        let take = (len - piece.len()).min(clip.len() - *position);
        piece.extend_from_slice(&clip[*position..*position + take]);
        *position = (*position + take) % clip.len();
    }
    piece
}

pub(super) async fn one_stream(
    mut client: crate::connect::Client,
    plan: StreamPlan,
    live: Arc<Live>,
) {
    tokio::time::sleep(plan.offset).await;
    let sent_at: Arc<std::sync::Mutex<SentLog>> = Arc::default();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let sender = tokio::spawn(send_looped(tx, plan.clone(), sent_at.clone()));
    let tally = match client
        .stream_emotions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Err(status) => Tally {
            outcome: Some(format!("{:?}", status.code())),
            ..Tally::default()
        },
        Ok(response) => receive(response.into_inner(), plan.rate, &sent_at, &live).await,
    };
    let _ = sender.await;
    // Without a summary, every window the audio sent should have produced counts.
    live.stream_ended(
        tally.windows,
        tally.summary_windows.unwrap_or(tally.windows),
        tally.audio_ms,
        tally.outcome,
    );
}

/// The config, then the clip in chunks, looping, until the deadline; each chunk's send
/// time goes into `sent_at`.
async fn send_looped(
    tx: tokio::sync::mpsc::Sender<StreamEmotionsRequest>,
    plan: StreamPlan,
    sent_at: Arc<std::sync::Mutex<SentLog>>,
) {
    let config = StreamConfig {
        encoding: crate::encoding_of(plan.encoding) as i32,
        sample_rate_hz: plan.rate,
        channels: 1,
        include_silence: true,
        ..Default::default()
    };
    let config = StreamEmotionsRequest {
        request: Some(Request::Config(config)),
    };
    if tx.send(config).await.is_err() {
        return;
    }
    let chunk_samples = (sample_at(plan.chunk_ms, plan.rate) as usize).max(1);
    let mut ticker = tokio::time::interval(Duration::from_millis(plan.chunk_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (mut position, mut samples_sent) = (0usize, 0u64);
    while Instant::now() < plan.deadline {
        if plan.pace {
            ticker.tick().await;
        }
        let width = plan.encoding.bytes_per_sample();
        let piece = cyclic_chunk(&plan.bytes, &mut position, chunk_samples * width);
        samples_sent += (piece.len() / width) as u64;
        sent_at
            .lock()
            .expect("lock")
            .sent(samples_sent, Instant::now());
        let audio = StreamEmotionsRequest {
            request: Some(Request::Audio(piece)),
        };
        if tx.send(audio).await.is_err() {
            break;
        }
    }
}

/// What came back on one stream.
#[derive(Default)]
struct Tally {
    windows: u64,
    summary_windows: Option<u64>,
    audio_ms: u64,
    outcome: Option<String>,
}

/// Reads predictions until the stream ends, timing each window against the send of the
/// chunk that holds its last sample.
async fn receive(
    mut inbound: tonic::Streaming<sentio::proto::StreamEmotionsResponse>,
    rate: u32,
    sent_at: &std::sync::Mutex<SentLog>,
    live: &Live,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        match inbound.message().await {
            Ok(Some(m)) => match m.response {
                Some(Response::Prediction(p)) => {
                    tally.windows += 1;
                    // The window's last sample, in the stream's own time.
                    let last = sample_at(p.end_ms, rate).saturating_sub(1);
                    let mut log = sent_at.lock().expect("lock");
                    let latency = log.holding(last).map(|at| at.elapsed());
                    // Later windows start at or after this one's start.
                    log.forget_through(sample_at(p.start_ms, rate));
                    drop(log);
                    live.window(latency, p.latency_us);
                }
                Some(Response::Summary(s)) => {
                    tally.summary_windows = Some(s.windows);
                    tally.audio_ms = s.audio_ms;
                }
                _ => {}
            },
            Ok(None) => return tally,
            Err(status) => {
                tally.outcome = Some(format!("{:?}", status.code()));
                return tally;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3.637 s clip in 100 ms chunks (not a multiple): chunks keep their length across
    /// loops and every window is timed against the chunk that really holds its last sample.
    #[test]
    fn windows_are_timed_against_their_chunk_on_a_clip_of_any_length() {
        let rate = 16_000;
        let clip = vec![0u8; 2 * 58_192]; // 3.637 s of s16
        let (mut position, mut sent, mut log) = (0, 0u64, SentLog::default());
        let start = Instant::now();
        let send_time = |k: u64| start + Duration::from_millis(100 * k);
        for k in 0..100u64 {
            let piece = cyclic_chunk(&clip, &mut position, 1600 * 2);
            assert_eq!(piece.len(), 3200);
            sent += 1600;
            log.sent(sent, send_time(k));
        }
        // A window ending at 9.05 s (third loop) ends in the chunk sent at 9.0 s; one ending
        // exactly at 9.1 s has its last sample in that chunk too.
        for (end_ms, chunk) in [(9050, 90), (9100, 90), (9101, 91), (100, 0), (2000, 19)] {
            let last = sample_at(end_ms, rate) - 1;
            assert_eq!(log.holding(last), Some(send_time(chunk)), "{end_ms} ms");
        }
        log.forget_through(sample_at(9000, rate));
        assert_eq!(log.holding(sample_at(9050, rate)), Some(send_time(90)));
        assert_eq!(log.chunks.len(), 10);
    }
}
