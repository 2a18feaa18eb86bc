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
pub struct StreamPlan {
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

pub async fn one_stream(mut client: crate::connect::Client, plan: StreamPlan, live: Arc<Live>) {
    tokio::time::sleep(plan.offset).await;
    let chunk_ms = plan.chunk_ms;
    let chunk_bytes = (plan.rate as u64 * chunk_ms / 1000) as usize * 2;
    let sent_at: Arc<std::sync::Mutex<SentLog>> = Arc::default();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let config = StreamConfig {
        encoding: AudioEncoding::PcmS16le as i32,
        sample_rate_hz: plan.rate,
        channels: 1,
        include_silence: true,
        ..Default::default()
    };
    let sender = {
        let (sent_at, bytes) = (sent_at.clone(), plan.bytes.clone());
        let (pace, deadline) = (plan.pace, plan.deadline);
        tokio::spawn(async move {
            let config = Request::Config(config);
            if tx
                .send(StreamEmotionsRequest {
                    request: Some(config),
                })
                .await
                .is_err()
            {
                return;
            }
            let mut ticker = tokio::time::interval(Duration::from_millis(chunk_ms));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut position = 0usize;
            while Instant::now() < deadline {
                if pace {
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
                let audio = Request::Audio(piece);
                if tx
                    .send(StreamEmotionsRequest {
                        request: Some(audio),
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let mut windows = 0u64;
    let mut outcome: Option<String> = None;
    let mut summary_windows = None;
    let mut audio_ms = 0;
    match client
        .stream_emotions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Err(status) => outcome = Some(format!("{:?}", status.code())),
        Ok(response) => {
            let mut inbound = response.into_inner();
            loop {
                match inbound.message().await {
                    Ok(Some(m)) => match m.response {
                        Some(Response::Prediction(p)) => {
                            windows += 1;
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
                            summary_windows = Some(s.windows);
                            audio_ms = s.audio_ms;
                        }
                        _ => {}
                    },
                    Ok(None) => break,
                    Err(status) => {
                        outcome = Some(format!("{:?}", status.code()));
                        break;
                    }
                }
            }
        }
    }
    let _ = sender.await;
    // Without a summary, every window the audio sent should have produced counts.
    live.stream_ended(
        windows,
        summary_windows.unwrap_or(windows),
        audio_ms,
        outcome,
    );
}
