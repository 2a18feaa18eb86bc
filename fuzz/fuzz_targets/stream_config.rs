//! Stream admission (`serve::stream_config::accept`, `WindowSpec::resolve`, `validate_rate`):
//! the first message of every `StreamEmotions` call.
//!
//! The config comes either from raw protobuf bytes (the wire, as tonic decodes it) or from
//! arbitrary field values, checked against the default server limits or arbitrary operator
//! ones (`--min/max-sample-rate-hz`, `--max-channels`). Admission must never panic and must
//! reject with INVALID_ARGUMENT only. An accepted config must be within the documented
//! bounds (emotion.proto, the model card, the operator's limits) and must build the
//! stream's decoder and pipeline, so nothing the server accepted can fail later for a
//! config reason.

#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use sentio::audio::pcm::MAX_CHANNELS;
use sentio::audio::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, PcmDecoder, SampleFormat};
use sentio::model::ModelCard;
use sentio::pipeline::{DEFAULT_SILENCE_DBFS, WindowPipeline, hop_granularity_ms};
use sentio::proto::stream_emotions_request::Request;
use sentio::proto::{AudioEncoding, StreamConfig, StreamEmotionsRequest};
use sentio::serve::ServeConfig;
use sentio::serve::stream_config::accept;

/// The shipped default model's card (10 ms frame hop) and the seed model's (22.05 kHz,
/// 512-sample hop: a granularity of 1 ms).
static CARDS: LazyLock<[ModelCard; 2]> = LazyLock::new(|| {
    [
        include_str!("../../models/default/model.json"),
        include_str!("../../models/seed/model.json"),
    ]
    .map(|json| ModelCard::from_json(json).unwrap())
});

static DEFAULT_LIMITS: LazyLock<ServeConfig> = LazyLock::new(ServeConfig::defaults);

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    card: bool,
    /// The operator's limits; `None` for the defaults.
    limits: Option<Limits>,
    config: Config<'a>,
}

#[derive(Arbitrary, Debug)]
struct Limits {
    min_sample_rate_hz: u32,
    max_sample_rate_hz: u32,
    max_channels: u8,
}

#[derive(Arbitrary, Debug)]
enum Config<'a> {
    /// A `StreamEmotionsRequest` as it arrives on the wire.
    Wire(&'a [u8]),
    Fields(Fields),
}

#[derive(Arbitrary, Debug)]
struct Fields {
    encoding: i32,
    sample_rate_hz: u32,
    channels: u32,
    window_ms: u32,
    hop_ms: u32,
    stream_id: String,
    include_silence: bool,
    resume_at_ms: u64,
    channel_mode: i32,
    speaker_adaptation: i32,
}

fuzz_target!(|input: Input| {
    let config = match input.config {
        Config::Wire(bytes) => match StreamEmotionsRequest::decode(bytes) {
            Ok(StreamEmotionsRequest {
                request: Some(Request::Config(config)),
            }) => config,
            _ => return,
        },
        Config::Fields(f) => StreamConfig {
            encoding: f.encoding,
            sample_rate_hz: f.sample_rate_hz,
            channels: f.channels,
            window_ms: f.window_ms,
            hop_ms: f.hop_ms,
            stream_id: f.stream_id,
            include_silence: f.include_silence,
            resume_at_ms: f.resume_at_ms,
            channel_mode: f.channel_mode,
            speaker_adaptation: f.speaker_adaptation,
        },
    };
    let card = &CARDS[input.card as usize];
    let mut limits = DEFAULT_LIMITS.clone();
    if let Some(l) = input.limits {
        limits.min_sample_rate_hz = l.min_sample_rate_hz;
        limits.max_sample_rate_hz = l.max_sample_rate_hz;
        limits.max_channels = l.max_channels as usize;
    }
    let accepted = match accept(&config, card, &limits, 7) {
        Ok(accepted) => accepted,
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
            return;
        }
    };

    let expected_format = match AudioEncoding::try_from(config.encoding) {
        Ok(AudioEncoding::PcmS16le) => SampleFormat::S16Le,
        Ok(AudioEncoding::PcmF32le) => SampleFormat::F32Le,
        Ok(AudioEncoding::Mulaw) => SampleFormat::MuLaw,
        Ok(AudioEncoding::Alaw) => SampleFormat::ALaw,
        other => panic!("encoding {other:?} accepted"),
    };
    assert_eq!(accepted.format, expected_format);
    assert_eq!(accepted.rate, config.sample_rate_hz);
    assert!((MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&accepted.rate));
    assert!((limits.min_sample_rate_hz..=limits.max_sample_rate_hz).contains(&accepted.rate));
    assert_eq!(accepted.channels, config.channels.max(1) as usize);
    assert!((1..=MAX_CHANNELS.min(limits.max_channels)).contains(&accepted.channels));

    // Zeros mean the card's defaults; the result sits on the card's frame grid.
    let spec = accepted.spec;
    let granularity = hop_granularity_ms(card);
    if config.window_ms == 0 {
        assert_eq!(spec.window_ms, card.window_ms);
    } else {
        assert_eq!(spec.window_ms, config.window_ms);
    }
    if config.hop_ms != 0 {
        assert_eq!(spec.hop_ms, config.hop_ms);
    }
    assert!((card.min_window_ms..=card.max_window_ms).contains(&spec.window_ms));
    assert!(0 < spec.hop_ms && spec.hop_ms <= spec.window_ms, "{spec:?}");
    let overlap = sentio::pipeline::MAX_WINDOW_OVERLAP as u64;
    assert!(spec.hop_ms as u64 * overlap >= spec.window_ms as u64, "{spec:?}");
    assert_eq!(spec.window_ms % granularity, 0);
    assert_eq!(spec.hop_ms % granularity, 0);

    assert!(!accepted.stream_id.is_empty() && accepted.stream_id.len() <= 256);
    // It reaches logs and metric labels.
    assert!(!accepted.stream_id.chars().any(char::is_control));
    // A resumed stream stays on the hop grid.
    assert_eq!(accepted.resume_at_ms, config.resume_at_ms);
    assert_eq!(accepted.resume_at_ms % spec.hop_ms as u64, 0);
    if config.stream_id.is_empty() {
        assert_eq!(accepted.stream_id, "stream-7");
    } else {
        assert_eq!(accepted.stream_id, config.stream_id);
    }
    assert_eq!(accepted.include_silence, config.include_silence);

    // What the session builds right after admission must not fail.
    PcmDecoder::new(accepted.format, accepted.channels).unwrap();
    WindowPipeline::new(card, accepted.rate, spec, DEFAULT_SILENCE_DBFS).unwrap();
});
