//! Protocol abuse on 127.0.0.1, each attack while a healthy call streams real speech on its
//! own connection: HTTP/2 rapid reset (CVE-2023-44487), PING and SETTINGS floods from a
//! client that never reads, hundreds of connections that never send a byte, and an
//! oversized header block. The call must get every window and its summary, the server must
//! go on answering, and no session may be left behind.

mod common;

use std::time::Duration;

use common::*;
use sentio::proto::{AudioEncoding, EndReason, GetModelInfoRequest};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const STREAM_PATH: &str = "/sentio.v1.EmotionRecognizer/StreamEmotions";

/// Streams the speech fixture at twice real time on a fresh connection; asserts that every
/// window and the summary came back.
async fn healthy_call(server: &TestServer) {
    let mut client = server.client().await;
    let audio = speech_bytes();
    let chunk = 3_200; // 100 ms
    let requests = requests(config(AudioEncoding::PcmS16le, 16_000), &audio, chunk);
    let paced =
        tokio_stream::StreamExt::throttle(tokio_stream::iter(requests), Duration::from_millis(50));
    let mut inbound = client.stream_emotions(paced).await.unwrap().into_inner();
    let (mut windows, mut summary) = (0u64, None);
    while let Some(message) = inbound.message().await.unwrap() {
        use sentio::proto::stream_emotions_response::Response;
        match message.response {
            Some(Response::Prediction(_)) => windows += 1,
            Some(Response::Summary(s)) => summary = Some(s),
            _ => {}
        }
    }
    let summary = summary.expect("the call got its summary");
    assert_eq!(summary.reason(), EndReason::Completed);
    assert_eq!(summary.speech_windows, windows);
    assert!(windows >= 5, "{windows} windows");
}

/// An HTTP/2 connection speaking raw h2, as an attacker's tool does.
async fn h2_connection(server: &TestServer) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

fn grpc_request(server: &TestServer) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://{}{STREAM_PATH}", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// Opens streams and resets each at once, as fast as the connection lets it; returns how
/// many it reset before the server closed the connection (if it did).
async fn rapid_reset(server: &TestServer, streams: usize) -> usize {
    let mut send = h2_connection(server).await;
    for sent in 0..streams {
        let Ok(ready) = send.clone().ready().await else {
            // The server closed the connection (its reset-flood protection): attack over.
            return sent;
        };
        send = ready;
        match send.send_request(grpc_request(server), false) {
            Ok((_, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(_) => return sent,
        }
    }
    streams
}

/// HTTP/2 frames written straight to the socket: the preface, then `frame` `count` times,
/// and never a byte read back (the server's ACKs and PONGs pile up on its side).
async fn flood(server: &TestServer, frame: &[u8], count: usize) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
    for _ in 0..count {
        bytes.extend_from_slice(frame);
    }
    // The server may stop reading (or close) once it has had enough: that is the point.
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.write_all(&bytes)).await;
    tcp
}

const PING: [u8; 17] = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

async fn active_streams(server: &TestServer) -> f64 {
    let text = server.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix("sentio_active_streams "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// All attacks in one test: the active-streams gauge is process-wide, so nothing else may
/// stream beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_survives_protocol_abuse() {
    let server = TestServer::start(|c| c.idle_timeout_s = 2).await;

    // Rapid reset: 5,000 streams opened and cancelled at once, on two connections.
    let (_, a, b) = tokio::join!(
        healthy_call(&server),
        rapid_reset(&server, 2_500),
        rapid_reset(&server, 2_500)
    );
    eprintln!("rapid reset: {a} and {b} streams reset before the server closed the connections");

    // PING and SETTINGS floods from clients that never read.
    let pings = flood(&server, &PING, 200_000).await;
    let settings = flood(&server, &SETTINGS, 200_000).await;
    healthy_call(&server).await;
    drop((pings, settings));

    // 500 connections that never send a byte, and 100 that send only the preface.
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    for _ in 0..100 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        idle.push(tcp);
    }
    healthy_call(&server).await;
    drop(idle);

    // A header block far beyond any limit: that request fails, nothing else does.
    let mut send = h2_connection(&server).await.ready().await.unwrap();
    let mut request = grpc_request(&server);
    request
        .headers_mut()
        .insert("x-padding", "a".repeat(1 << 20).parse().unwrap());
    let refused = match send.send_request(request, true) {
        Ok((response, _)) => response.await.map(|r| r.status()),
        Err(e) => Err(e),
    };
    assert!(
        refused.as_ref().map_or(true, |s| !s.is_success()),
        "{refused:?}"
    );
    healthy_call(&server).await;

    // Every session the attacks opened has ended (streams that never sent a config time
    // out after the 2 s idle limit).
    let mut active = active_streams(&server).await;
    for _ in 0..50 {
        if active == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        active = active_streams(&server).await;
    }
    assert_eq!(active, 0.0, "sessions left behind");
    let mut client = server.client().await;
    assert!(client.get_model_info(GetModelInfoRequest {}).await.is_ok());
}
