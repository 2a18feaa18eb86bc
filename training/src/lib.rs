//! Sentio's training library: corpus loading, augmentation, feature caching, training,
//! evaluation and reports. Features and models come from the `sentio` crate itself, so
//! training and serving share one implementation.
pub mod augment;
pub mod cache;
pub mod data;
pub mod eval;
pub mod normalization;
pub mod report;
pub mod train;
