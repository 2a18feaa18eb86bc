//! Malformed and hostile input on a real server, one table: every case gets its exact gRPC
//! status and a message naming the problem, while a healthy stream runs alongside and the
//! server answers afterwards.

mod common;

use common::*;
use sentio::proto::emotion_recognizer_client::EmotionRecognizerClient;
use sentio::proto::{
    AudioEncoding, ClassifyRequest, GetModelInfoRequest, StreamConfig, StreamEmotionsRequest,
    stream_emotions_request::Request,
};
use tonic::Code;
use tonic::transport::Channel;

enum Call {
    /// Sends the messages, then closes the request stream.
    Stream(Vec<StreamEmotionsRequest>),
    /// Sends the messages and keeps the request stream open until the server ends it.
    StreamHeldOpen(Vec<StreamEmotionsRequest>),
    Classify(ClassifyRequest),
}

struct Case {
    what: &'static str,
    call: Call,
    code: Code,
    /// In the status message; for `Code::Ok`, in the summary's end reason.
    needle: &'static str,
}

fn audio(bytes: &[u8]) -> StreamEmotionsRequest {
    StreamEmotionsRequest {
        request: Some(Request::Audio(bytes.to_vec())),
    }
}

fn cfg(config: StreamConfig) -> StreamEmotionsRequest {
    StreamEmotionsRequest {
        request: Some(Request::Config(config)),
    }
}

