//! `sentio-client stream`: a file or live stdin to the server, predictions printed as they
//! come. A call survives the server's drain or a lost connection: the client reconnects and
//! resumes the call on a new stream (`StreamConfig.resume_at_ms`) from the first window not
//! yet answered whole, resending the audio it keeps for that.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use sentio::audio::SampleFormat;
use sentio::proto::{
    ChannelMode, EndReason, SpeakerAdaptation, StreamConfig, StreamEmotionsRequest,
    WindowPrediction, stream_emotions_request::Request, stream_emotions_response::Response,
};
use sentio::report::StreamEvent;

use crate::connect::ConnectArgs;
use crate::encoding_of;
use crate::input::{AudioLog, Source, open_input, read_file, read_stdin};

/// Reconnections one call may make before the client gives up.
const MAX_RESUMES: u32 = 10;

#[derive(Args)]
pub(crate) struct StreamArgs {
    /// Audio file, or `-` for raw audio on stdin, streamed as it arrives (needs --format
    /// and --rate), e.g. `arecord -f S16_LE -r 16000 | sentio-client stream - --format
    /// s16le --rate 16000`.
    pub(crate) input: String,
    /// Send a file at the pace it plays (as a live call), not as fast as possible; stdin is
    /// always sent as it arrives.
    #[arg(long)]
    realtime: bool,
    /// Milliseconds of audio per chunk (for stdin, the most sent at once).
    #[arg(long, default_value_t = 100)]
    chunk_ms: u32,
    /// Raw stdin encoding (required with `-`).
    #[arg(long, alias = "encoding", value_enum)]
    pub(crate) format: Option<SampleFormat>,
    /// Raw stdin sample rate in Hz (required with `-`).
    #[arg(long)]
    pub(crate) rate: Option<u32>,
    /// Raw stdin channels.
    #[arg(long, default_value_t = 1)]
    pub(crate) channels: u32,
    /// Analyse each channel on its own (e.g. agent and customer of a stereo call
    /// recording): windows and a summary per channel. Without it channels are mixed.
    #[arg(long)]
    pub(crate) separate_channels: bool,
    /// Read each window against the caller's voice so far: `model` (on when the model was
    /// trained for it), `on` or `off`.
    #[arg(long, value_enum, default_value_t = Adaptation::Model)]
    speaker_adaptation: Adaptation,
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

/// How one connection's stream ended.
enum Ended {
    /// The call is over: the server answered every window.
    Completed,
    /// The server drained or the connection was lost: resume on a new stream.
    Interrupted(String),
}

/// What the printed output has covered, to resume and not print a window twice.
#[derive(Default)]
struct Progress {
    hop_ms: u64,
    window_ms: u64,
    /// Per channel, the highest window index printed whole (a drain may cut the last one
    /// short).
    last_whole: std::collections::BTreeMap<u32, u64>,
}

impl Progress {
    /// The call time to resume at: the start of the first window not answered whole on
    /// every channel that has answered.
    fn resume_at_ms(&self) -> u64 {
        self.last_whole
            .values()
            .min()
            .map_or(0, |i| (i + 1) * self.hop_ms)
    }

