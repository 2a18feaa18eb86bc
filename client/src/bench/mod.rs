//! Load generator: N concurrent streams over several HTTP/2 connections, each pacing a real
//! clip in real time (or flat out), looped for a duration. Measures per-window latency (the
//! window's last chunk sent -> its prediction received), throughput, lost windows and errors,
//! overall and per interval (with the server's resident memory when its pid is given).

mod plot;
mod stream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sentio::audio::{SampleFormat, decode_path, pcm::encode};
use serde_json::{Value, json};

use plot::Series;
use stream::{StreamPlan, one_stream};

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
    /// Seconds per timeline point (latency percentiles, windows/s, server memory).
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
    /// The server's process id, to sample its resident memory (same machine, Linux).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write a PNG: latency percentiles against streams (--ramp), else p99 and memory over time.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// One JSON object (per step with --ramp) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What the streams report while they run.
#[derive(Default)]
pub struct Live {
    inner: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    /// Latencies since the last timeline point.
    recent_us: Vec<u64>,
    windows: u64,
    expected: u64,
    errors: BTreeMap<String, u64>,
    audio_ms: u64,
}

impl Live {
    fn window(&self, latency: Option<Duration>) {
        let mut t = self.inner.lock().expect("lock");
        t.windows += 1;
        if let Some(l) = latency {
            t.latencies_us.push(l.as_micros() as u64);
            t.recent_us.push(l.as_micros() as u64);
        }
    }

