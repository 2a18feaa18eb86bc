//! A stream's windows in flight, answered in window order: each is submitted to the
//! batcher as it is cut, and sent once it and every earlier one are ready.

use std::collections::VecDeque;
use std::time::Instant;

use tokio::sync::oneshot;
use tonic::Status;

use super::arrivals::ChunkArrivals;
use super::batcher::Reply;
use super::metrics;
use super::model_swap::ServingModel;
use super::outcome::Summary;
use super::session::{Outbound, message};
use super::status::counted;
use super::stream_config::Accepted;
use crate::classify::WindowResult;
use crate::pipeline::PreparedWindow;
use crate::proto::{WindowPrediction, stream_emotions_response::Response};
use crate::report::window_prediction;

/// A window waiting to be sent, in order, with its channel (0 unless channels are
/// analysed separately).
pub(crate) enum Pending {
    Ready(WindowResult, Instant, u32),
    Waiting(PreparedWindow, Instant, u32, oneshot::Receiver<Reply>),
}

/// A window ready to send: its result, when its last chunk arrived, its channel.
type ReadyWindow = (WindowResult, Instant, u32);

pub(crate) async fn submit(
    model: &ServingModel,
    pending: &mut VecDeque<Pending>,
    windows: impl Iterator<Item = (u32, PreparedWindow)>,
    arrivals: &mut ChunkArrivals,
) {
    for (channel, mut window) in windows {
        let arrived = arrivals.window_end(window.end_ms);
        match window.input.take() {
            Some(input) => {
                let reply = model.batcher.submit(input).await;
                pending.push_back(Pending::Waiting(window, arrived, channel, reply));
            }
            None => pending.push_back(Pending::Ready(
                WindowResult::new(&model.card.labels, &window, None),
                arrived,
                channel,
            )),
        }
    }
}

/// Waits for the oldest pending window; `None` if its inference failed (already counted).
pub(crate) async fn next_ready(
    pending: &mut VecDeque<Pending>,
    labels: &[String],
) -> Option<Result<ReadyWindow, String>> {
    let result = match pending.front_mut()? {
        Pending::Ready(..) => None,
        Pending::Waiting(_, _, _, reply) => Some(reply.await),
    };
    let front = pending.pop_front()?;
    Some(match (front, result) {
        (Pending::Ready(w, at, channel), _) => Ok((w, at, channel)),
        (Pending::Waiting(window, at, channel, _), Some(Ok(Ok(p)))) => {
            Ok((WindowResult::new(labels, &window, Some(p)), at, channel))
        }
        (Pending::Waiting(..), Some(Ok(Err(e)))) => Err(crate::error::chain(&e)),
        (Pending::Waiting(..), _) => Err("the model worker stopped".into()),
    })
}

/// Sends one window; false when the stream cannot go on (client gone, inference failed).
pub(crate) async fn send_window(
    model: &ServingModel,
    out: &Outbound,
    summary: &mut Summary,
    ready: Result<ReadyWindow, String>,
    stream: &Accepted,
) -> bool {
    let (window, arrived, channel) = match ready {
        Ok(w) => w,
        Err(reason) => {
            let _ = out
                .send(Err(counted(Status::internal(format!(
                    "inference failed for a window: {reason}"
                )))))
                .await;
            return false;
        }
    };
    summary.add(channel, window.probabilities.as_deref());
    metrics::window(&window.emotion);
    if window.probabilities.is_none() && !stream.include_silence {
        return true;
    }
    let own = window_prediction(&model.card.labels, &window);
    // On the call's timeline: a resumed stream continues the indices and times.
    let prediction = WindowPrediction {
        latency_us: arrived.elapsed().as_micros() as u64,
        window_index: own.window_index + stream.first_window_index(),
        start_ms: own.start_ms + stream.resume_at_ms,
        end_ms: own.end_ms + stream.resume_at_ms,
        channel,
        ..own
    };
    let sent = out
        .send(message(Response::Prediction(prediction)))
        .await
        .is_ok();
    metrics::window_latency(arrived.elapsed());
    sent
}
