//! The model being served, and swapping it without a restart. Each stream takes the current
//! [`ServingModel`] when it starts and keeps it to its end; Classify and `GetModelInfo` take
//! the current one per call. With `--model DIR`, the directory's `model.json` and
//! `model.safetensors` are checked every [`auth::POLL_INTERVAL`] (a Kubernetes ConfigMap or
//! volume update needs no restart): a change that loads becomes the current model, with a
//! model thread of its own; the previous thread stops once its last stream has ended. A
//! model that does not load is logged and the current one stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;

use candle_core::{Device, DeviceLocation};

use super::auth;
use super::batcher::{Batcher, BatcherConfig};
use super::{Engine, metrics};
use crate::model::{Model, ModelCard};

/// A loaded model and the queue of its model thread.
pub struct ServingModel {
    pub card: ModelCard,
    pub batcher: Batcher,
    pub device: DeviceLocation,
}

pub struct Models {
    current: RwLock<Arc<ServingModel>>,
    config: BatcherConfig,
    /// Every model thread started, joined at shutdown.
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// Starts `engine`'s model thread.
fn serving(engine: Engine, config: &BatcherConfig) -> (ServingModel, JoinHandle<()>) {
    let (batcher, worker) = Batcher::start(engine.inference, config.clone());
    metrics::build_info(&engine.card.id);
    let model = ServingModel {
        card: engine.card,
        batcher,
        device: engine.device,
    };
    (model, worker)
}

impl Models {
    pub fn start(engine: Engine, config: BatcherConfig) -> Self {
        let (model, worker) = serving(engine, &config);
        Self {
            current: RwLock::new(Arc::new(model)),
            config,
            workers: Mutex::new(vec![worker]),
        }
    }

    /// The model new streams and calls get.
    pub fn current(&self) -> Arc<ServingModel> {
        self.current.read().expect("model lock").clone()
    }

    /// Makes `engine` the current model; streams already open keep theirs.
    pub fn swap(&self, engine: Engine) {
        let (next, worker) = serving(engine, &self.config);
        let id = next.card.id.clone();
        let previous = std::mem::replace(
            &mut *self.current.write().expect("model lock"),
            Arc::new(next),
        );
        if previous.card.id != id {
            metrics::build_info_retired(&previous.card.id);
        }
        let mut workers = self.workers.lock().expect("workers lock");
        workers.retain(|w| !w.is_finished());
        workers.push(worker);
    }

    /// The model threads, to join once every stream has ended and the models are dropped.
    pub fn take_workers(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.workers.lock().expect("workers lock"))
    }

    /// Polls `dir` and swaps in its model when its files change and load.
    pub fn watch_dir(self: &Arc<Self>, dir: PathBuf, device: Device) {
        let models: Weak<Self> = Arc::downgrade(self);
        let last = Mutex::new(model_files(&dir).ok());
        auth::poll_changes(
            move || {
                let models = models.upgrade()?;
                let files = model_files(&dir);
                let mut last = last.lock().expect("model files lock");
                match files {
                    Ok(files) if Some(&files) == last.as_ref() => None,
                    Ok(files) => {
                        *last = Some(files);
                        Some(Model::load_dir(&dir, &device).map(|model| {
                            let id = model.card.id.clone();
                            models.swap(Engine::from(model));
                            id
                        }))
                    }
                    Err(e) => Some(Err(e)),
                }
            },
            |result| match result {
                Ok(id) => {
                    tracing::info!(model = %id, "model swapped: new streams get it, open streams keep theirs")
                }
                Err(e) => {
                    tracing::error!(error = %crate::error::chain(&e), "model not swapped; the current model stays")
                }
            },
            "model directory unusable",
        );
    }
}

/// The bytes of a model directory's two files.
fn model_files(dir: &Path) -> crate::Result<(Vec<u8>, Vec<u8>)> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| crate::Error::File { path, source })
    };
    Ok((read("model.json")?, read("model.safetensors")?))
}
