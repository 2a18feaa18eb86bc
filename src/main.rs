//! The `sentio` command line: `serve` (the default), `classify` and `features`.

// The model allocates multi-megabyte activations per batch: glibc's malloc maps and unmaps
// them from the OS each time (a quarter of the model thread in page faults, in perf);
// mimalloc reuses them.
#[cfg(not(feature = "heap-profile"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// A heap-profiling build (BENCHMARKS.md section 7): every allocation is counted by site.
#[cfg(feature = "heap-profile")]
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sentio::FeatureConfig;
use sentio::audio::{StreamResampler, decode_path};
use sentio::features::{self, FeatureKind};
use sentio::model::{Model, ModelSource, parse_device};
use sentio::report::{ClipReport, FileError, classify_response};
use sentio::serve::ServeConfig;

/// Streaming speech-emotion recognition.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// With no command, `sentio` serves the built-in model on 127.0.0.1:50051.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API (streams, Classify, model info, health, reflection) and metrics.
    Serve(Box<ServeConfig>),
    /// Classify audio files offline with the model, as the server would.
    Classify(ClassifyArgs),
    /// Print a feature matrix (features x frames) exactly as Sentio computes it.
    Features(FeaturesArgs),
}

#[derive(Args)]
struct FeaturesArgs {
    /// Audio file (WAV, AIFF, FLAC, Ogg Vorbis, MP3).
    file: PathBuf,
    /// Feature family.
    #[arg(long, value_enum, default_value = "logmel")]
    kind: FeatureKind,
    /// Sample rate to compute at (the file is resampled to it); librosa's default.
    #[arg(long, default_value_t = 22_050)]
    sr: u32,
    /// FFT size (and frame length for ZCR and RMS).
    #[arg(long, default_value_t = 2048)]
    n_fft: usize,
    /// Hop between frames, in samples.
    #[arg(long, default_value_t = 512)]
    hop_length: usize,
    /// Mel bands.
    #[arg(long, default_value_t = 128)]
    n_mels: usize,
    /// MFCC coefficients.
    #[arg(long, default_value_t = 20)]
    n_mfcc: usize,
    /// Frames start at 0 instead of being centred (librosa's center=False).
    #[arg(long)]
    no_center: bool,
    /// Print one JSON object {"config": ..., "frames": [[...], ...]} instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ClassifyArgs {
    /// Audio files (WAV, AIFF, FLAC, Ogg Vorbis, MP3).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The model: `builtin:default` (8 classes; weights for non-commercial research use
    /// only, CC BY-NC-SA 4.0), `builtin:crema-d` (6 classes, CREMA-D only; ODbL 1.0/DbCL
    /// 1.0, commercial use allowed with attribution), or a model directory. Every model's
    /// licence is its card's `license` (`sentio-client info`); see NOTICE.
    #[arg(long, env = "SENTIO_MODEL", default_value_t)]
    model: ModelSource,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// One JSON object per file instead of a readable timeline.
    #[arg(long)]
    json: bool,
}

/// mimalloc reuses freed pages, which is what spares the model its page faults, but by
/// default it commits whole arenas up front and holds freed pages: a 300-stream server sat at
/// 103 MiB against glibc's 40 MiB. Lazy arena commit and a 100 ms purge delay bring it to
/// 51 MiB; a delay of 0 would save more but costs the model half its speed at batch 8
/// (pages freed and faulted back in every pass).
fn tune_allocator() {
    // Resolved by name from mimalloc.h at build time (src/allocator_options.c).
    unsafe extern "C" {
        static sentio_mi_option_arena_eager_commit: std::ffi::c_int;
        static sentio_mi_option_purge_delay: std::ffi::c_int;
    }
    // SAFETY: constants defined once in C and never written.
    let (arena_eager_commit, purge_delay) = unsafe {
        (
            sentio_mi_option_arena_eager_commit,
            sentio_mi_option_purge_delay,
        )
    };
    // An operator's MIMALLOC_* variable wins (mimalloc reads those itself).
    for (option, variable, value) in [
        (arena_eager_commit, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
        (purge_delay, "MIMALLOC_PURGE_DELAY", 100),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: a plain option setter, called before any other thread exists.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    match cli
        .command
        .unwrap_or_else(|| Command::Serve(Box::new(ServeConfig::defaults())))
    {
        Command::Serve(config) => run_serve(*config),
        Command::Classify(args) => run_classify(args),
        Command::Features(args) => run_features(args),
    }
}

fn load_model(source: &ModelSource, device: &str) -> anyhow::Result<Model> {
    let device = parse_device(device)?;
    source
        .load(&device)
        .with_context(|| format!("loading the model {source}"))
}

/// With `--features heap-profile`: the live heap (bytes and blocks in use) logged every 30 s,
/// and dhat's per-site profile written to `dhat-heap.json` when the server exits.
#[cfg(feature = "heap-profile")]
fn start_heap_profile() -> dhat::Profiler {
    let profiler = dhat::Profiler::new_heap();
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(30));
            let heap = dhat::HeapStats::get();
            tracing::info!(
                live_bytes = heap.curr_bytes,
                live_blocks = heap.curr_blocks,
                peak_bytes = heap.max_bytes,
                allocations = heap.total_blocks,
                "heap"
            );
        }
    });
    profiler
}

