//! TLS and mutual TLS on the gRPC port, with certificates made for the test by rcgen: a
//! client that trusts the CA is served, a plaintext or wrongly trusting client is not, and
//! with client verification on, only a caller holding a CA-signed certificate gets in.

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sentio::proto::emotion_recognizer_client::EmotionRecognizerClient;
use sentio::proto::{AudioEncoding, ClassifyRequest, GetModelInfoRequest};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A CA, a server certificate for `localhost` and a client certificate, all signed by it.
fn pki() -> (String, Pem, Pem) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str, usage| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![usage];
        Pem {
            cert: params.signed_by(&key, &issuer).unwrap().pem(),
            key: key.serialize_pem(),
        }
    };
    let server = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let client = leaf("caller-1", ExtendedKeyUsagePurpose::ClientAuth);
    (ca_pem, server, client)
}

/// Writes PEMs where the server's flags can point.
fn write(dir: &std::path::Path, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// A model-info call and a real Classify over `tls` (None: plaintext); the error code if any.
async fn call(server: &TestServer, tls: Option<ClientTlsConfig>) -> Result<String, tonic::Code> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", server.addr)).unwrap();
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|_| tonic::Code::Unavailable)?;
    let mut client = EmotionRecognizerClient::new(channel);
    client
        .get_model_info(GetModelInfoRequest {})
        .await
        .map_err(|s| s.code())?;
    let reply = client
        .classify(ClassifyRequest {
            audio: std::fs::read(fixture("speech_16k.wav")).unwrap(),
            encoding: AudioEncoding::Unspecified as i32,
            ..Default::default()
        })
        .await
        .map_err(|s| s.code())?;
    Ok(reply.into_inner().emotion)
}

fn trusting(ca_pem: &str) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_its_ca_and_only_them() {
    let dir = std::env::temp_dir().join(format!("sentio-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, server_pem, _) = pki();
    let (cert, key) = (
        write(&dir, "server.pem", &server_pem.cert),
        write(&dir, "server.key", &server_pem.key),
    );
    let server = TestServer::start(|c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    let emotion = call(&server, Some(trusting(&ca))).await.unwrap();
    assert!(!emotion.is_empty());
    assert!(call(&server, None).await.is_err(), "plaintext was served");
    let (other_ca, _, _) = pki();
    assert!(
        call(&server, Some(trusting(&other_ca))).await.is_err(),
        "a client trusting another CA connected"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_callers_with_a_signed_certificate() {
    let dir = std::env::temp_dir().join(format!("sentio-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, server_pem, client_pem) = pki();
    let paths = (
        write(&dir, "server.pem", &server_pem.cert),
        write(&dir, "server.key", &server_pem.key),
        write(&dir, "ca.pem", &ca),
    );
    let server = TestServer::start(|c| {
        c.tls_cert = Some(paths.0);
        c.tls_key = Some(paths.1);
        c.tls_client_ca = Some(paths.2);
    })
    .await;
    let with_identity =
        trusting(&ca).identity(Identity::from_pem(&client_pem.cert, &client_pem.key));
    assert!(call(&server, Some(with_identity)).await.is_ok());
    assert!(
        call(&server, Some(trusting(&ca))).await.is_err(),
        "a caller without a certificate got in"
    );
    let (_, _, stranger) = pki();
    let forged = trusting(&ca).identity(Identity::from_pem(&stranger.cert, &stranger.key));
    assert!(
        call(&server, Some(forged)).await.is_err(),
        "a caller with a certificate from another CA got in"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Certificates rotate without a restart: replacing the files (as a Secret update does)
/// serves new connections with the new certificate; a broken file keeps the previous one;
/// a stream opened before the rotation goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificates_are_picked_up_and_broken_ones_ignored() {
    let dir = std::env::temp_dir().join(format!("sentio-tls-rotate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old_ca, old, _) = pki();
    let (cert, key) = (
        write(&dir, "server.pem", &old.cert),
        write(&dir, "server.key", &old.key),
    );
    let server = TestServer::start(|c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    assert!(call(&server, Some(trusting(&old_ca))).await.is_ok());
    // A stream open across the rotation.
    let endpoint = Endpoint::from_shared(format!("https://{}", server.addr))
        .unwrap()
        .tls_config(trusting(&old_ca))
        .unwrap();
    let mut open = EmotionRecognizerClient::new(endpoint.connect().await.unwrap());

    let (new_ca, new, _) = pki();
    write(&dir, "server.key", &new.key);
    write(&dir, "server.pem", &new.cert);
    let mut rotated = false;
    for _ in 0..100 {
        if call(&server, Some(trusting(&new_ca))).await.is_ok() {
            rotated = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(rotated, "the new certificate was not served within 20 s");
    assert!(call(&server, Some(trusting(&old_ca))).await.is_err());
    let result = run_stream(
        &mut open,
        requests(
            config(AudioEncoding::PcmS16le, 16_000),
            &speech_bytes(),
            3_200,
        ),
    )
    .await;
    assert!(result.status.is_none(), "{:?}", result.status);

    // A half-written certificate: logged, and the last good one stays in force.
    write(&dir, "server.pem", "-----BEGIN CERTIFICATE-----\ngarbage\n");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert!(call(&server, Some(trusting(&new_ca))).await.is_ok());
    let _ = std::fs::remove_dir_all(dir);
}
