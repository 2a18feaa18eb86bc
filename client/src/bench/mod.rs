//! Load generator: N concurrent streams over several HTTP/2 connections, each pacing a real
//! clip in real time (or flat out), looped for a duration. Measures per-window latency (the
//! window's last chunk sent -> its prediction received), throughput, lost windows and errors,
//! overall and per interval (with the server's resident memory when its pid is given).

mod plot;
mod report;
mod stream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sentio::audio::{SampleFormat, StreamResampler, decode_path, pcm::encode};

use plot::Series;
use report::{Percentiles, RampLine, RampResult, RssMib, StepReport, TimelinePoint};
use stream::{StreamPlan, one_stream};

#[derive(Args, Clone)]
pub(crate) struct BenchArgs {
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
    /// Audio per chunk, ms (e.g. 20 for telephony frames, 10 for a browser).
    #[arg(long, default_value_t = 100)]
    pub chunk_ms: u64,
    /// Encoding the streams send, as a caller would (the clip is encoded to it).
    #[arg(long, value_enum, default_value = "s16le")]
    pub encoding: SampleFormat,
    /// Sample rate the streams send at, Hz (the clip is resampled to it); default: the clip's.
    #[arg(long)]
    pub rate: Option<u32>,
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
pub(crate) struct Live {
    inner: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    /// What the server said (`latency_us`) for the same windows.
    server_latencies_us: Vec<u64>,
    /// Windows whose server latency exceeded what this client measured: impossible if the
    /// server counts from the right chunk (its clock starts after our send).
    server_over_client: u64,
    /// Latencies since the last timeline point.
    recent_us: Vec<u64>,
    windows: u64,
    expected: u64,
    errors: BTreeMap<String, u64>,
    audio_ms: u64,
}

impl Live {
    fn window(&self, latency: Option<Duration>, server_us: u64) {
        let mut t = self.inner.lock().expect("lock");
        t.windows += 1;
        t.server_latencies_us.push(server_us);
        if let Some(l) = latency {
            let us = l.as_micros() as u64;
            t.latencies_us.push(us);
            t.recent_us.push(us);
            t.server_over_client += u64::from(server_us > us);
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

/// CPU time a process has used, user and system, in seconds (Linux /proc; its clock ticks
/// are USER_HZ, 100 a second on Linux).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields 14 and 15 follow its ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Cores a process used since `before` (its CPU seconds then), over `elapsed` seconds.
fn cores_since(pid: &str, before: Option<f64>, elapsed: f64) -> Option<f64> {
    Some((cpu_seconds(pid)? - before?) / elapsed)
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

pub(crate) async fn run(conn: &crate::connect::ConnectArgs, args: BenchArgs) -> anyhow::Result<()> {
    let audio = decode_path(&args.file)?;
    let rate = args.rate.unwrap_or(audio.sample_rate);
    let samples = StreamResampler::resample_all(audio.sample_rate, rate, &audio.samples)?;
    let bytes = Arc::new(encode(&samples, args.encoding));
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
        let report = run_step(conn, &args, n, hop_ms, rate, bytes.clone()).await?;
        let held = report.held(args.target_p99_ms);
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{}", report.text());
        }
        steps.push(report);
        if !args.ramp || !held {
            break;
        }
        best = Some(n);
        n += step;
    }
    if args.ramp {
        let ramp_result = RampResult {
            largest_streams_held: best,
            target_p99_ms: args.target_p99_ms,
        };
        println!("{}", serde_json::to_string(&RampLine { ramp_result })?);
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

async fn run_step(
    conn: &crate::connect::ConnectArgs,
    args: &BenchArgs,
    streams: usize,
    hop_ms: u64,
    rate: u32,
    bytes: Arc<Vec<u8>>,
) -> anyhow::Result<StepReport> {
    let connections = streams.div_ceil(args.streams_per_connection.max(1));
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(conn.connect().await?);
    }
    let rss_before = args.server_pid.and_then(rss_mib);
    let server_pid = args.server_pid.map(|p| p.to_string());
    let server_cpu_before = server_pid.as_deref().and_then(cpu_seconds);
    let own_cpu_before = cpu_seconds("self");
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
            encoding: args.encoding,
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
    let server_latencies = std::mem::take(&mut t.server_latencies_us);
    Ok(StepReport {
        streams,
        connections,
        paced: !args.no_pace,
        duration_s: elapsed,
        windows: t.windows,
        lost_windows: t.expected.saturating_sub(t.windows),
        errors: std::mem::take(&mut t.errors),
        windows_per_second: t.windows as f64 / elapsed,
        audio_seconds_per_second: t.audio_ms as f64 / 1000.0 / elapsed,
        latency_ms: Percentiles::of(latencies),
        server_latency_ms: Percentiles::of(server_latencies),
        server_latency_over_client: t.server_over_client,
        server_rss_mib: RssMib {
            before: rss_before,
            end: args.server_pid.and_then(rss_mib),
        },
        server_cpu_cores: server_pid
            .as_deref()
            .and_then(|pid| cores_since(pid, server_cpu_before, elapsed)),
        load_generator_cpu_cores: cores_since("self", own_cpu_before, elapsed),
        timeline,
    })
}

/// Until the deadline: one timeline point per `--interval` (window rate, latency
/// percentiles of that interval, server memory), and the progress bar.
async fn watch(
    args: &BenchArgs,
    live: &Live,
    bar: &ProgressBar,
    started: Instant,
    deadline: Instant,
) -> Vec<TimelinePoint> {
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
        let point = TimelinePoint {
            t_s: started.elapsed().as_secs_f64(),
            windows_per_second: (windows - windows_before) as f64 / interval.as_secs_f64(),
            latency_ms: Percentiles::of(recent),
            server_rss_mib: args.server_pid.and_then(rss_mib),
        };
        bar.set_message(format!(
            "p99 {:.1} ms, {} windows",
            point.latency_ms.p99, windows
        ));
        windows_before = windows;
        timeline.push(point);
        next_point += interval;
    }
    timeline
}

fn plot_ramp(path: &std::path::Path, steps: &[StepReport], target: f64) -> anyhow::Result<()> {
    let line = |name, pick: fn(&Percentiles) -> f64, color| Series {
        name,
        points: steps
            .iter()
            .map(|s| (s.streams as f64, pick(&s.latency_ms)))
            .collect(),
        color,
    };
    let series = [
        line("p50", |l| l.p50, plot::GREEN_),
        line("p90", |l| l.p90, plot::BLUE_),
        line("p99", |l| l.p99, plot::ORANGE_),
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

fn plot_timeline(path: &std::path::Path, step: &StepReport) -> anyhow::Result<()> {
    let series = |name, pick: &dyn Fn(&TimelinePoint) -> Option<f64>, color| Series {
        name,
        points: step
            .timeline
            .iter()
            .filter_map(|p| Some((p.t_s / 60.0, pick(p)?)))
            .collect(),
        color,
    };
    let latency = [
        series("p50", &|p| Some(p.latency_ms.p50), plot::GREEN_),
        series("p99", &|p| Some(p.latency_ms.p99), plot::ORANGE_),
    ];
    let memory = [series("server RSS", &|p| p.server_rss_mib, plot::RED_)];
    let title = format!(
        "{} real-time streams: latency and server memory over time",
        step.streams
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

#[cfg(test)]
mod tests {
    /// The CPU reading follows real work: a single-threaded busy loop registers some CPU
    /// time, and no more than the wall time it ran (whatever else the machine is doing).
    #[test]
    fn cpu_seconds_counts_this_process() {
        // This thread only: other tests may run beside it in this process.
        let before = super::cpu_seconds("thread-self").expect("Linux /proc");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(500) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let wall = start.elapsed().as_secs_f64();
        let used = super::cpu_seconds("thread-self").unwrap() - before;
        // Ticks are 10 ms: allow one on either side.
        assert!(
            used > 0.0 && used <= wall + 0.02,
            "{used} s of CPU in {wall} s"
        );
    }
}
