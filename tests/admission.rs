//! Admission on a real server: bad input gets INVALID_ARGUMENT while other streams carry on,
//! API keys guard the service but not health, the stream limit answers RESOURCE_EXHAUSTED.

mod common;

use common::*;
use sentio::proto::{
    AudioEncoding, GetModelInfoRequest, StreamConfig, StreamEmotionsRequest,
    stream_emotions_request::Request,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_invalid_argument_and_other_streams_carry_on() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.client().await;
    let audio = speech_bytes();
    // A healthy stream runs throughout.
    let mut healthy_client = server.client().await;
    let healthy = tokio::spawn({
        let audio = audio.clone();
        async move {
            run_stream(
                &mut healthy_client,
                requests(config(AudioEncoding::PcmS16le, 16_000), &audio, 640),
            )
            .await
        }
    });
    let audio_msg = |b: &[u8]| StreamEmotionsRequest {
        request: Some(Request::Audio(b.to_vec())),
    };
    let config_msg = |c| StreamEmotionsRequest {
        request: Some(Request::Config(c)),
    };
    let nan: Vec<u8> = [0.1f32, f32::NAN]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let cases: Vec<(&str, Vec<StreamEmotionsRequest>, &str)> = vec![
        (
            "chunk before config",
            vec![audio_msg(&audio[..100])],
            "first message",
        ),
        (
            "sample rate 0",
            vec![config_msg(config(AudioEncoding::PcmS16le, 0))],
            "sample_rate",
        ),
        (
            "unspecified encoding",
            vec![config_msg(config(AudioEncoding::Unspecified, 16_000))],
            "encoding",
        ),
        (
            "NaN samples",
            vec![
                config_msg(config(AudioEncoding::PcmF32le, 16_000)),
                audio_msg(&nan),
            ],
            "not finite",
        ),
        (
            "config twice",
            vec![
                config_msg(config(AudioEncoding::PcmS16le, 16_000)),
                config_msg(config(AudioEncoding::PcmS16le, 16_000)),
            ],
            "twice",
        ),
        (
            "sample rate 10 MHz",
            vec![config_msg(config(AudioEncoding::PcmS16le, 10_000_000))],
            "sample_rate",
        ),
        (
            "sample rate 7999 Hz",
            vec![config_msg(config(AudioEncoding::Mulaw, 7_999))],
            "sample_rate",
        ),
        (
            "unknown encoding",
            vec![config_msg(StreamConfig {
                encoding: 99,
                ..config(AudioEncoding::PcmS16le, 16_000)
            })],
            "not a known",
        ),
        (
            "1000 channels",
            vec![config_msg(StreamConfig {
                channels: 1000,
                ..config(AudioEncoding::PcmS16le, 16_000)
            })],
            "channels",
        ),
        (
            "window shorter than hop",
            vec![config_msg(StreamConfig {
                window_ms: 1000,
                hop_ms: 1500,
                ..config(AudioEncoding::PcmS16le, 16_000)
            })],
            "longer than window",
        ),
        (
            "window too short",
            vec![config_msg(StreamConfig {
                window_ms: 100,
                ..config(AudioEncoding::PcmS16le, 16_000)
            })],
            "outside the model's range",
        ),
        (
            "window too long",
            vec![config_msg(StreamConfig {
                window_ms: 100_000,
                ..config(AudioEncoding::PcmS16le, 16_000)
            })],
            "outside the model's range",
        ),
        (
            "hop off the frame grid",
            vec![config_msg(StreamConfig {
                hop_ms: 15,
                ..config(AudioEncoding::PcmS16le, 16_000)
            })],
            "multiples of 10 ms",
        ),
        (
            "infinite samples",
            vec![
                config_msg(config(AudioEncoding::PcmF32le, 16_000)),
                audio_msg(&f32::INFINITY.to_le_bytes()),
            ],
            "not finite",
        ),
        (
            "empty request",
            vec![
                config_msg(config(AudioEncoding::PcmS16le, 16_000)),
                StreamEmotionsRequest { request: None },
            ],
            "empty",
        ),
        ("nothing at all", vec![], "ended before"),
    ];
    for (what, messages, needle) in cases {
        let result = run_stream(&mut client, messages).await;
        let status = result.status.unwrap_or_else(|| panic!("{what}: no error"));
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
        assert!(
            status.message().contains(needle),
            "{what}: {}",
            status.message()
        );
    }
    let healthy = healthy.await.unwrap();
    assert!(healthy.status.is_none(), "{:?}", healthy.status);
    assert_eq!(healthy.predictions.len(), 6);
    // The server still answers.
    let info = client
        .get_model_info(GetModelInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.labels.len(), 8);
    assert_eq!(info.sample_rate_hz, 16_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_guard_the_service_but_not_health() {
    let dir = std::env::temp_dir().join(format!("sentio-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.txt");
    std::fs::write(&keys, "# operators' keys\nsecret-one\n").unwrap();
    let server = TestServer::start(|c| c.api_keys_file = Some(keys.clone())).await;
    let mut client = server.client().await;
    let denied = client
        .get_model_info(GetModelInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(GetModelInfoRequest {});
    request
        .metadata_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    assert_eq!(
        client.get_model_info(request).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let mut request = tonic::Request::new(GetModelInfoRequest {});
    request
        .metadata_mut()
        .insert("authorization", "Bearer secret-one".parse().unwrap());
    assert!(client.get_model_info(request).await.is_ok());
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    assert!(
        health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new()
            })
            .await
            .is_ok()
    );
    // A stream without a key is refused before any audio is read.
    let result = run_stream(
        &mut client,
        requests(config(AudioEncoding::PcmS16le, 16_000), &[0; 320], 320),
    )
    .await;
    assert_eq!(result.status.unwrap().code(), tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_limit_get_resource_exhausted() {
    let server = TestServer::start(|c| c.max_streams = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = server.client().await;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(requests(config(AudioEncoding::PcmS16le, 16_000), &[], 1).remove(0))
            .await
            .unwrap();
        let inbound = client
            .stream_emotions(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        held.push((tx, inbound, client));
    }
    let mut client = server.client().await;
    let result = run_stream(
        &mut client,
        requests(config(AudioEncoding::PcmS16le, 16_000), &[0; 320], 320),
    )
    .await;
    let status = result.status.expect("refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("limit of 2"));
    // Closing one stream frees its slot.
    let (tx, mut inbound, _) = held.remove(0);
    drop(tx);
    while inbound.message().await.unwrap().is_some() {}
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let result = run_stream(
        &mut client,
        requests(
            config(AudioEncoding::PcmS16le, 16_000),
            &speech_bytes(),
            32_000,
        ),
    )
    .await;
    assert!(result.status.is_none(), "{:?}", result.status);
}
