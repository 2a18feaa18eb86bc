//! API keys. With `--api-keys-file`, every EmotionRecognizer call needs an
//! `authorization: Bearer <key>` header matching one line of the file; keys are compared in
//! constant time, never logged, and reloaded when the file changes (checked every
//! [`POLL_INTERVAL`], so a Kubernetes Secret update needs no restart) or on SIGHUP; a file
//! that no longer parses is logged and the previous keys stay. Health and reflection stay
//! open.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use crate::error::{Error, Result};

/// How often the keys file is checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct ApiKeys {
    path: PathBuf,
    keys: RwLock<Vec<Vec<u8>>>,
    /// The file's bytes when last read, to reload (and log) only on a change.
    last_read: Mutex<Vec<u8>>,
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_keys(path: &Path, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let text = String::from_utf8_lossy(bytes);
    let keys: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if keys.is_empty() {
        return Err(Error::Config(format!(
            "API keys file {} holds no key",
            path.display()
        )));
    }
    Ok(keys)
}

impl ApiKeys {
    pub fn load(path: &Path) -> Result<Arc<Self>> {
        let bytes = read_file(path)?;
        Ok(Arc::new(Self {
            path: path.to_path_buf(),
            keys: RwLock::new(parse_keys(path, &bytes)?),
            last_read: Mutex::new(bytes),
        }))
    }

    /// Re-reads the file; on error the old keys stay in force.
    pub fn reload(&self) -> Result<usize> {
        let bytes = read_file(&self.path)?;
        *self.last_read.lock().expect("keys file lock") = bytes.clone();
        let keys = parse_keys(&self.path, &bytes)?;
        let n = keys.len();
        *self.keys.write().expect("keys lock") = keys;
        Ok(n)
    }

    /// Reloads if the file's bytes changed since it was last read; `None` if they did not.
    pub fn reload_if_changed(&self) -> Option<Result<usize>> {
        match read_file(&self.path) {
            Ok(bytes) if bytes == *self.last_read.lock().expect("keys file lock") => None,
            Ok(_) => Some(self.reload()),
            Err(e) => Some(Err(e)),
        }
    }

    /// Accepts a request whose bearer token is one of the keys.
    pub fn check<T>(&self, request: &Request<T>) -> std::result::Result<(), Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(token) = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
        else {
            return Err(Status::unauthenticated(
                "missing `authorization: Bearer <API key>` metadata",
            ));
        };
        self.check_token(token)
    }

    /// Accepts a token that is one of the keys (the telephony connector's, from its URL or
    /// its `start` message).
    pub fn check_token(&self, token: &str) -> std::result::Result<(), Status> {
        let keys = self.keys.read().expect("keys lock");
        // Compare against every key, whatever matches, so timing says nothing about keys.
        let matched = keys.iter().fold(0u8, |acc, key| {
            acc | key.as_slice().ct_eq(token.trim().as_bytes()).unwrap_u8()
        });
        if matched == 1 {
            Ok(())
        } else {
            Err(Status::unauthenticated("invalid API key"))
        }
    }
}

fn log_reload(result: Result<usize>, why: &str) {
    match result {
        Ok(n) => tracing::info!(keys = n, why, "API keys reloaded"),
        Err(e) => {
            tracing::error!(error = %e, why, "API keys not reloaded; the previous keys stay in force")
        }
    }
}

/// Every [`POLL_INTERVAL`], runs `reload_if_changed` (`None`: nothing changed) and hands each
/// outcome to `log`; a failure repeated tick after tick (a Secret being replaced) is logged
/// once, then at debug level as `unusable`. Shared by the API keys and TLS files.
pub(crate) fn poll_changes<T: Send + 'static>(
    reload_if_changed: impl Fn() -> Option<Result<T>> + Send + 'static,
    log: impl Fn(Result<T>) + Send + 'static,
    unusable: &'static str,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticks.tick().await;
            match reload_if_changed() {
                None => failing = false,
                Some(Err(e)) if failing => tracing::debug!(error = %e, "{unusable}"),
                Some(result) => {
                    failing = result.is_err();
                    log(result);
                }
            }
        }
    });
}

/// Reloads the keys when the file changes and whenever the process receives SIGHUP.
pub fn watch(keys: Arc<ApiKeys>) {
    let polled = keys.clone();
    poll_changes(
        move || polled.reload_if_changed(),
        |result| log_reload(result, "file changed"),
        "API keys file unreadable",
    );
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            log_reload(keys.reload(), "SIGHUP");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_reloaded() {
        let path = std::env::temp_dir().join(format!("sentio-auth-{}.txt", std::process::id()));
        std::fs::write(&path, "alpha\n# comment\n\n beta \n").unwrap();
        let keys = ApiKeys::load(&path).unwrap();
        let with = |token: &str| {
            let mut r = Request::new(());
            r.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            keys.check(&r)
        };
        assert!(with("alpha").is_ok() && with("beta").is_ok());
        assert!(with("alph").is_err() && with("alphaa").is_err() && with("gamma").is_err());
        assert!(keys.check(&Request::new(())).is_err());
        std::fs::write(&path, "gamma\n").unwrap();
        assert_eq!(keys.reload().unwrap(), 1);
        assert!(with("gamma").is_ok() && with("alpha").is_err());
        // A broken file keeps the previous keys.
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(keys.reload().is_err());
        assert!(with("gamma").is_ok());
        // Polling reloads on a change only.
        std::fs::write(&path, "delta\n").unwrap();
        assert_eq!(keys.reload_if_changed().unwrap().unwrap(), 1);
        assert!(keys.reload_if_changed().is_none());
        assert!(with("delta").is_ok() && with("gamma").is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
