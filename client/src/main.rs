//! `sentio-client`: streams files or stdin to a Sentio server live, classifies files, shows
//! the model, and load-tests.

mod bench;
mod connect;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use connect::ConnectArgs;
use sentio::audio::{SampleFormat, decode_path, pcm::encode};
use sentio::proto::{
    AudioEncoding, ClassifyRequest, GetModelInfoRequest, StreamConfig, StreamEmotionsRequest,
    stream_emotions_request::Request, stream_emotions_response::Response,
};
use sentio::report::{ClipReport, FileError, StreamEvent, WindowReport};
use tokio::io::AsyncReadExt;

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
    Stream(StreamArgs),
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
}

#[derive(Args)]
struct StreamArgs {
    /// Audio file, or `-` for raw PCM on stdin (see --format, --rate, --channels).
    input: String,
    /// Send audio at the pace it plays (as a live call), not as fast as possible.
    #[arg(long)]
    realtime: bool,
    /// Milliseconds of audio per chunk.
    #[arg(long, default_value_t = 100)]
    chunk_ms: u32,
    /// Raw stdin format.
    #[arg(long, value_enum, default_value = "s16le")]
    format: SampleFormat,
    /// Raw stdin sample rate.
    #[arg(long, default_value_t = 16_000)]
    rate: u32,
    /// Raw stdin channels.
    #[arg(long, default_value_t = 1)]
    channels: u32,
    /// Window and hop in ms (0: the model's defaults).
    #[arg(long, default_value_t = 0)]
    window_ms: u32,
    #[arg(long, default_value_t = 0)]
    hop_ms: u32,
    /// Also print windows gated as silence.
    #[arg(long)]
    include_silence: bool,
    /// JSON lines instead of a timeline.
    #[arg(long)]
    json: bool,
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
        Command::Stream(args) => stream(&cli.conn, args).await,
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
            println!("metrics: {}", info.metrics_json);
            Ok(())
        }
        Command::Bench(args) => bench::run(&cli.conn, args).await,
    }
}

async fn stream(conn: &ConnectArgs, args: StreamArgs) -> anyhow::Result<()> {
    let (bytes, format, rate, channels) = load_input(&args).await?;
    let frame = format.bytes_per_sample() * channels.max(1) as usize;
    let chunk = (rate as usize * args.chunk_ms.max(1) as usize / 1000).max(1) * frame;
    let config = StreamConfig {
        encoding: encoding_of(format) as i32,
        sample_rate_hz: rate,
        channels,
        window_ms: args.window_ms,
        hop_ms: args.hop_ms,
        stream_id: String::new(),
        include_silence: args.include_silence,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let pace = args
        .realtime
        .then(|| Duration::from_millis(args.chunk_ms as u64));
    tokio::spawn(send_chunks(tx, config, bytes, chunk, pace));
    let mut client = conn.connect().await?;
    let mut inbound = client
        .stream_emotions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    while let Some(message) = inbound.message().await? {
        if let Some(response) = message.response {
            print_response(response, args.json);
        }
    }
    Ok(())
}

/// The audio to send: raw bytes from stdin as declared, or a decoded file as 16-bit PCM.
async fn load_input(args: &StreamArgs) -> anyhow::Result<(Vec<u8>, SampleFormat, u32, u32)> {
    if args.input == "-" {
        let mut bytes = Vec::new();
        tokio::io::stdin().read_to_end(&mut bytes).await?;
        return Ok((bytes, args.format, args.rate, args.channels));
    }
    let audio = decode_path(std::path::Path::new(&args.input))
        .with_context(|| format!("decoding {}", args.input))?;
    Ok((
        encode(&audio.samples, SampleFormat::S16Le),
        SampleFormat::S16Le,
        audio.sample_rate,
        1,
    ))
}

/// The config, then the audio in chunks, paced in real time when asked.
async fn send_chunks(
    tx: tokio::sync::mpsc::Sender<StreamEmotionsRequest>,
    config: StreamConfig,
    bytes: Vec<u8>,
    chunk: usize,
    pace: Option<Duration>,
) {
    let _ = tx
        .send(StreamEmotionsRequest {
            request: Some(Request::Config(config)),
        })
        .await;
    let mut ticker = pace.map(tokio::time::interval);
    for piece in bytes.chunks(chunk) {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let audio = StreamEmotionsRequest {
            request: Some(Request::Audio(piece.to_vec())),
        };
        if tx.send(audio).await.is_err() {
            break;
        }
    }
}

fn print_response(response: Response, json: bool) {
    if json {
        let line = serde_json::to_string(&StreamEvent::from(&response)).expect("serializable");
        println!("{line}");
        return;
    }
    match response {
        Response::Started(s) => eprintln!("stream {} on model {}", s.stream_id, s.model_id),
        Response::Prediction(p) => println!("{}", WindowReport::from(&p).timeline_line()),
        Response::Summary(s) => println!(
            "summary: {} over {:.1} s ({} windows, {} speech), ended: {}",
            s.dominant_emotion,
            s.audio_ms as f64 / 1000.0,
            s.windows,
            s.speech_windows,
            s.end_reason
        ),
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