    fn stream_ended(&self, windows: u64, expected: u64, audio_ms: u64, error: Option<String>) {
        let mut t = self.inner.lock().expect("lock");
        t.expected += expected.max(windows);
        t.audio_ms += audio_ms;
        if let Some(code) = error {
            *t.errors.entry(code).or_default() += 1;
        }
    }
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn percentiles(mut us: Vec<u64>) -> Value {
    us.sort_unstable();
    json!({"p50": percentile(&us, 0.50), "p90": percentile(&us, 0.90), "p99": percentile(&us, 0.99), "max": percentile(&us, 1.0)})
}

/// Resident memory of a process, MiB (Linux /proc).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub async fn run(conn: &crate::connect::ConnectArgs, args: BenchArgs) -> anyhow::Result<()> {
    let audio = decode_path(&args.file)?;
    let bytes = Arc::new(encode(&audio.samples, SampleFormat::S16Le));
    // Callers start at random moments, so their windows complete spread over the model's
    // hop; starting them within one chunk would make every window of every stream land in
    // the same instant.
    let hop_ms = conn
        .connect()
        .await?
        .get_model_info(sentio::proto::GetModelInfoRequest {})
        .await?
        .into_inner()
        .default_hop_ms as u64;
    let mut n = args.streams.max(1);
    let step = args.ramp_step.unwrap_or(n).max(1);
    let mut best = None;
    let mut steps = Vec::new();
    loop {
        let report = run_step(conn, &args, n, hop_ms, audio.sample_rate, bytes.clone()).await?;
        let held = report["windows"].as_u64().is_some_and(|w| w > 0)
            && report["lost_windows"].as_u64() == Some(0)
            && report["errors"].as_object().is_some_and(|e| e.is_empty())
            && report["latency_ms"]["p99"]
                .as_f64()
                .is_some_and(|p| p <= args.target_p99_ms);
        print_step(&args, &report);
        steps.push(report);
        if !args.ramp || !held {
            break;
        }
        best = Some(n);
        n += step;
    }
    if args.ramp {
        println!(
            "{}",
            json!({"ramp_result": {"largest_streams_held": best, "target_p99_ms": args.target_p99_ms}})
        );
    }
    if let Some(path) = &args.plot {
        if args.ramp {
            plot_ramp(path, &steps, args.target_p99_ms)?;
        } else {
            plot_timeline(path, &steps[0])?;
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_step(args: &BenchArgs, report: &Value) {
    if args.json {
        println!("{report}");
        return;
    }
    let l = &report["latency_ms"];
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    println!(
        "{:>6} streams: {} windows ({:.0}/s, {:.1} audio s/s), lost {}, errors {}, latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}, server RSS {} MiB",
        report["streams"],
        report["windows"],
        f(&report["windows_per_second"]),
        f(&report["audio_seconds_per_second"]),
        report["lost_windows"],
        report["errors"],
        f(&l["p50"]),
        f(&l["p90"]),
        f(&l["p99"]),
        f(&l["max"]),
        report["server_rss_mib"]["end"]
    );
}

async fn run_step(
    conn: &crate::connect::ConnectArgs,
    args: &BenchArgs,
    streams: usize,
    hop_ms: u64,
    rate: u32,
    bytes: Arc<Vec<u8>>,
) -> anyhow::Result<Value> {
    let connections = streams.div_ceil(args.streams_per_connection.max(1));
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(conn.connect().await?);
    }
    let rss_before = args.server_pid.and_then(rss_mib);
    let live = Arc::new(Live::default());
    let bar = ProgressBar::new(args.duration);
    bar.set_style(ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} s {msg}",
    )?);
    bar.set_prefix(format!("{streams} streams"));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let chunk_ms = args.chunk_ms.max(10);
    let spread_us = hop_ms.max(chunk_ms) * 1000;
    let mut tasks = Vec::with_capacity(streams);
    for i in 0..streams {
        // Each call lasts the same time from its own start, so calls also end spread out.
        let offset = Duration::from_micros(i as u64 * spread_us / streams as u64);
        let plan = StreamPlan {
            rate,
            bytes: bytes.clone(),
            chunk_ms,
            pace: !args.no_pace,
            offset,
            deadline: deadline + offset,
        };
        let client = clients[i % connections].clone();
        tasks.push(tokio::spawn(one_stream(client, plan, live.clone())));
    }
    let timeline = watch(args, &live, &bar, started, deadline).await;
    for task in tasks {
        if let Err(e) = task.await {
            live.stream_ended(0, 0, 0, Some(format!("client task failed: {e}")));
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let mut t = live.inner.lock().expect("lock");
    let latencies = std::mem::take(&mut t.latencies_us);
    Ok(json!({
        "streams": streams,
        "connections": connections,
        "paced": !args.no_pace,
        "duration_s": elapsed,
        "windows": t.windows,
        "lost_windows": t.expected.saturating_sub(t.windows),
        "errors": t.errors,
        "windows_per_second": t.windows as f64 / elapsed,
        "audio_seconds_per_second": t.audio_ms as f64 / 1000.0 / elapsed,
        "latency_ms": percentiles(latencies),
        "server_rss_mib": {"before": rss_before, "end": args.server_pid.and_then(rss_mib)},
        "timeline": timeline,
    }))
}

/// Until the deadline: one timeline point per `--interval` (window rate, latency
/// percentiles of that interval, server memory), and the progress bar.
async fn watch(
    args: &BenchArgs,
    live: &Live,
    bar: &ProgressBar,
    started: Instant,
    deadline: Instant,
) -> Vec<Value> {
    let mut timeline = Vec::new();
    let interval = Duration::from_secs(args.interval.max(1));
    let mut next_point = started + interval;
    let mut windows_before = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        bar.set_position(started.elapsed().as_secs().min(args.duration));
        if Instant::now() < next_point {
            continue;
        }
        let (recent, windows) = {
            let mut t = live.inner.lock().expect("lock");
            (std::mem::take(&mut t.recent_us), t.windows)
        };
        let point = json!({
            "t_s": started.elapsed().as_secs_f64(),
            "windows_per_second": (windows - windows_before) as f64 / interval.as_secs_f64(),
            "latency_ms": percentiles(recent),
            "server_rss_mib": args.server_pid.and_then(rss_mib),
        });
        bar.set_message(format!(
            "p99 {} ms, {} windows",
            point["latency_ms"]["p99"], windows
        ));
        windows_before = windows;
        timeline.push(point);
        next_point += interval;
    }
    timeline
}

fn plot_ramp(path: &std::path::Path, steps: &[Value], target: f64) -> anyhow::Result<()> {
    let line = |name, key: &str, color| Series {
        name,
        points: steps
            .iter()
            .map(|s| {
                (
                    s["streams"].as_f64().unwrap_or(0.0),
                    s["latency_ms"][key].as_f64().unwrap_or(0.0),
                )
            })
            .collect(),
        color,
    };
    let series = [
        line("p50", "p50", plot::GREEN_),
        line("p90", "p90", plot::BLUE_),
        line("p99", "p99", plot::ORANGE_),
    ];
    plot::lines(
        path,
        "Window latency against concurrent real-time streams",
        "concurrent streams",
        ("latency, ms", &series),
        None,
        Some((target, "p99 target")),
    )
}

fn plot_timeline(path: &std::path::Path, step: &Value) -> anyhow::Result<()> {
    let empty = Vec::new();
    let points = step["timeline"].as_array().unwrap_or(&empty);
    let series = |name, pick: &dyn Fn(&Value) -> Option<f64>, color| Series {
        name,
        points: points
            .iter()
            .filter_map(|p| Some((p["t_s"].as_f64()? / 60.0, pick(p)?)))
            .collect(),
        color,
    };
    let latency = [
        series("p50", &|p| p["latency_ms"]["p50"].as_f64(), plot::GREEN_),
        series("p99", &|p| p["latency_ms"]["p99"].as_f64(), plot::ORANGE_),
    ];
    let memory = [series(
        "server RSS",
        &|p| p["server_rss_mib"].as_f64(),
        plot::RED_,
    )];
    let title = format!(
        "{} real-time streams: latency and server memory over time",
        step["streams"]
    );
    plot::lines(
        path,
        &title,
        "minutes",
        ("latency, ms", &latency),
        Some(("resident memory, MiB", &memory)),
        None,
    )
}
