//! Per-channel analysis (`CHANNEL_MODE_SEPARATE`) on 127.0.0.1 with the shipped model: a
//! stereo call with a different voice on each channel gets each channel's own windows and
//! summary, equal to streaming that channel alone; mixing stays the default; bad modes are
//! refused.

mod common;

use common::*;
use sentio::audio::pcm::encode;
use sentio::audio::{SampleFormat, decode_path};
use sentio::proto::{AudioEncoding, ChannelMode, ClassifyRequest, WindowPrediction};

/// Two different voices: the long speech fixture on the left, another clip (looped to the
/// same length) on the right.
fn two_voices() -> (Vec<f32>, Vec<f32>) {
    let left = decode_path(&fixture("speech_long_16k.wav"))
        .unwrap()
        .samples;
    let other = decode_path(&fixture("speech_16k.wav")).unwrap().samples;
    let right = other.iter().cycle().take(left.len()).copied().collect();
    (left, right)
}

fn interleave(left: &[f32], right: &[f32]) -> Vec<f32> {
    left.iter().zip(right).flat_map(|(&l, &r)| [l, r]).collect()
}

fn assert_same_windows(a: &[&WindowPrediction], b: &[WindowPrediction], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.window_index, x.start_ms, x.speech),
            (y.window_index, y.start_ms, y.speech)
        );
        for (s, t) in x.scores.iter().zip(&y.scores) {
            // Batched with other windows: float rounding only.
            assert!(
                (s.probability - t.probability).abs() < 1e-4,
                "{what}: {x:?} vs {y:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channel_of_a_call_is_heard_on_its_own() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.client().await;
    let (left, right) = two_voices();
    let stereo = encode(&interleave(&left, &right), SampleFormat::S16Le);
    let separate = sentio::proto::StreamConfig {
        channels: 2,
        channel_mode: ChannelMode::Separate as i32,
        include_silence: true,
        ..config(AudioEncoding::PcmS16le, 16_000)
    };
    // 4,001 bytes: chunks split stereo frames.
    let both = run_stream(&mut client, requests(separate, &stereo, 4_001)).await;
    assert!(both.status.is_none(), "{:?}", both.status);
    let mut alone = Vec::new();
    for voice in [&left, &right] {
        let mono = sentio::proto::StreamConfig {
            include_silence: true,
            ..config(AudioEncoding::PcmS16le, 16_000)
        };
        let bytes = encode(voice, SampleFormat::S16Le);
        alone.push(run_stream(&mut client, requests(mono, &bytes, 3_200)).await);
    }
    // Window order, channel 0 first for the same window.
    let order: Vec<(u64, u32)> = both
        .predictions
        .iter()
        .map(|p| (p.window_index, p.channel))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    let summary = both.summary.unwrap();
    assert_eq!(summary.channels.len(), 2);
    for (channel, mono) in alone.iter().enumerate() {
        let mine: Vec<&WindowPrediction> = both
            .predictions
            .iter()
            .filter(|p| p.channel == channel as u32)
            .collect();
        assert_same_windows(&mine, &mono.predictions, &format!("channel {channel}"));
        let own = &summary.channels[channel];
        let mono_summary = mono.summary.as_ref().unwrap();
        assert_eq!(own.channel, channel as u32);
        assert_eq!(own.windows, mono_summary.windows);
        assert_eq!(own.dominant_emotion, mono_summary.dominant_emotion);
    }
    assert_eq!(
        summary.windows,
        summary.channels.iter().map(|c| c.windows).sum::<u64>()
    );

    // A stereo WAV file through Classify: the same per-channel decisions.
    let wav = stereo_wav(&stereo);
    let request = ClassifyRequest {
        audio: wav,
        channel_mode: ChannelMode::Separate as i32,
        ..Default::default()
    };
    let answer = client.classify(request).await.unwrap().into_inner();
    assert_eq!(answer.channels.len(), 2);
    for (channel, mono) in alone.iter().enumerate() {
        let mono_summary = mono.summary.as_ref().unwrap();
        assert_eq!(
            answer.channels[channel].dominant_emotion,
            mono_summary.dominant_emotion
        );
        let windows = answer
            .windows
            .iter()
            .filter(|w| w.channel == channel as u32)
            .count();
        assert_eq!(windows as u64, mono_summary.windows);
    }

    // Mixing stays the default: one set of windows, no channel summaries.
    let mixed = run_stream(
        &mut client,
        requests(
            sentio::proto::StreamConfig {
                channels: 2,
                ..config(AudioEncoding::PcmS16le, 16_000)
            },
            &stereo,
            4_000,
        ),
    )
    .await;
    let mixed_summary = mixed.summary.unwrap();
    assert!(mixed_summary.channels.is_empty());
    assert!(mixed.predictions.iter().all(|p| p.channel == 0));
    assert_eq!(
        mixed_summary.windows,
        alone[0].summary.as_ref().unwrap().windows
    );
}

#[tokio::test]
async fn bad_channel_modes_are_refused() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.client().await;
    for (channels, mode, needle) in [
        (9, ChannelMode::Separate as i32, "at most 8 channels"),
        (2, 7, "not a known ChannelMode"),
    ] {
        let config = sentio::proto::StreamConfig {
            channels,
            channel_mode: mode,
            ..config(AudioEncoding::PcmS16le, 16_000)
        };
        let result = run_stream(&mut client, requests(config, &[0; 64], 64)).await;
        let status = result.status.expect("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains(needle), "{}", status.message());
        let request = ClassifyRequest {
            audio: vec![0; 64 * channels as usize],
            encoding: AudioEncoding::PcmS16le as i32,
            sample_rate_hz: 16_000,
            channels,
            channel_mode: mode,
        };
        let status = client.classify(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains(needle), "{}", status.message());
    }
}

/// Interleaved stereo s16le bytes as a 16 kHz WAV file.
fn stereo_wav(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&(16_000u32 * 4).to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}
