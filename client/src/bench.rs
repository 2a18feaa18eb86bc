//! Load generator: N concurrent streams over several HTTP/2 connections, each pacing a real
//! clip in real time (or flat out), looped for a duration. Measures per-window latency (the
//! window's last chunk sent -> its prediction received), throughput, lost windows and errors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sentio::audio::{SampleFormat, decode_path, pcm::encode};
use sentio::proto::{
    AudioEncoding, StreamConfig, StreamEmotionsRequest, stream_emotions_request::Request,
    stream_emotions_response::Response,
};
use tokio::sync::Mutex;

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Concurrent streams (the first step with --ramp).
    #[arg(long, default_value_t = 100)]
    pub streams: usize,
    /// Seconds each step runs.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Clip to stream (looped); any container.
    #[arg(long)]
    pub file: PathBuf,
    /// Send as fast as the server takes it instead of in real time.
    #[arg(long)]
    pub no_pace: bool,
    /// Streams per HTTP/2 connection.
    #[arg(long, default_value_t = 50)]
    pub streams_per_connection: usize,
    /// Audio per chunk, ms.
    #[arg(long, default_value_t = 100)]
    pub chunk_ms: u64,
    /// Step the stream count up until p99 exceeds --target-p99-ms or a window is lost.
    #[arg(long)]
    pub ramp: bool,
    /// Streams added per ramp step (default: the first step's count).
    #[arg(long)]
    pub ramp_step: Option<usize>,
    #[arg(long, default_value_t = 250.0)]
    pub target_p99_ms: f64,
    /// One JSON object (per step with --ramp) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    windows: u64,
    expected: u64,
    errors: BTreeMap<String, u64>,
    audio_ms: u64,
}

pub async fn run(conn: &crate::connect::ConnectArgs, args: BenchArgs) -> anyhow::Result<()> {
    let audio = decode_path(&args.file)?;
    let bytes = Arc::new(encode(&audio.samples, SampleFormat::S16Le));
    let mut n = args.streams.max(1);
    let step = args.ramp_step.unwrap_or(n).max(1);
    let mut best = None;
    loop {
        let report = run_step(conn, &args, n, audio.sample_rate, bytes.clone()).await?;
        let held = report["lost_windows"].as_u64() == Some(0)
            && report["errors"].as_object().is_some_and(|e| e.is_empty())
            && report["latency_ms"]["p99"]
                .as_f64()
                .is_some_and(|p| p <= args.target_p99_ms);
        if args.json {
            println!("{report}");
        } else {
            let l = &report["latency_ms"];
            println!(
                "{n:>6} streams: {} windows ({:.0}/s, {:.1} audio s/s), lost {}, errors {}, latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
                report["windows"],
                report["windows_per_second"].as_f64().unwrap_or(0.0),
                report["audio_seconds_per_second"].as_f64().unwrap_or(0.0),
                report["lost_windows"],
                report["errors"],
                l["p50"].as_f64().unwrap_or(0.0),
                l["p90"].as_f64().unwrap_or(0.0),
                l["p99"].as_f64().unwrap_or(0.0),
                l["max"].as_f64().unwrap_or(0.0)
            );
        }
        if !args.ramp || !held {
            if args.ramp {
                let summary = serde_json::json!({"ramp_result": {"largest_streams_held": best, "target_p99_ms": args.target_p99_ms}});
                println!("{summary}");
            }
            return Ok(());
        }
        best = Some(n);
        n += step;
    }
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

async fn run_step(
    conn: &crate::connect::ConnectArgs,
    args: &BenchArgs,
    streams: usize,
    rate: u32,
    bytes: Arc<Vec<u8>>,
) -> anyhow::Result<serde_json::Value> {
    let connections = streams.div_ceil(args.streams_per_connection.max(1));
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(conn.connect().await?);
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let received = Arc::new(AtomicU64::new(0));
    let bar = ProgressBar::new(args.duration);
    bar.set_style(ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} s {msg}",
    )?);
    bar.set_prefix(format!("{streams} streams"));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut tasks = Vec::with_capacity(streams);
    for i in 0..streams {
        let client = clients[i % connections].clone();
        let (tally, received, bytes) = (tally.clone(), received.clone(), bytes.clone());
        let (chunk_ms, pace) = (args.chunk_ms.max(10), !args.no_pace);
        // Stagger starts over one chunk so streams do not tick in lockstep.
        let offset = Duration::from_micros((i as u64 * chunk_ms * 1000) / streams as u64);
        tasks.push(tokio::spawn(async move {
            one_stream(
                client, rate, bytes, chunk_ms, pace, offset, deadline, tally, received,
            )
            .await
        }));
    }
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        bar.set_position(started.elapsed().as_secs().min(args.duration));
        bar.set_message(format!("{} windows", received.load(Ordering::Relaxed)));
    }
    for task in tasks {
        let _ = task.await;
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let mut t = tally.lock().await;
    t.latencies_us.sort_unstable();
    let l = &t.latencies_us;
    Ok(serde_json::json!({
        "streams": streams,
        "connections": connections,
        "paced": !args.no_pace,
        "duration_s": elapsed,
        "windows": t.windows,
        "lost_windows": t.expected.saturating_sub(t.windows),
        "errors": t.errors,
        "windows_per_second": t.windows as f64 / elapsed,
        "audio_seconds_per_second": t.audio_ms as f64 / 1000.0 / elapsed,
        "latency_ms": {"p50": percentile(l, 0.50), "p90": percentile(l, 0.90), "p99": percentile(l, 0.99), "max": percentile(l, 1.0)},
    }))
}

#[allow(clippy::too_many_arguments)]
async fn one_stream(
    mut client: crate::connect::Client,
    rate: u32,
    bytes: Arc<Vec<u8>>,
    chunk_ms: u64,
    pace: bool,
    offset: Duration,
    deadline: Instant,
    tally: Arc<Mutex<Tally>>,
    received: Arc<AtomicU64>,
) {
    tokio::time::sleep(offset).await;
    let chunk_bytes = (rate as u64 * chunk_ms / 1000) as usize * 2;
    let sent_at: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let config = StreamConfig {
        encoding: AudioEncoding::PcmS16le as i32,
        sample_rate_hz: rate,
        channels: 1,
        include_silence: true,
        ..Default::default()
    };
    let sender = {
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let _ = tx
                .send(StreamEmotionsRequest {
                    request: Some(Request::Config(config)),
                })
                .await;
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
                sent_at.lock().expect("lock").push(Instant::now());
                if tx
                    .send(StreamEmotionsRequest {
                        request: Some(Request::Audio(piece)),
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let mut latencies = Vec::new();
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
                            received.fetch_add(1, Ordering::Relaxed);
                            // The chunk holding the window's last sample.
                            let chunk = (p.end_ms.saturating_sub(1) / chunk_ms) as usize;
                            if let Some(at) = sent_at.lock().expect("lock").get(chunk) {
                                latencies.push(at.elapsed().as_micros() as u64);
                            }
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
    let mut t = tally.lock().await;
    t.latencies_us.extend(latencies);
    t.windows += windows;
    t.audio_ms += audio_ms;
    // Without a summary, every window the audio sent should have produced counts.
    t.expected += summary_windows.unwrap_or(windows);
    if let Some(code) = outcome {
        *t.errors.entry(code).or_default() += 1;
    }
}