fn s16(rate: u32) -> StreamConfig {
    config(AudioEncoding::PcmS16le, rate)
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn raw(encoding: AudioEncoding, rate: u32, audio: Vec<u8>) -> ClassifyRequest {
    ClassifyRequest {
        audio,
        encoding: encoding as i32,
        sample_rate_hz: rate,
        channels: 1,
        ..Default::default()
    }
}

fn file(audio: Vec<u8>) -> ClassifyRequest {
    raw(AudioEncoding::Unspecified, 0, audio)
}

#[rustfmt::skip]
fn stream_cases(speech: &[u8]) -> Vec<Case> {
    use Call::{Stream, StreamHeldOpen};
    let case = |what, call, code, needle| Case {
        what,
        call,
        code,
        needle,
    };
    let invalid = Code::InvalidArgument;
    let with = |f: fn(&mut StreamConfig)| {
        let mut c = s16(16_000);
        f(&mut c);
        vec![cfg(c)]
    };
    vec![
        case("audio before config", Stream(vec![audio(&speech[..100])]), invalid, "first message"),
        case("nothing at all", Stream(vec![]), invalid, "ended before"),
        case("config never sent", StreamHeldOpen(vec![]), Code::DeadlineExceeded, "no StreamConfig"),
        case("sample rate 0", Stream(vec![cfg(s16(0))]), invalid, "sample_rate"),
        case("sample rate of a negative int32", Stream(vec![cfg(s16(u32::MAX))]), invalid, "sample_rate"),
        case("sample rate 10 MHz", Stream(vec![cfg(s16(10_000_000))]), invalid, "sample_rate"),
        case("sample rate 7999 Hz", Stream(vec![cfg(config(AudioEncoding::Mulaw, 7_999))]), invalid, "sample_rate"),
        case("unspecified encoding", Stream(vec![cfg(config(AudioEncoding::Unspecified, 16_000))]), invalid, "encoding"),
        case("unknown encoding 99", Stream(with(|c| c.encoding = 99)), invalid, "not a known"),
        case("negative encoding", Stream(with(|c| c.encoding = -1)), invalid, "not a known"),
        case("1000 channels", Stream(with(|c| c.channels = 1000)), invalid, "channels"),
        case("rate above --max-sample-rate-hz", Stream(vec![cfg(s16(176_400))]), invalid, "allowed range"),
        case("channels above --max-channels", Stream(with(|c| c.channels = 16)), invalid, "this server's limit"),
        case("u32::MAX channels", Stream(with(|c| c.channels = u32::MAX)), invalid, "channels"),
        case("hop longer than window", Stream(with(|c| (c.window_ms, c.hop_ms) = (1000, 1500))), invalid, "longer than window"),
        case("window 100 ms", Stream(with(|c| c.window_ms = 100)), invalid, "outside the model's range"),
        case("window 100 s", Stream(with(|c| c.window_ms = 100_000)), invalid, "outside the model's range"),
        case("window u32::MAX", Stream(with(|c| c.window_ms = u32::MAX)), invalid, "outside the model's range"),
        case("hop u32::MAX", Stream(with(|c| c.hop_ms = u32::MAX)), invalid, "longer than window"),
        case("8 s window with a 10 ms hop", Stream(with(|c| (c.window_ms, c.hop_ms) = (8000, 10))), invalid, "overlap at most 20 times"),
        case("a chunk of 20 s of audio", Stream(vec![cfg(config(AudioEncoding::Mulaw, 8_000)), audio(&vec![0xFF; 160_000])]), Code::ResourceExhausted, "more than 10 s"),
        case("hop off the frame grid", Stream(with(|c| c.hop_ms = 15)), invalid, "multiples of 10 ms"),
        case("stream id of 300 bytes", Stream(with(|c| c.stream_id = "x".repeat(300))), invalid, "longer than 256"),
        case("stream id forging a log line", Stream(with(|c| c.stream_id = "a\nlevel=error".into())), invalid, "control characters"),
        case("resume point off the hop grid", Stream(with(|c| c.resume_at_ms = 1500)), invalid, "multiple of hop_ms"),
        case("config twice", Stream(vec![cfg(s16(16_000)), cfg(s16(16_000))]), invalid, "twice"),
        case("config after audio", Stream(vec![cfg(s16(16_000)), audio(&speech[..3200]), cfg(s16(16_000))]), invalid, "twice"),
        case("empty request", Stream(vec![cfg(s16(16_000)), StreamEmotionsRequest { request: None }]), invalid, "empty"),
        case("NaN samples", Stream(vec![cfg(config(AudioEncoding::PcmF32le, 16_000)), audio(&f32_bytes(&[0.1, f32::NAN]))]), invalid, "not finite"),
        case("infinite samples", Stream(vec![cfg(config(AudioEncoding::PcmF32le, 16_000)), audio(&f32_bytes(&[f32::INFINITY]))]), invalid, "not finite"),
        case(
            "minus infinity after good audio",
            Stream(vec![cfg(config(AudioEncoding::PcmF32le, 16_000)), audio(&f32_bytes(&[0.01; 8000])), audio(&f32_bytes(&[0.0, f32::NEG_INFINITY]))]),
            invalid,
            "not finite",
        ),
        case("f32 samples of 1e19", Stream(vec![cfg(config(AudioEncoding::PcmF32le, 16_000)), audio(&f32_bytes(&[0.5, 1.0e19]))]), invalid, "out of range"),
        case("s16 stream ending on an odd byte", Stream(vec![cfg(s16(16_000)), audio(&speech[..32_001])]), invalid, "incomplete sample frame"),
        case("stereo stream ending mid-frame", Stream(vec![cfg(StreamConfig { channels: 2, ..s16(16_000) }), audio(&speech[..6])]), invalid, "incomplete sample frame"),
        case("chunk over --max-chunk-bytes", Stream(vec![cfg(s16(16_000)), audio(&vec![0; 2 << 20])]), Code::ResourceExhausted, "exceeds the limit"),
        case("a 100 MB chunk", Stream(vec![cfg(s16(16_000)), audio(&vec![0; 100 << 20])]), Code::ResourceExhausted, "too large"),
        // Accepted: proto3 cannot tell 0 from unset, so 0 means the default (mono).
        case("channels 0 means mono", Stream(vec![cfg(StreamConfig { channels: 0, ..s16(16_000) }), audio(&speech[..32_000])]), Code::Ok, "completed"),
        case("an empty audio chunk", Stream(vec![cfg(s16(16_000)), audio(&[]), audio(&speech[..32_000])]), Code::Ok, "completed"),
        case("config, then silence on the wire", StreamHeldOpen(vec![cfg(s16(16_000))]), Code::Ok, "idle timeout"),
    ]
}

#[rustfmt::skip]
fn classify_cases(speech: &[u8]) -> Vec<Case> {
    let case = |what, request, code, needle| Case {
        what,
        call: Call::Classify(request),
        code,
        needle,
    };
    let invalid = Code::InvalidArgument;
    let wav = std::fs::read(fixture("speech_16k.wav")).unwrap();
    let ogg = std::fs::read(fixture("speech_16k.ogg")).unwrap();
    let garbage: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut id3 = b"ID3\x04\x00\x00\x00\x00\x00\x10".to_vec();
    id3.extend_from_slice(&garbage[..4000]);
    vec![
        case("empty file", file(vec![]), invalid, "empty"),
        case("garbage file", file(garbage.clone()), invalid, "cannot"),
        case("ID3 tag then garbage", file(id3), invalid, "cannot"),
        case("WAV header only", file(wav[..44].to_vec()), invalid, "no audio"),
        case("Ogg cut to its first page", file(ogg[..200.min(ogg.len())].to_vec()), invalid, "cannot"),
        case("raw s16 with an odd byte", raw(AudioEncoding::PcmS16le, 16_000, speech[..16_001].to_vec()), invalid, "incomplete frame"),
        case("raw audio at 0 Hz", raw(AudioEncoding::PcmS16le, 0, speech[..16_000].to_vec()), invalid, "sample rate"),
        case("raw NaN samples", raw(AudioEncoding::PcmF32le, 16_000, f32_bytes(&[0.0, f32::NAN])), invalid, "not finite"),
        case("raw f32 beyond int16 scale", raw(AudioEncoding::PcmF32le, 16_000, f32_bytes(&[0.0, -40_000.0])), invalid, "out of range"),
        case("raw unknown encoding", ClassifyRequest { encoding: 77, ..raw(AudioEncoding::PcmS16le, 16_000, vec![0; 320]) }, invalid, "not a known"),
        case("raw 1000 channels", ClassifyRequest { channels: 1000, ..raw(AudioEncoding::PcmS16le, 16_000, vec![0; 32_000]) }, invalid, "channels"),
        case("raw rate above --max-sample-rate-hz", raw(AudioEncoding::PcmS16le, 176_400, vec![0; 32_000]), invalid, "allowed range"),
        case("raw, no samples", raw(AudioEncoding::Mulaw, 8_000, vec![]), invalid, "no audio samples"),
        case("longer than --max-classify-seconds", raw(AudioEncoding::Mulaw, 8_000, vec![0xFF; 8_000 * 30]), Code::ResourceExhausted, "Classify limit"),
        case("bigger than --max-classify-bytes", raw(AudioEncoding::PcmS16le, 48_000, vec![0; 3 << 20]), Code::ResourceExhausted, "too large"),
        case("a 100 MB file", file(vec![0; 100 << 20]), Code::ResourceExhausted, "too large"),
    ]
}

async fn run_case(client: &mut EmotionRecognizerClient<Channel>, call: Call) -> (Code, String) {
    let (result, held) = match call {
        Call::Stream(messages) => (run_stream(client, messages).await, None),
        Call::StreamHeldOpen(messages) => {
            let (tx, rx) = tokio::sync::mpsc::channel(messages.len().max(1));
            for m in messages {
                tx.send(m).await.unwrap();
            }
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
            let mut result = StreamResult::default();
            match client.stream_emotions(stream).await {
                Err(status) => result.status = Some(status),
                Ok(response) => {
                    let mut inbound = response.into_inner();
                    loop {
                        match inbound.message().await {
                            Ok(Some(m)) => {
                                use sentio::proto::stream_emotions_response::Response;
                                if let Some(Response::Summary(s)) = m.response {
                                    result.summary = Some(s);
                                }
                            }
                            Ok(None) => break,
                            Err(status) => {
                                result.status = Some(status);
                                break;
                            }
                        }
                    }
                }
            }
            (result, Some(tx))
        }
        Call::Classify(request) => {
            return match client.classify(request).await {
                Ok(r) => (Code::Ok, r.into_inner().emotion),
                Err(status) => (status.code(), status.message().to_string()),
            };
        }
    };
    drop(held);
    match (result.status, result.summary) {
        (Some(status), _) => (status.code(), status.message().to_string()),
        (None, Some(summary)) => (Code::Ok, summary.end_reason),
        (None, None) => (Code::Ok, "no summary".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_status_and_other_streams_carry_on() {
    let server = TestServer::start(|c| {
        c.idle_timeout_s = 1;
        c.max_classify_seconds = 20;
        c.max_classify_bytes = 2 << 20;
        c.max_sample_rate_hz = 96_000;
        c.max_channels = 8;
    })
    .await;
    let speech = speech_bytes();
    // A healthy stream sends speech at real time, in a loop, until every case has run.
    // It runs the whole clip at least once, so it yields the clip's 6 windows or more.
    let cases_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (feed, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn({
        let (speech, cases_done) = (speech.clone(), cases_done.clone());
        async move {
            feed.send(cfg(s16(16_000))).await.unwrap();
            let mut ticks = tokio::time::interval(std::time::Duration::from_millis(100));
            let once = speech.len().div_ceil(3_200);
            for (sent, chunk) in speech.chunks(3_200).cycle().enumerate() {
                if sent >= once && cases_done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                ticks.tick().await;
                feed.send(audio(chunk)).await.unwrap();
            }
        }
    });
    let mut healthy_client = server.client().await;
    let healthy = tokio::spawn(async move {
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let mut inbound = healthy_client
            .stream_emotions(stream)
            .await
            .unwrap()
            .into_inner();
        let mut result = StreamResult::default();
        while let Some(m) = inbound.message().await.transpose() {
            use sentio::proto::stream_emotions_response::Response;
            match m.map(|m| m.response) {
                Ok(Some(Response::Prediction(p))) => result.predictions.push(p),
                Ok(Some(Response::Summary(s))) => result.summary = Some(s),
                Ok(_) => {}
                Err(status) => result.status = Some(status),
            }
        }
        result
    });
    let mut client = server.client().await;
    let cases: Vec<Case> = stream_cases(&speech)
        .into_iter()
        .chain(classify_cases(&speech))
        .collect();
    let refused = cases.iter().filter(|c| c.code != Code::Ok).count();
    assert!(refused >= 30, "{refused} refusing cases");
    for Case {
        what,
        call,
        code,
        needle,
    } in cases
    {
        let (got, message) = run_case(&mut client, call).await;
        assert_eq!(got, code, "{what}: {message}");
        assert!(
            message.contains(needle),
            "{what}: {message:?} lacks {needle:?}"
        );
    }
    cases_done.store(true, std::sync::atomic::Ordering::Relaxed);
    let healthy = healthy.await.unwrap();
    assert!(healthy.status.is_none(), "{:?}", healthy.status);
    assert!(
        healthy.predictions.len() >= 6,
        "{}",
        healthy.predictions.len()
    );
    let indices: Vec<u64> = healthy.predictions.iter().map(|p| p.window_index).collect();
    assert!(indices.windows(2).all(|w| w[1] > w[0]), "{indices:?}");
    assert_eq!(healthy.summary.unwrap().end_reason, "completed");
    let info = client
        .get_model_info(GetModelInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.labels.len(), 8);
}
