//! `sentio-client`: streams files or stdin to a Sentio server live, classifies files, shows
//! the model, load-tests, watches streams, and replays recordings as telephony media
//! streams.

mod bench;
mod connect;
mod input;
mod media;
mod stream;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use connect::ConnectArgs;
use sentio::audio::SampleFormat;
use sentio::proto::{AudioEncoding, ClassifyRequest, GetModelInfoRequest};
use sentio::report::{ClipReport, FileError};

/// Client for the Sentio emotion server.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream a file (any container) or raw PCM from stdin (`-`) and print predictions live.
    Stream(stream::StreamArgs),
    /// Classify whole files on the server.
    Classify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object per file.
        #[arg(long)]
        json: bool,
    },
    /// Show the server's model.
    Info,
    /// Load test: many concurrent real-time streams.
    Bench(bench::BenchArgs),
    /// Watch a stream someone else sends (a call's track: `<streamSid>:<track>`).
    Watch(media::WatchArgs),
    /// Replay a recording as a Twilio Media Stream to the server's connector.
    Twilio(media::TwilioArgs),
}

pub fn encoding_of(format: SampleFormat) -> AudioEncoding {
    match format {
        SampleFormat::S16Le => AudioEncoding::PcmS16le,
        SampleFormat::F32Le => AudioEncoding::PcmF32le,
        SampleFormat::MuLaw => AudioEncoding::Mulaw,
        SampleFormat::ALaw => AudioEncoding::Alaw,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Stream(args) => stream::run(&cli.conn, args).await,
        Command::Classify { files, json } => classify(&cli.conn, files, json).await,
        Command::Info => {
            let info = cli
                .conn
                .connect()
                .await?
                .get_model_info(GetModelInfoRequest {})
                .await?
                .into_inner();
            println!(
                "model {} ({}), {} Hz, windows {} ms every {} ms (allowed {}..={} ms, hop a multiple of {} ms), on {}, server {}",
                info.model_id,
                info.kind,
                info.sample_rate_hz,
                info.default_window_ms,
                info.default_hop_ms,
                info.min_window_ms,
                info.max_window_ms,
                info.hop_granularity_ms,
                info.device,
                info.version
            );
            println!("labels: {}", info.labels.join(", "));
            println!(
                "weights' licence: {} (trained on {})",
                info.license,
                info.training_data.join(", ")
            );
            println!(
                "speaker adaptation: {}",
                if info.speaker_adaptation {
                    "streams read windows against the caller's voice so far (opt out: --speaker-adaptation off)"
                } else {
                    "no (each window is read on its own)"
                }
            );
            println!("metrics: {}", info.metrics_json);
            Ok(())
        }
        Command::Bench(args) => bench::run(&cli.conn, args).await,
        Command::Watch(args) => media::watch(&cli.conn, args).await,
        Command::Twilio(args) => media::twilio(args).await,
    }
}

async fn classify(conn: &ConnectArgs, files: Vec<PathBuf>, json: bool) -> anyhow::Result<()> {
    let mut client = conn.connect().await?;
    for file in files {
        let result = match std::fs::read(&file) {
            Ok(audio) => client
                .classify(ClassifyRequest {
                    audio,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner())
                .map_err(|s| format!("{:?}: {}", s.code(), s.message())),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(r) if json => println!(
                "{}",
                serde_json::to_string(&ClipReport::new(file.display().to_string(), &r))?
            ),
            Ok(r) => println!(
                "{}: {} ({:.0}%), {} windows over {:.1} s",
                file.display(),
                r.emotion,
                r.confidence * 100.0,
                r.windows.len(),
                r.audio_ms as f64 / 1000.0
            ),
            Err(error) if json => println!(
                "{}",
                serde_json::to_string(&FileError {
                    file: file.display().to_string(),
                    error,
                })?
            ),
            Err(e) => eprintln!("{}: error: {e}", file.display()),
        }
    }
    Ok(())
}