fn run_serve(config: ServeConfig) -> anyhow::Result<()> {
    #[cfg(feature = "heap-profile")]
    let _heap_profile = start_heap_profile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The trace exporter's gRPC channel belongs to the runtime.
    let telemetry = {
        let _runtime = runtime.enter();
        sentio::telemetry::init(config.log_format, config.otlp_endpoint.as_deref())?
    };
    let served = serve_on(&runtime, config);
    telemetry.shutdown();
    served
}

fn serve_on(runtime: &tokio::runtime::Runtime, config: ServeConfig) -> anyhow::Result<()> {
    // Candle sizes its thread pools from these variables, read when first used. Setting
    // them also spares it re-reading /proc/cpuinfo on every matmul (seen in perf).
    let threads = config.model_threads.max(1).to_string();
    // SAFETY: no other thread exists yet; nothing reads the environment concurrently.
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", &threads);
        std::env::set_var("CANDLE_NUM_THREADS", &threads);
    }
    let model = load_model(&config.model, &config.device)?;
    tracing::info!(model = %model.card.id, kind = %model.card.kind(), device = %config.device, license = %model.card.license, "model loaded");
    runtime.block_on(async move {
        let grpc = tokio::net::TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding {}", config.grpc_addr))?;
        let metrics = tokio::net::TcpListener::bind(config.metrics_addr)
            .await
            .with_context(|| format!("binding {}", config.metrics_addr))?;
        tracing::info!(grpc = %grpc.local_addr()?, metrics = %metrics.local_addr()?, "serving");
        sentio::serve::serve(grpc, Some(metrics), config, model, shutdown_signal()).await?;
        Ok(())
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn run_classify(args: ClassifyArgs) -> anyhow::Result<()> {
    let model = load_model(&args.model, &args.device)?;
    let mut failures = 0;
    for file in &args.files {
        let result = decode_path(file)
            .map_err(anyhow::Error::from)
            .and_then(|audio| {
                Ok(sentio::classify::classify_audio(
                    &model,
                    &audio,
                    sentio::pipeline::DEFAULT_SILENCE_DBFS,
                )?)
            });
        let report = result.map(|clip| {
            let response = classify_response(&model.card.labels, &model.card.id, &clip);
            ClipReport::new(file.display().to_string(), &response)
        });
        match (report, args.json) {
            (Ok(report), true) => println!("{}", serde_json::to_string(&report)?),
            (Ok(report), false) => {
                println!(
                    "{}: {} ({:.0}%) over {:.1} s",
                    report.file,
                    report.emotion,
                    report.confidence * 100.0,
                    report.audio_ms as f64 / 1000.0
                );
                for w in &report.windows {
                    println!("  {}", w.timeline_line());
                }
            }
            (Err(e), json) => {
                failures += 1;
                if json {
                    let line = FileError {
                        file: file.display().to_string(),
                        error: format!("{e:#}"),
                    };
                    println!("{}", serde_json::to_string(&line)?);
                } else {
                    eprintln!("{}: error: {e:#}", file.display());
                }
            }
        }
    }
    if failures == args.files.len() {
        anyhow::bail!("no file could be classified");
    }
    Ok(())
}

fn run_features(args: FeaturesArgs) -> anyhow::Result<()> {
    let config = FeatureConfig {
        sr: args.sr,
        n_fft: args.n_fft,
        hop_length: args.hop_length,
        n_mels: args.n_mels,
        n_mfcc: args.n_mfcc,
        center: !args.no_center,
        ..FeatureConfig::default()
    };
    config.validate()?;
    let audio =
        decode_path(&args.file).with_context(|| format!("decoding {}", args.file.display()))?;
    let samples = StreamResampler::resample_all(audio.sample_rate, config.sr, &audio.samples)?;
    let matrix = features::compute(args.kind, &samples, &config)?;
    let rows = matrix.to_rows();
    if args.json {
        let mut config_json = serde_json::to_value(&config)?;
        config_json["fmax"] = serde_json::json!(config.fmax_hz());
        config_json["kind"] = serde_json::to_value(args.kind)?;
        let out = serde_json::json!({ "config": config_json, "frames": rows });
        println!("{out}");
    } else {
        println!(
            "# {:?}: {} features x {} frames at {} Hz",
            args.kind,
            matrix.n_features,
            matrix.n_frames(),
            config.sr
        );
        for row in rows {
            let line: Vec<String> = row.iter().map(|v| format!("{v:.6e}")).collect();
            println!("{}", line.join(" "));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The options land where mimalloc reads them (by name, not by a hard-coded number).
    #[test]
    fn allocator_options_are_set_by_name() {
        super::tune_allocator();
        unsafe extern "C" {
            static sentio_mi_option_purge_delay: std::ffi::c_int;
        }
        // SAFETY: a constant defined in C; mi_option_get only reads.
        let delay = unsafe { libmimalloc_sys::mi_option_get(sentio_mi_option_purge_delay) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(delay, 100);
        }
    }
}