    /// Whether to print `p`, noting it; a resumed stream repeats windows already printed.
    fn take(&mut self, p: &WindowPrediction) -> bool {
        let last = self.last_whole.get(&p.channel);
        if last.is_some_and(|&i| p.window_index <= i) {
            return false;
        }
        if p.end_ms - p.start_ms >= self.window_ms {
            self.last_whole.insert(p.channel, p.window_index);
        }
        true
    }
}

pub(crate) async fn run(conn: &ConnectArgs, args: StreamArgs) -> anyhow::Result<()> {
    let (source, format, rate, channels) = open_input(&args)?;
    let frame = format.bytes_per_sample() * channels.max(1) as usize;
    let chunk = (rate as usize * args.chunk_ms.max(1) as usize / 1000).max(1) * frame;
    let log = Arc::new(AudioLog::default());
    let reader = match source {
        Source::Stdin => tokio::spawn(read_stdin(log.clone(), frame, chunk)),
        Source::File(bytes) => {
            let pace = args
                .realtime
                .then(|| Duration::from_millis(args.chunk_ms as u64));
            tokio::spawn(read_file(log.clone(), bytes, chunk, pace))
        }
    };
    let mut progress = Progress::default();
    let mut resumes = 0;
    loop {
        let resume_at_ms = progress.resume_at_ms();
        let config = StreamConfig {
            encoding: encoding_of(format) as i32,
            sample_rate_hz: rate,
            channels,
            window_ms: args.window_ms,
            hop_ms: args.hop_ms,
            stream_id: String::new(),
            include_silence: args.include_silence,
            resume_at_ms,
            channel_mode: if args.separate_channels {
                ChannelMode::Separate
            } else {
                ChannelMode::Mix
            } as i32,
            speaker_adaptation: match args.speaker_adaptation {
                Adaptation::Model => SpeakerAdaptation::Unspecified,
                Adaptation::On => SpeakerAdaptation::On,
                Adaptation::Off => SpeakerAdaptation::Off,
            } as i32,
        };
        let from = (resume_at_ms * rate as u64 / 1000) as usize * frame;
        match connection(conn, config, &log, from, chunk, &args, &mut progress).await {
            Ok(Ended::Completed) => break,
            Ok(Ended::Interrupted(why)) if resumes < MAX_RESUMES => {
                resumes += 1;
                let wait = Duration::from_millis(200 << resumes.min(5));
                eprintln!(
                    "stream interrupted ({why}); resuming the call at {:.1} s in {} ms",
                    progress.resume_at_ms() as f64 / 1000.0,
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
            }
            Ok(Ended::Interrupted(why)) => {
                anyhow::bail!("stream interrupted ({why}) {MAX_RESUMES} times; giving up")
            }
            Err(e) => return Err(e),
        }
    }
    reader.abort();
    Ok(())
}

/// One stream on one connection, from the config to its end.
async fn connection(
    conn: &ConnectArgs,
    config: StreamConfig,
    log: &Arc<AudioLog>,
    from: usize,
    chunk: usize,
    args: &StreamArgs,
    progress: &mut Progress,
) -> anyhow::Result<Ended> {
    let mut client = match conn.connect().await {
        Ok(client) => client,
        // Nobody listening yet (a restarting server): worth another try.
        Err(e) => return Ok(Ended::Interrupted(format!("connecting: {e:#}"))),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let sender = tokio::spawn(send_from(tx, config, log.clone(), from, chunk));
    let result = async {
        let mut inbound = client
            .stream_emotions(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await?
            .into_inner();
        while let Some(message) = inbound.message().await? {
            match message.response {
                Some(Response::Started(s)) => {
                    let effective = s.config.clone().unwrap_or_default();
                    progress.hop_ms = effective.hop_ms as u64;
                    progress.window_ms = effective.window_ms as u64;
                    print_response(Response::Started(s), args.json, args.separate_channels);
                }
                Some(Response::Prediction(p)) if progress.take(&p) => {
                    print_response(Response::Prediction(p), args.json, args.separate_channels);
                }
                Some(Response::Prediction(_)) => {}
                Some(Response::Summary(s)) if s.reason() == EndReason::ServerShutdown => {
                    return Ok(Ended::Interrupted("the server drained".into()));
                }
                Some(Response::Summary(s)) => {
                    print_response(Response::Summary(s), args.json, args.separate_channels)
                }
                None => {}
            }
        }
        Ok::<_, tonic::Status>(Ended::Completed)
    }
    .await;
    sender.abort();
    match result {
        Ok(ended) => Ok(ended),
        // GOAWAY, a refused stream, a reset connection: the call goes on elsewhere.
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            ) || transport_failed(&status) =>
        {
            Ok(Ended::Interrupted(status.message().to_string()))
        }
        Err(status) => Err(status.into()),
    }
}

/// Whether the connection failed under the stream (tonic reports a stream refused after a
/// GOAWAY as INTERNAL carrying the transport error, depending on the race), as opposed to
/// the server answering with an error.
fn transport_failed(status: &tonic::Status) -> bool {
    std::error::Error::source(status)
        .is_some_and(|source| source.downcast_ref::<tonic::transport::Error>().is_some())
}

/// The config, then the log's audio from byte `from` as it arrives; half-closes at its end.
async fn send_from(
    tx: tokio::sync::mpsc::Sender<StreamEmotionsRequest>,
    config: StreamConfig,
    log: Arc<AudioLog>,
    mut from: usize,
    chunk: usize,
) {
    let config = StreamEmotionsRequest {
        request: Some(Request::Config(config)),
    };
    if tx.send(config).await.is_err() {
        return;
    }
    while let Some(piece) = log.read(from, chunk).await {
        from += piece.len();
        let audio = StreamEmotionsRequest {
            request: Some(Request::Audio(piece)),
        };
        if tx.send(audio).await.is_err() {
            return;
        }
    }
}

pub(crate) fn print_response(response: Response, json: bool, separate_channels: bool) {
    let mut event = StreamEvent::from(&response);
    if let (StreamEvent::Prediction(window), Response::Prediction(p)) = (&mut event, &response) {
        window.channel = separate_channels.then_some(p.channel);
    }
    if json {
        let line = serde_json::to_string(&event).expect("serializable");
        println!("{line}");
        return;
    }
    match (response, event) {
        (Response::Started(s), _) => {
            eprintln!("stream {} on model {}", s.stream_id, s.model_id)
        }
        (_, StreamEvent::Prediction(window)) => println!("{}", window.timeline_line()),
        (Response::Summary(s), _) => {
            for c in &s.channels {
                println!(
                    "channel {}: {} ({} windows, {} speech)",
                    c.channel, c.dominant_emotion, c.windows, c.speech_windows
                );
            }
            println!(
                "summary: {} over {:.1} s ({} windows, {} speech), ended: {}",
                s.dominant_emotion,
                s.audio_ms as f64 / 1000.0,
                s.windows,
                s.speech_windows,
                s.end_reason
            )
        }
        _ => {}
    }
}

/// `--speaker-adaptation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Adaptation {
    Model,
    On,
    Off,
}
