//! Where `sentio-client stream`'s audio comes from (a file or live stdin) and the log it is
//! kept in, so that a resumed stream can resend from a window start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use sentio::audio::container::decode_file_channels;
use sentio::audio::{SampleFormat, pcm::encode};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

use crate::stream::StreamArgs;

/// Audio read so far, shared by the reader and each connection's sender. Kept whole: a
/// resumed stream resends from a window start, and raw audio is small (an hour of 16 kHz
/// s16 is 115 MB; a file is already in memory).
#[derive(Default)]
pub(crate) struct AudioLog {
    bytes: Mutex<(Vec<u8>, bool)>,
    grew: Notify,
}

impl AudioLog {
    pub(crate) fn push(&self, piece: &[u8]) {
        self.bytes
            .lock()
            .expect("audio log")
            .0
            .extend_from_slice(piece);
        self.grew.notify_waiters();
    }

    pub(crate) fn end(&self) {
        self.bytes.lock().expect("audio log").1 = true;
        self.grew.notify_waiters();
    }

    /// Up to `max` bytes from `from`, waiting for them; `None` once the audio has ended.
    pub(crate) async fn read(&self, from: usize, max: usize) -> Option<Vec<u8>> {
        loop {
            let grew = self.grew.notified();
            {
                let (bytes, ended) = &*self.bytes.lock().expect("audio log");
                if from < bytes.len() {
                    return Some(bytes[from..bytes.len().min(from + max)].to_vec());
                }
                if *ended {
                    return None;
                }
            }
            grew.await;
        }
    }
}

/// Where the audio comes from.
pub(crate) enum Source {
    /// Raw audio on stdin, sent as it arrives.
    Stdin,
    /// A decoded file as 16-bit PCM.
    File(Vec<u8>),
}

/// The audio source and its format, rate and channels. Raw stdin has no header, so its
/// format and rate must be given; a file's own header describes it.
pub(crate) fn open_input(args: &StreamArgs) -> anyhow::Result<(Source, SampleFormat, u32, u32)> {
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
    let path = std::path::Path::new(&args.input);
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", args.input))?;
    let extension = path.extension().and_then(|e| e.to_str());
    let channels = decode_file_channels(bytes, extension, args.separate_channels)
        .with_context(|| format!("decoding {}", args.input))?;
    // Interleaved again as a live source would send them.
    let frames = channels[0].samples.len();
    let interleaved: Vec<f32> = (0..frames)
        .flat_map(|i| channels.iter().map(move |c| c.samples[i]))
        .collect();
    Ok((
        Source::File(encode(&interleaved, SampleFormat::S16Le)),
        SampleFormat::S16Le,
        channels[0].sample_rate,
        channels.len() as u32,
    ))
}

/// Reads stdin as it arrives: each read's whole frames go to the log at once, so a live
/// source such as `arecord` is heard within one read.
pub(crate) async fn read_stdin(log: Arc<AudioLog>, frame: usize, max_chunk: usize) {
    let mut stdin = tokio::io::stdin();
    let mut pending = Vec::with_capacity(max_chunk);
    let mut buf = vec![0u8; max_chunk];
    loop {
        let n = match stdin.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                0
            }
        };
        pending.extend_from_slice(&buf[..n]);
        let whole = pending.len() / frame * frame;
        log.push(&pending[..whole]);
        pending.drain(..whole);
        if n == 0 {
            if !pending.is_empty() {
                eprintln!(
                    "warning: stdin ended inside a frame; its last {} bytes were not sent",
                    pending.len()
                );
            }
            log.end();
            return;
        }
    }
}

/// A file's audio in chunks, paced in real time when asked.
pub(crate) async fn read_file(
    log: Arc<AudioLog>,
    bytes: Vec<u8>,
    chunk: usize,
    pace: Option<Duration>,
) {
    let mut ticker = pace.map(tokio::time::interval);
    for piece in bytes.chunks(chunk) {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        log.push(piece);
    }
    log.end();
}
