//! The streaming server end to end, on 127.0.0.1 with the shipped model and real speech.

mod common;

use common::*;
use sentio::classify::classify_audio;
use sentio::model::{Model, ModelSource};
use sentio::proto::stream_emotions_response::Response;
use sentio::proto::{AudioEncoding, ClassifyRequest, EndReason};

fn mean_scores(predictions: &[sentio::proto::WindowPrediction]) -> Vec<f32> {
    let speech: Vec<_> = predictions.iter().filter(|p| p.speech).collect();
    (0..8)
        .map(|c| speech.iter().map(|p| p.scores[c].probability).sum::<f32>() / speech.len() as f32)
        .collect()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{what}: {a:?} vs {b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_clip_matches_classify_and_any_chunking() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.client().await;
    let audio = speech_bytes();
    let mut runs = Vec::new();
    for chunk in [320, 4_001, 17, audio.len()] {
        let result = run_stream(
            &mut client,
            requests(config(AudioEncoding::PcmS16le, 16_000), &audio, chunk),
        )
        .await;
        assert!(
            result.status.is_none(),
            "chunk {chunk}: {:?}",
            result.status
        );
        assert!(result.started);
        let summary = result.summary.clone().expect("summary");
        assert_eq!(summary.end_reason, "completed");
        assert_eq!(summary.reason(), EndReason::Completed);
        assert_eq!(summary.audio_ms, 6500);
        let indices: Vec<u64> = result.predictions.iter().map(|p| p.window_index).collect();
        assert_eq!(
            indices,
            (0..indices.len() as u64).collect::<Vec<_>>(),
            "windows in order"
        );
        for p in &result.predictions {
            let sum: f32 = p.scores.iter().map(|s| s.probability).sum();
            assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
        }
        runs.push(result);
    }
    // 6.5 s with 2 s windows every 1 s: windows at 0..5 s, plus the 0.5 s tail at 5.0 s.
    assert_eq!(runs[0].predictions.len(), 6);
    assert_eq!(
        (
            runs[0].predictions[5].start_ms,
            runs[0].predictions[5].end_ms
        ),
        (5000, 6500)
    );
    for run in &runs[1..] {
        assert_eq!(run.predictions.len(), runs[0].predictions.len());
        for (a, b) in run.predictions.iter().zip(&runs[0].predictions) {
            assert_eq!(
                (a.start_ms, a.end_ms, &a.emotion),
                (b.start_ms, b.end_ms, &b.emotion)
            );
            let pa: Vec<f32> = a.scores.iter().map(|s| s.probability).collect();
            let pb: Vec<f32> = b.scores.iter().map(|s| s.probability).collect();
            assert_close(&pa, &pb, 1e-5, "same window, other chunking");
        }
    }
    // The clip-level mean equals `sentio classify` (offline) and the Classify RPC.
    let model = Model::default_model(&candle_core::Device::Cpu).unwrap();
    let offline = classify_audio(
        &model,
        &sentio::audio::decode_path(&fixture("speech_long_16k.wav")).unwrap(),
        sentio::pipeline::DEFAULT_SILENCE_DBFS,
    )
    .unwrap();
    let streamed = mean_scores(&runs[0].predictions);
    assert_close(&streamed, &offline.mean, 1e-5, "stream vs sentio classify");
    let summary_mean: Vec<f32> = runs[0]
        .summary
        .as_ref()
        .unwrap()
        .mean_scores
        .iter()
        .map(|s| s.probability)
        .collect();
    assert_close(
        &summary_mean,
        &offline.mean,
        1e-5,
        "summary vs sentio classify",
    );
    let file = std::fs::read(fixture("speech_long_16k.wav")).unwrap();
    let rpc = client
        .classify(ClassifyRequest {
            audio: file,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rpc_mean: Vec<f32> = rpc.scores.iter().map(|s| s.probability).collect();
    assert_close(
        &rpc_mean,
        &offline.mean,
        1e-5,
        "Classify RPC vs sentio classify",
    );
    assert_eq!(rpc.emotion, offline.emotion);
    assert_eq!(rpc.windows.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telephone_audio_in_every_encoding_and_rate_is_understood() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.client().await;
    let speech = sentio::audio::decode_path(&fixture("speech_long_16k.wav")).unwrap();
    for (encoding, format, rate) in [
        (
            AudioEncoding::Mulaw,
            sentio::audio::SampleFormat::MuLaw,
            8_000,
        ),
        (
            AudioEncoding::Alaw,
            sentio::audio::SampleFormat::ALaw,
            8_000,
        ),
        (
            AudioEncoding::PcmF32le,
            sentio::audio::SampleFormat::F32Le,
            48_000,
        ),
    ] {
        let samples =
            sentio::audio::StreamResampler::resample_all(16_000, rate, &speech.samples).unwrap();
        let bytes = sentio::audio::pcm::encode(&samples, format);
        let result = run_stream(&mut client, requests(config(encoding, rate), &bytes, 1000)).await;
        assert!(result.status.is_none(), "{encoding:?}: {:?}", result.status);
        assert_eq!(result.predictions.len(), 6, "{encoding:?}");
        assert_eq!(result.summary.unwrap().audio_ms, 6500, "{encoding:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_streams_complete_in_order() {
    let server = TestServer::start(|_| {}).await;
    let audio = speech_bytes();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let mut client = server.client().await;
        let audio = audio.clone();
        tasks.push(tokio::spawn(async move {
            let mut cfg = config(AudioEncoding::PcmS16le, 16_000);
            cfg.stream_id = format!("call-{i}");
            run_stream(&mut client, requests(cfg, &audio, 3_200 + i)).await
        }));
    }
    let mut first: Option<Vec<String>> = None;
    for task in tasks {
        let result = task.await.unwrap();
        assert!(result.status.is_none(), "{:?}", result.status);
        let indices: Vec<u64> = result.predictions.iter().map(|p| p.window_index).collect();
        assert_eq!(indices, (0..6).collect::<Vec<_>>());
        let emotions: Vec<String> = result
            .predictions
            .iter()
            .map(|p| p.emotion.clone())
            .collect();
        assert_eq!(
            first.get_or_insert(emotions.clone()),
            &emotions,
            "the same audio gives the same windows"
        );
        assert!(result.summary.is_some());
    }
}

#[test]
fn a_window_alone_equals_the_same_window_in_a_batch_of_64() {
    let model = Model::default_model(&candle_core::Device::Cpu).unwrap();
    let speech = sentio::audio::decode_path(&fixture("speech_long_16k.wav")).unwrap();
    let window = model.window_input(&speech.samples[..32_000]).unwrap();
    let other = model.window_input(&speech.samples[16_000..48_000]).unwrap();
    let alone = model.predict(&[&window]).unwrap().remove(0);
    let mut batch: Vec<&sentio::model::WindowInput> = vec![&other; 63];
    batch.insert(17, &window);
    let batched = model.predict(&batch).unwrap().remove(17);
    // GEMM blocking can change float rounding with the batch size; 1e-5 is far below any
    // decision boundary that matters (probabilities are reported to 3 digits).
    assert_close(&alone, &batched, 1e-5, "alone vs in a batch of 64");
}

/// No hold-back: a window's prediction comes as soon as the chunk holding its last sample
/// is in, whatever the resampler still buffers, for telephony frames, 100 and 250 ms chunks
/// and single-sample chunks, at 8, 16, 44.1 and 48 kHz. Audio up to the first window's end
/// (2 s) is sent, then nothing more while the stream stays open: a pipeline waiting for later
/// audio would never answer. `latency_us` counts from that last chunk's arrival, so it is
/// never more than the client's own send-to-receipt time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_is_predicted_from_the_chunk_with_its_last_sample() {
    let server = TestServer::start(|_| {}).await;
    let audio = sentio::audio::decode_path(&fixture("speech_long_16k.wav")).unwrap();
    let mut client = server.client().await;
    for (rate, chunk_ms) in [
        (8_000, 250),
        (8_000, 20),
        (16_000, 100),
        (44_100, 20),
        (48_000, 10),
        (8_000, 0),
        (44_100, 0),
    ] {
        let signal =
            sentio::audio::StreamResampler::resample_all(16_000, rate, &audio.samples).unwrap();
        let bytes = sentio::audio::pcm::encode(
            &signal[..2 * rate as usize],
            sentio::audio::SampleFormat::S16Le,
        );
        // 0 ms: one sample per chunk for the window's last 20 ms, after 20 ms chunks. (That
        // many one-sample messages once broke the connection under load: h2's budget for
        // unread small frames, now sized by the server's windows; tests/signals.rs floods a
        // stalled server with them.)
        let chunk = (rate as usize * chunk_ms / 1000).max(1) * 2;
        let what = format!("{rate} Hz in {chunk} byte chunks");
        let single_tail = if chunk_ms == 0 {
            rate as usize / 50 * 2
        } else {
            0
        };
        let head = bytes.len() - single_tail;
        let pieces: Vec<&[u8]> = if single_tail > 0 {
            let head_chunk = rate as usize / 50 * 2;
            (bytes[..head].chunks(head_chunk))
                .chain(bytes[head..].chunks(chunk))
                .collect()
        } else {
            bytes.chunks(chunk).collect()
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let mut inbound = client
            .stream_emotions(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        tx.send(requests(config(AudioEncoding::PcmS16le, rate), &[], 1).remove(0))
            .await
            .unwrap();
        let mut last_sent = std::time::Instant::now();
        for piece in pieces {
            last_sent = std::time::Instant::now();
            tx.send(requests(Default::default(), piece, piece.len()).remove(1))
                .await
                .unwrap();
        }
        // The stream stays open: nothing after the window's last sample is sent.
        let first = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            loop {
                if let Some(Response::Prediction(p)) =
                    inbound.message().await.unwrap().unwrap().response
                {
                    break p;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: the window ending with the last chunk was held back"));
        let client_us = last_sent.elapsed().as_micros() as u64;
        assert_eq!((first.window_index, first.end_ms), (0, 2_000), "{what}");
        assert!(
            first.latency_us <= client_us,
            "{what}: server {} us > client {client_us} us",
            first.latency_us
        );
        drop(tx);
    }
}

/// GetModelInfo states the weights' licence and training data of whichever model is loaded:
/// both built-in models (chosen as `--model builtin:NAME` chooses them) and a directory.
#[tokio::test]
async fn model_info_states_the_weights_licence() {
    let cpu = candle_core::Device::Cpu;
    let ensemble = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/phone-ensemble");
    let all_four = ["CREMA-D", "RAVDESS", "SAVEE", "TESS"]
        .map(String::from)
        .to_vec();
    let cases = [
        ("builtin:default", "CC BY-NC-SA 4.0", all_four.clone(), 8),
        (
            "builtin:crema-d",
            "ODbL 1.0/DbCL 1.0, commercial use allowed",
            vec!["CREMA-D".to_string()],
            6,
        ),
        (ensemble.to_str().unwrap(), "CC BY-NC-SA 4.0", all_four, 8),
    ];
    for (source, license, training_data, classes) in cases {
        let model = source.parse::<ModelSource>().unwrap().load(&cpu).unwrap();
        let server = TestServer::start_engine(model.into(), |_| {}).await;
        let info = server
            .client()
            .await
            .get_model_info(sentio::proto::GetModelInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(
            info.license.starts_with(license),
            "{source}: {}",
            info.license
        );
        assert_eq!(info.training_data, training_data, "{source}");
        assert_eq!(info.labels.len(), classes, "{source}");
    }
}
