//! `sentio-client watch` and `sentio-client twilio`: watch any stream by id, and replay a
//! recording as a Twilio Media Stream (the JSON messages Twilio sends, 20 ms mu-law frames)
//! to try the server's connector without a phone call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use sentio::audio::pcm::encode;
use sentio::audio::{SampleFormat, StreamResampler, decode_path};
use sentio::proto::WatchStreamRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::connect::ConnectArgs;
use crate::stream::print_response;

#[derive(clap::Args)]
pub(crate) struct WatchArgs {
    /// The stream's id: a StreamConfig.stream_id, or `<streamSid>:<track>` of a media stream.
    stream_id: String,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Prints a stream's predictions as it is sent, until its summary.
pub(crate) async fn watch(conn: &ConnectArgs, args: WatchArgs) -> anyhow::Result<()> {
    let mut client = conn.connect().await?;
    let request = WatchStreamRequest {
        stream_id: args.stream_id.clone(),
    };
    let mut events = client.watch_stream(request).await?.into_inner();
    eprintln!("watching {}", args.stream_id);
    while let Some(message) = events.message().await? {
        if let Some(response) = message.response {
            print_response(response, args.json, false);
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub(crate) struct TwilioArgs {
    /// The caller's audio (inbound track): any file the server decodes.
    file: PathBuf,
    /// The agent's audio (outbound track), if any.
    #[arg(long)]
    outbound: Option<PathBuf>,
    /// The connector's URL.
    #[arg(long, default_value = "ws://127.0.0.1:8081/twilio")]
    url: String,
    /// The media stream's streamSid (watch `<sid>:inbound`).
    #[arg(long, default_value = "MZ00000000000000000000000000000001")]
    sid: String,
    /// An API key, sent as Twilio sends custom parameters (`apiKey`).
    #[arg(long, env = "SENTIO_API_KEY")]
    key: Option<String>,
    /// Send frames as fast as possible instead of every 20 ms.
    #[arg(long)]
    fast: bool,
}

/// 8 kHz mu-law, as Twilio streams a call.
fn mulaw_8k(path: &Path) -> anyhow::Result<Vec<u8>> {
    let audio = decode_path(path).with_context(|| format!("decoding {}", path.display()))?;
    let narrow = StreamResampler::resample_all(audio.sample_rate, 8_000, &audio.samples)?;
    Ok(encode(&narrow, SampleFormat::MuLaw))
}

/// Replays files as a Twilio Media Stream: connected, start, 20 ms media frames, stop.
pub(crate) async fn twilio(args: TwilioArgs) -> anyhow::Result<()> {
    let mut tracks = vec![("inbound", mulaw_8k(&args.file)?)];
    if let Some(outbound) = &args.outbound {
        tracks.push(("outbound", mulaw_8k(outbound)?));
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(&args.url)
        .await
        .with_context(|| format!("connecting to {}", args.url))?;
    let sid = &args.sid;
    let names: Vec<&str> = tracks.iter().map(|(n, _)| *n).collect();
    let custom = match &args.key {
        Some(key) => serde_json::json!({ "apiKey": key }),
        None => serde_json::json!({}),
    };
    let mut messages = vec![
        serde_json::json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        serde_json::json!({"event": "start", "sequenceNumber": "1", "streamSid": sid, "start": {
            "streamSid": sid, "callSid": "CA-sentio-client", "tracks": names,
            "customParameters": custom,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}),
    ];
    let frames = tracks
        .iter()
        .map(|(_, a)| a.len().div_ceil(160))
        .max()
        .unwrap_or(0);
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for frame in 0..frames {
        for (track, audio) in &tracks {
            let Some(piece) = audio.chunks(160).nth(frame) else {
                continue;
            };
            let payload = base64::engine::general_purpose::STANDARD.encode(piece);
            messages.push(
                serde_json::json!({"event": "media", "streamSid": sid, "media": {
                "track": track, "chunk": (frame + 1).to_string(),
                "timestamp": (frame * 20).to_string(), "payload": payload}}),
            );
        }
        for message in messages.drain(..) {
            socket.send(Message::text(message.to_string())).await?;
        }
        if !args.fast {
            ticker.tick().await;
        }
    }
    let stop = serde_json::json!({"event": "stop", "streamSid": sid, "stop": {"callSid": "CA-sentio-client"}});
    socket.send(Message::text(stop.to_string())).await?;
    eprintln!(
        "sent {:.1} s as {sid} ({})",
        frames as f64 * 0.02,
        names.join(", ")
    );
    while let Some(message) = socket.next().await {
        if let Message::Close(frame) = message? {
            let (code, reason) = frame.map_or((0, String::new()), |f| {
                (u16::from(f.code), f.reason.to_string())
            });
            eprintln!("closed: {code} {reason}");
            if code != 1000 {
                bail!("the connector closed the call with {code}: {reason}");
            }
            break;
        }
    }
    Ok(())
}
