//! API keys. With `--api-keys-file`, every EmotionRecognizer call needs an
//! `authorization: Bearer <key>` header matching one line of the file; keys are compared in
//! constant time, never logged, and reloaded on SIGHUP. Health and reflection stay open.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use crate::error::{Error, Result};

#[derive(Debug)]
pub struct ApiKeys {
    path: PathBuf,
    keys: RwLock<Vec<Vec<u8>>>,
}

fn read_keys(path: &Path) -> Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
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
        Ok(Arc::new(Self {
            path: path.to_path_buf(),
            keys: RwLock::new(read_keys(path)?),
        }))
    }

    /// Re-reads the file; on error the old keys stay in force.
    pub fn reload(&self) -> Result<usize> {
        let keys = read_keys(&self.path)?;
        let n = keys.len();
        *self.keys.write().expect("keys lock") = keys;
        Ok(n)
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

/// Reloads the keys whenever the process receives SIGHUP.
pub fn reload_on_sighup(keys: Arc<ApiKeys>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            match keys.reload() {
                Ok(n) => tracing::info!(keys = n, "API keys reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "API keys not reloaded; the previous keys stay in force")
                }
            }
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
        std::fs::remove_file(&path).unwrap();
    }
}
