//! A real server on 127.0.0.1 with the shipped model, and a client for it.
#![allow(dead_code)]

pub(crate) mod process;
pub(crate) mod twilio;

use std::net::SocketAddr;
use std::path::PathBuf;

use sentio::audio::SampleFormat;
use sentio::audio::pcm::encode;
use sentio::model::Model;
use sentio::proto::emotion_recognizer_client::EmotionRecognizerClient;
use sentio::proto::{
    AudioEncoding, StreamConfig, StreamEmotionsRequest, StreamEmotionsResponse, StreamSummary,
    WindowPrediction, stream_emotions_request::Request, stream_emotions_response::Response,
};
use sentio::serve::{Engine, ServeConfig};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<sentio::Result<()>>,
}

impl TestServer {
    pub(crate) async fn start(tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let model = Model::default_model(&candle_core::Device::Cpu).unwrap();
        Self::start_engine(model.into(), tweak).await
    }

    /// A server running its windows through `engine` (the real model, possibly wrapped).
    pub(crate) async fn start_engine(engine: Engine, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let mut config = ServeConfig::defaults();
        tweak(&mut config);
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, metrics_addr) = (grpc.local_addr().unwrap(), metrics.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sentio::serve::serve(
            grpc,
            Some(metrics),
            config,
            engine,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            metrics_addr,
            stop: Some(stop),
            task,
        }
    }

    pub(crate) async fn client(&self) -> EmotionRecognizerClient<Channel> {
        EmotionRecognizerClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    /// A client of the standard gRPC health service on the same port.
    pub(crate) async fn health(&self) -> tonic_health::pb::health_client::HealthClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        tonic_health::pb::health_client::HealthClient::new(channel)
    }

    /// What SIGTERM does: starts the drain.
    pub(crate) fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub(crate) async fn metrics(&self) -> String {
        scrape_metrics(self.metrics_addr).await
    }
}

/// The body of a server's Prometheus /metrics page.
pub(crate) async fn scrape_metrics(addr: SocketAddr) -> String {
    http_get(addr, "/metrics").await
}

/// A plain HTTP/1.1 GET on the metrics port: the status line, headers and body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut body = String::new();
    socket.read_to_string(&mut body).await.unwrap();
    body
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The long speech fixture as s16le bytes at 16 kHz.
pub(crate) fn speech_bytes() -> Vec<u8> {
    let audio = sentio::audio::decode_path(&fixture("speech_long_16k.wav")).unwrap();
    encode(&audio.samples, SampleFormat::S16Le)
}

pub(crate) fn config(encoding: AudioEncoding, rate: u32) -> StreamConfig {
    StreamConfig {
        encoding: encoding as i32,
        sample_rate_hz: rate,
        channels: 1,
        ..Default::default()
    }
}

pub(crate) fn requests(
    config: StreamConfig,
    audio: &[u8],
    chunk: usize,
) -> Vec<StreamEmotionsRequest> {
    let mut out = vec![StreamEmotionsRequest {
        request: Some(Request::Config(config)),
    }];
    out.extend(audio.chunks(chunk.max(1)).map(|c| StreamEmotionsRequest {
        request: Some(Request::Audio(c.to_vec())),
    }));
    out
}

/// Everything a stream returned, or the status that ended it.
#[derive(Debug, Default)]
pub(crate) struct StreamResult {
    pub started: bool,
    pub predictions: Vec<WindowPrediction>,
    pub summary: Option<StreamSummary>,
    pub status: Option<tonic::Status>,
}

impl StreamResult {
    /// Records one message of a stream (or of a watch).
    pub(crate) fn add(&mut self, message: StreamEmotionsResponse) {
        match message.response {
            Some(Response::Started(_)) => self.started = true,
            Some(Response::Prediction(p)) => self.predictions.push(p),
            Some(Response::Summary(s)) => self.summary = Some(s),
            None => {}
        }
    }
}

/// Opens a stream with `first` requests queued; more go through the returned sender, and
/// dropping it half-closes the stream.
pub(crate) async fn open_stream(
    client: &mut EmotionRecognizerClient<Channel>,
    first: impl IntoIterator<Item = StreamEmotionsRequest>,
) -> (
    tokio::sync::mpsc::Sender<StreamEmotionsRequest>,
    tonic::Streaming<StreamEmotionsResponse>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    for request in first {
        tx.send(request).await.unwrap();
    }
    let responses = client
        .stream_emotions(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    (tx, responses)
}

pub(crate) async fn run_stream(
    client: &mut EmotionRecognizerClient<Channel>,
    requests: Vec<StreamEmotionsRequest>,
) -> StreamResult {
    let mut result = StreamResult::default();
    let mut inbound = match client.stream_emotions(tokio_stream::iter(requests)).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            result.status = Some(status);
            return result;
        }
    };
    loop {
        match inbound.message().await {
            Ok(Some(StreamEmotionsResponse { response: Some(r) })) => match r {
                Response::Started(_) => result.started = true,
                Response::Prediction(p) => result.predictions.push(p),
                Response::Summary(s) => result.summary = Some(s),
            },
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(status) => {
                result.status = Some(status);
                break;
            }
        }
    }
    result
}
