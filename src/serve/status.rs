//! The one mapping from Sentio's errors to gRPC statuses, with messages a caller can act on.

use tonic::{Code, Status};

use crate::error::Error;

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = match &err {
            Error::InvalidAudio(_)
            | Error::UnsupportedAudio(_)
            | Error::SampleRate { .. }
            | Error::Config(_) => Code::InvalidArgument,
            Error::Model(_) | Error::Io(_) => Code::Internal,
        };
        Status::new(code, err.to_string())
    }
}

/// Counts the error in the metrics and returns it.
pub fn counted(status: Status) -> Status {
    super::metrics::error(status.code());
    status
}
