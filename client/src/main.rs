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
    /// Audio file, or `-` for raw audio on stdin, streamed as it arrives (needs --format
    /// and --rate), e.g. `arecord -f S16_LE -r 16000 | sentio-client stream - --format
    /// s16le --rate 16000`.
    input: String,
    /// Send a file at the pace it plays (as a live call), not as fast as possible; stdin is
    /// always sent as it arrives.
    #[arg(long)]
    realtime: bool,
    /// Milliseconds of audio per chunk (for stdin, the most sent at once).
    #[arg(long, default_value_t = 100)]
    chunk_ms: u32,
    /// Raw stdin encoding (required with `-`).
    #[arg(long, alias = "encoding", value_enum)]
    format: Option<SampleFormat>,
    /// Raw stdin sample rate in Hz (required with `-`).
    #[arg(long)]
    rate: Option<u32>,
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
    let (source, format, rate, channels) = open_input(&args)?;
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
    let _ = tx
        .send(StreamEmotionsRequest {
            request: Some(Request::Config(config)),
        })
        .await;
    let sender = match source {
        Source::Stdin => tokio::spawn(send_stdin(tx, frame, chunk)),
        Source::File(bytes) => {
            let pace = args
                .realtime
                .then(|| Duration::from_millis(args.chunk_ms as u64));
            tokio::spawn(send_chunks(tx, bytes, chunk, pace))
        }
    };
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
    sender.await?
}

/// Where the audio comes from.
enum Source {
    /// Raw audio on stdin, sent as it arrives.
    Stdin,
    /// A decoded file as 16-bit PCM.
    File(Vec<u8>),
}

/// The audio source and its format, rate and channels. Raw stdin has no header, so its
/// format and rate must be given; a file's own header describes it.
fn open_input(args: &StreamArgs) -> anyhow::Result<(Source, SampleFormat, u32, u32)> {
    if args.input == "-" {
        let (Some(format), Some(rate)) = (args.format, args.rate) else {
            anyhow::bail!(
                "raw audio on stdin has no header: give its --format (s16le, f32le, mulaw, alaw) and --rate in Hz, e.g. `--format s16le --rate 16000`"
            );
        };
        return Ok((Source::Stdin, format, rate, args.channels));
    }
    if args.format.is_some() || args.rate.is_some() {
        anyhow::bail!(
            "--format and --rate describe raw audio on stdin (`-`); {} is decoded from its own header",
            args.input
        );
    }
    let audio = decode_path(std::path::Path::new(&args.input))
        .with_context(|| format!("decoding {}", args.input))?;
    Ok((
        Source::File(encode(&audio.samples, SampleFormat::S16Le)),
        SampleFormat::S16Le,
        audio.sample_rate,
        1,
    ))
}

/// Sends stdin's audio as it arrives: each read's whole frames at once (at most `max_chunk`
/// bytes per message), so a live source such as `arecord` is heard within one read.
async fn send_stdin(
    tx: tokio::sync::mpsc::Sender<StreamEmotionsRequest>,
    frame: usize,
    max_chunk: usize,
) -> anyhow::Result<()> {
    let mut stdin = tokio::io::stdin();
    let mut pending = Vec::with_capacity(max_chunk);
    let mut buf = vec![0u8; max_chunk];
    loop {
        let n = stdin.read(&mut buf).await.context("reading stdin")?;
        pending.extend_from_slice(&buf[..n]);
        let whole = pending.len() / frame * frame;
        for piece in pending[..whole].chunks(max_chunk) {
            let audio = StreamEmotionsRequest {
                request: Some(Request::Audio(piece.to_vec())),
            };
            if tx.send(audio).await.is_err() {
                return Ok(());
            }
        }
        pending.drain(..whole);
        if n == 0 {
            if !pending.is_empty() {
                eprintln!(
                    "warning: stdin ended inside a frame; its last {} bytes were not sent",
                    pending.len()
                );
            }
            return Ok(());
        }
    }
}

/// A file's audio in chunks, paced in real time when asked.
async fn send_chunks(
    tx: tokio::sync::mpsc::Sender<StreamEmotionsRequest>,
    bytes: Vec<u8>,
    chunk: usize,
    pace: Option<Duration>,
) -> anyhow::Result<()> {
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
    Ok(())
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
