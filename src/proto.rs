//! The generated `sentio.v1` API (from `proto/sentio/v1/emotion.proto`).
#![allow(clippy::all, missing_docs, unused_qualifications)]

tonic::include_proto!("sentio.v1");

/// Encoded descriptors of the API, served by the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("sentio_v1_descriptor");
