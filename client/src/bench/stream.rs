//! One load-generating stream: sends a clip in a loop (paced in real time or flat out) and
//! records, for every window, the time from sending the chunk that holds its last sample to
//! receiving its prediction.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentio::proto::{
    AudioEncoding, StreamConfig, StreamEmotionsRequest, stream_emotions_request::Request,
    stream_emotions_response::Response,
};

use super::Live;

/// What one stream does.
#[derive(Clone)]
pub(super) struct StreamPlan {
    pub rate: u32,
    pub bytes: Arc<Vec<u8>>,
    pub chunk_ms: u64,
    pub pace: bool,
    pub offset: Duration,
    pub deadline: Instant,
}

/// Send times of a stream's chunks, indexed from `first`; trimmed as windows come back so a
/// long soak keeps a constant footprint.
#[derive(Default)]
struct SentLog {
    first: usize,
    times: VecDeque<Instant>,
}

impl SentLog {
    fn get(&self, chunk: usize) -> Option<&Instant> {
        self.times.get(chunk.checked_sub(self.first)?)
    }

    fn forget_before(&mut self, chunk: usize) {
        while self.first < chunk && self.times.pop_front().is_some() {
            self.first += 1;
        }
    }
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
        Ok(response) => receive(response.into_inner(), plan.chunk_ms, &sent_at, &live).await,
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
        encoding: AudioEncoding::PcmS16le as i32,
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
    let chunk_bytes = (plan.rate as u64 * plan.chunk_ms / 1000) as usize * 2;
    let bytes = &plan.bytes;
    let mut ticker = tokio::time::interval(Duration::from_millis(plan.chunk_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut position = 0usize;
    while Instant::now() < plan.deadline {
        if plan.pace {
            ticker.tick().await;
        }
        let end = (position + chunk_bytes).min(bytes.len());
        let piece = bytes[position..end].to_vec();
        position = if end == bytes.len() { 0 } else { end };
        sent_at
            .lock()
            .expect("lock")
            .times
            .push_back(Instant::now());
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
    chunk_ms: u64,
    sent_at: &std::sync::Mutex<SentLog>,
    live: &Live,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        match inbound.message().await {
            Ok(Some(m)) => match m.response {
                Some(Response::Prediction(p)) => {
                    tally.windows += 1;
                    // The chunk holding the window's last sample.
                    let chunk = (p.end_ms.saturating_sub(1) / chunk_ms) as usize;
                    let mut log = sent_at.lock().expect("lock");
                    let latency = log.get(chunk).map(|at| at.elapsed());
                    // Later windows start at or after this one's start.
                    log.forget_before((p.start_ms / chunk_ms) as usize);
                    drop(log);
                    live.window(latency);
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
