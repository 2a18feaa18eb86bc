//! The one mapping from Sentio's errors to gRPC statuses, with messages a caller can act on.

use tonic::{Code, Status};

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
