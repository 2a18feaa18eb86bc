//! Sentio's training library: corpus loading, augmentation, feature caching, training,
//! evaluation protocols and reports. Features and models come from the `sentio` crate
//! itself, so training and serving share one implementation.
pub mod adapt;
pub mod adversary;
pub mod augment;
pub mod batch;
pub mod cache;
pub mod data;
pub mod ensemble;
pub mod eval;
pub mod evaluate;
pub mod loss;
pub mod normalization;
pub mod protocol;
pub mod report;
pub mod routing;
pub mod run;
pub mod schedule;
pub mod train;
pub mod weights;

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len}",
        )
        .expect("template"),
    );
    bar.set_prefix(what.to_string());
    bar
}
