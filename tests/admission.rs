//! Admission on a real server: API keys guard the service but not health and reload when
//! their file changes, the stream limit answers RESOURCE_EXHAUSTED. (Bad input has its own table in bad_input.rs.)

mod common;

use common::*;
use sentio::proto::{AudioEncoding, GetModelInfoRequest};

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
    let mut health = server.health().await;
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

    // A Secret update rewrites the file: the new key works without a restart or a signal,
    // and the old one stops working. Kubernetes swaps the file through a symlink.
    let rotated = dir.join("keys-rotated.txt");
    std::fs::write(&rotated, "secret-two\n").unwrap();
    let link = dir.join("keys-link.txt");
    std::fs::rename(&rotated, &link).unwrap();
    std::fs::rename(&link, &keys).unwrap();
    let with = |key: &str| {
        let mut request = tonic::Request::new(GetModelInfoRequest {});
        let value = format!("Bearer {key}");
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
        request
    };
    let mut reloaded = false;
    // Polled every 2 s; a guard against a hang, not a latency bound.
    for _ in 0..100 {
        if client.get_model_info(with("secret-two")).await.is_ok() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(reloaded, "the rewritten keys file was not picked up");
    assert_eq!(
        client
            .get_model_info(with("secret-one"))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated
    );
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
