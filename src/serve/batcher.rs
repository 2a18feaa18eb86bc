//! The cross-client batcher. Sessions submit windows into one bounded queue; a dedicated
//! model thread takes whatever is queued (up to `max_batch_size`), optionally waits up to
//! `max_batch_delay` for more, runs one forward pass, and answers each window on its own
//! oneshot. No timer when the delay is zero (as TEI and Triton): batches grow by themselves
//! while the model is busy. A full queue makes `submit` wait, which stops the session from
//! reading its stream, which lets HTTP/2 flow control push back on the caller.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::metrics;
use crate::model::{Model, WindowInput};

/// What the model thread runs: the loaded `Model` in production. Tests wrap the real model
/// to inject faults (a panic mid-batch) and see what streams get.
pub trait Inference: Send + Sync + 'static {
    fn predict(&self, inputs: &[&WindowInput]) -> crate::Result<Vec<Vec<f32>>>;
}

impl Inference for Model {
    fn predict(&self, inputs: &[&WindowInput]) -> crate::Result<Vec<Vec<f32>>> {
        Model::predict(self, inputs)
    }
}

/// What a window's submitter gets back: probabilities, or why there are none.
pub type Reply = Result<Vec<f32>, BatchError>;

#[derive(Clone, Debug, thiserror::Error)]
pub enum BatchError {
    #[error("inference failed")]
    Inference(#[source] Arc<crate::Error>),
    #[error("inference failed: model panicked: {0}")]
    Panic(String),
    #[error("the model worker is shutting down")]
    Closed,
}

struct Job {
    input: WindowInput,
    queued_at: Instant,
    reply: oneshot::Sender<Reply>,
}

/// The submitting side, cloned into every session.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Job>,
}

#[derive(Clone, Debug)]
pub struct BatcherConfig {
    pub max_batch_size: usize,
    pub max_batch_delay: Duration,
    pub queue_capacity: usize,
}

impl Batcher {
    /// Starts the model thread. It stops when every `Batcher` clone is dropped and the
    /// queue is drained.
    pub fn start(
        model: Arc<dyn Inference>,
        config: BatcherConfig,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let (queue, jobs) = mpsc::channel(config.queue_capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("sentio-model".into())
            .spawn(move || run_worker(model, config, jobs))
            .expect("spawning the model thread");
        (Self { queue }, handle)
    }

    /// Queues a window; waits while the queue is full. The returned receiver yields the
    /// window's probabilities.
    pub async fn submit(&self, input: WindowInput) -> oneshot::Receiver<Reply> {
        let (reply, receiver) = oneshot::channel();
        let job = Job {
            input,
            queued_at: Instant::now(),
            reply,
        };
        if let Err(mpsc::error::SendError(job)) = self.queue.send(job).await {
            let _ = job.reply.send(Err(BatchError::Closed));
        }
        metrics::queue_depth(self.queue.max_capacity() - self.queue.capacity());
        receiver
    }
}

fn run_worker(model: Arc<dyn Inference>, config: BatcherConfig, mut jobs: mpsc::Receiver<Job>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("worker runtime");
    let mut batch: Vec<Job> = Vec::with_capacity(config.max_batch_size);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < config.max_batch_size {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.len() < config.max_batch_size && !config.max_batch_delay.is_zero() {
            let deadline = tokio::time::Instant::now() + config.max_batch_delay;
            runtime.block_on(async {
                while batch.len() < config.max_batch_size {
                    match tokio::time::timeout_at(deadline, jobs.recv()).await {
                        Ok(Some(job)) => batch.push(job),
                        _ => break,
                    }
                }
            });
        }
        // Windows whose stream has gone away are not computed.
        batch.retain(|job| !job.reply.is_closed());
        if !batch.is_empty() {
            run_batch(model.as_ref(), &mut batch);
        }
        batch.clear();
    }
}

fn run_batch(model: &dyn Inference, batch: &mut Vec<Job>) {
    let started = Instant::now();
    for job in batch.iter() {
        metrics::queue_wait(started.duration_since(job.queued_at));
    }
    let inputs: Vec<&WindowInput> = batch.iter().map(|job| &job.input).collect();
    // A panic inside inference fails this batch's windows only (INTERNAL on their streams).
    // Nothing in the model is mutated by a forward pass, so the thread goes on with the next
    // batch, as a fresh worker would, without losing the queue.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| model.predict(&inputs)));
    metrics::batch(batch.len(), started.elapsed());
    match result {
        Ok(Ok(probabilities)) => {
            for (job, probs) in batch.drain(..).zip(probabilities) {
                let _ = job.reply.send(Ok(probs));
            }
        }
        Ok(Err(err)) => {
            tracing::error!(error = %crate::error::chain(&err), size = batch.len(), "batch inference failed");
            let err = Arc::new(err);
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(BatchError::Inference(err.clone())));
            }
        }
        Err(panic) => {
            let what = crate::panics::payload_message(&*panic);
            tracing::error!(size = batch.len(), "model panicked; failing the batch");
            metrics::model_panic();
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(BatchError::Panic(what.to_string())));
            }
        }
    }
}
