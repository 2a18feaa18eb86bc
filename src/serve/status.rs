//! The one mapping from Sentio's errors to gRPC statuses, with messages a caller can act on,
//! and how a stream that broke is told apart from a caller that went away.

use tonic::{Code, Status};

use super::outcome::Outcome;
use super::session::Outbound;
use crate::error::Error;

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = match &err {
            Error::InvalidAudio(_)
            | Error::UnsupportedAudio(_)
            | Error::Decode { .. }
            | Error::SampleRate { .. }
            | Error::Resample(_)
            | Error::Config(_)
            | Error::ResamplerSetup { .. } => Code::InvalidArgument,
            Error::Model(_)
            | Error::Card(_)
            | Error::Tensor(_)
            | Error::WeightsMismatch(_)
            | Error::Device { .. }
            | Error::File { .. }
            | Error::Server { .. }
            | Error::Io(_) => Code::Internal,
        };
        Status::new(code, crate::error::chain(&err))
    }
}

/// Counts the error in the metrics and returns it.
pub fn counted(status: Status) -> Status {
    super::metrics::error(status.code());
    status
}

/// The request stream broke. A failure of the connection itself (an HTTP/2 or I/O error
/// under the status, as tonic's streaming example recognises it) means the client went
/// away and there is no one left to tell. Otherwise tonic's decoder rejected a message: one
/// over the size limit (OUT_OF_RANGE) or one that is not valid protobuf (INTERNAL), which
/// is the caller's mistake and gets a clear status.
pub(crate) async fn inbound_failed(out: &Outbound, status: Status) -> Outcome {
    if from_transport(&status) {
        tracing::info!(%status, "client went away");
        return Outcome::Cancelled;
    }
    match status.code() {
        Code::OutOfRange => {
            let message = format!("message rejected: {}", status.message());
            fail(out, Status::resource_exhausted(message)).await
        }
        Code::Internal => {
            let message = format!("malformed request: {}", status.message());
            fail(out, Status::invalid_argument(message)).await
        }
        _ => {
            tracing::info!(%status, "client went away");
            Outcome::Cancelled
        }
    }
}

/// Whether an HTTP/2 or I/O error is among the status's causes.
fn from_transport(status: &Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(err) = cause {
        if err.is::<h2::Error>() || err.is::<std::io::Error>() {
            return true;
        }
        cause = err.source();
    }
    false
}

pub(crate) async fn fail(out: &Outbound, status: Status) -> Outcome {
    tracing::info!(code = ?status.code(), message = status.message(), "stream rejected");
    let _ = out.send(Err(counted(status))).await;
    Outcome::Error
}
