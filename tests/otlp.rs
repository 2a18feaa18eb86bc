//! OpenTelemetry export: the real binary with `--otlp-endpoint` sends its stream and Classify
//! spans to an OTLP/gRPC collector (here one on loopback, built from the collector's own
//! service definition), each under the W3C `traceparent` its caller sent.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::ServerProcess;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use sentio::proto::{AudioEncoding, ClassifyRequest};
use tonic::{Request, Response, Status};

/// Every span the collector received, with its resource's `service.name`.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn start(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }

    /// Waits (up to 30 s) for a span named `name` in trace `trace_id`.
    async fn span(&self, name: &str, trace_id: &[u8]) -> (String, Span) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|(_, s)| s.name == name && s.trace_id == trace_id)
                .cloned();
            if let Some(found) = found {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {name} span of trace {} reached the collector",
                hex(trace_id)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?;
    Some(match value.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

/// A caller's `traceparent`: version 00, its trace id and span id, sampled.
fn traceparent(trace: &[u8; 16], parent: &[u8; 8]) -> String {
    format!("00-{}-{}-01", hex(trace), hex(parent))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_under_the_callers_trace() {
    let collector = Collector::default();
    let endpoint = format!("http://{}", collector.start().await);
    let server = ServerProcess::start_with_env(
        &["--otlp-endpoint", &endpoint],
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    let mut client = server.client().await;
    let audio = speech_bytes();

    // A stream whose caller is inside trace `stream_trace`, in its span `stream_parent`.
    let (stream_trace, stream_parent) = ([0x5e; 16], [0x01, 2, 3, 4, 5, 6, 7, 8]);
    let mut call = Request::new(tokio_stream::iter(requests(
        config(AudioEncoding::PcmS16le, 16_000),
        &audio,
        3_200,
    )));
    call.metadata_mut().insert(
        "traceparent",
        traceparent(&stream_trace, &stream_parent).parse().unwrap(),
    );
    let mut responses = client.stream_emotions(call).await.unwrap().into_inner();
    let mut result = StreamResult::default();
    while let Some(message) = responses.message().await.unwrap() {
        result.add(message);
    }
    assert!(!result.predictions.is_empty() && result.summary.is_some());

    // A Classify call in another trace.
    let (classify_trace, classify_parent) = ([0xc1; 16], [9, 10, 11, 12, 13, 14, 15, 16]);
    let mut call = Request::new(ClassifyRequest {
        audio: std::fs::read(fixture("speech_long_16k.wav")).unwrap(),
        ..Default::default()
    });
    call.metadata_mut().insert(
        "traceparent",
        traceparent(&classify_trace, &classify_parent)
            .parse()
            .unwrap(),
    );
    client.classify(call).await.unwrap();

    let (service, stream) = collector.span("stream", &stream_trace).await;
    assert_eq!(service, "sentio");
    assert_eq!(
        stream.parent_span_id, stream_parent,
        "the caller's span is the parent"
    );
    assert!(stream.end_time_unix_nano > stream.start_time_unix_nano);
    let stream_id = attribute(&stream, "stream_id").expect("the stream span names its stream");
    assert!(!stream_id.is_empty());
    assert_eq!(
        attribute(&stream, "rate").as_deref(),
        Some("16000"),
        "{stream:?}"
    );

    let (_, classify) = collector.span("classify", &classify_trace).await;
    assert_eq!(classify.parent_span_id, classify_parent);
    assert_ne!(classify.span_id, stream.span_id);
}
