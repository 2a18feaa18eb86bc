//! tonic answers a request over the message-size limit with OUT_OF_RANGE before any handler
//! runs; gRPC's status guide says a server should answer RESOURCE_EXHAUSTED. Unary calls
//! (Classify) get that status in the response headers, which this layer rewrites; streams
//! meet the limit mid-stream and their session maps it (see `session::inbound_failed`).

use tonic::codegen::http::{HeaderValue, Response};

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// For `tower::util::MapResponseLayer`: OUT_OF_RANGE "message length too large" becomes
/// RESOURCE_EXHAUSTED; every other response passes untouched.
pub fn oversized_is_resource_exhausted<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    let too_large = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| m.contains("too%20large") || m.contains("too large"));
    if too_large
        && headers
            .get("grpc-status")
            .is_some_and(|s| s == OUT_OF_RANGE)
    {
        headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    }
    response
}
