//! TLS on the gRPC port that follows its files: the certificate, key and client CA are
//! re-read when they change (Kubernetes updates a mounted Secret in place), so certificates
//! rotate without a restart. New connections get the new files; open ones keep theirs. A
//! file that does not load is logged and the previous configuration stays in force.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::error::{Error, Result};

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PEM files TLS is configured from.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates must be signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn read(&self) -> Result<Vec<Vec<u8>>> {
        let mut paths = vec![&self.cert, &self.key];
        paths.extend(&self.client_ca);
        paths
            .into_iter()
            .map(|p| std::fs::read(p).map_err(|e| tls_error(p, e)))
            .collect()
    }
}

fn tls_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("TLS file {}: {e}", path.display()))
}

/// The rustls configuration of the files' contents (HTTP/2 only, as gRPC needs).
fn server_config(files: &TlsFiles, contents: &[Vec<u8>]) -> Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(&contents[0])
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&files.cert, e))?;
    if certs.is_empty() {
        return Err(tls_error(&files.cert, "no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_slice(&contents[1]).map_err(|e| tls_error(&files.key, e))?;
    let builder = ServerConfig::builder();
    let builder = match (&files.client_ca, contents.get(2)) {
        (Some(path), Some(pem)) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(|e| tls_error(path, e))?)
                    .map_err(|e| tls_error(path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder(roots.into())
                .build()
                .map_err(|e| tls_error(path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls_error(&files.key, e))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The current TLS configuration, swapped when the files change.
pub struct ReloadingTls {
    files: TlsFiles,
    current: RwLock<(Vec<Vec<u8>>, Arc<ServerConfig>)>,
}

impl ReloadingTls {
    pub fn load(files: TlsFiles) -> Result<Arc<Self>> {
        let contents = files.read()?;
        let config = server_config(&files, &contents)?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new((contents, config)),
        }))
    }

    fn config(&self) -> Arc<ServerConfig> {
        self.current.read().expect("tls lock").1.clone()
    }

    /// Reloads if any file's bytes changed; `None` if none did. On error the previous
    /// configuration stays.
    pub fn reload_if_changed(&self) -> Option<Result<()>> {
        let contents = match self.files.read() {
            Ok(c) if c == self.current.read().expect("tls lock").0 => return None,
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        Some(server_config(&self.files, &contents).map(|config| {
            *self.current.write().expect("tls lock") = (contents, config);
        }))
    }

    /// Polls the files in the background.
    pub fn watch(self: &Arc<Self>) {
        let tls = self.clone();
        super::auth::poll_changes(
            move || tls.reload_if_changed(),
            |result| match result {
                Ok(()) => tracing::info!("TLS certificate, key and client CA reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS files not reloaded; the previous ones stay in force")
                }
            },
            "TLS files unusable",
        );
    }
}

/// A connection of the gRPC port: plaintext, or TLS over TCP.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Accepted connections, TLS-handshaken with the configuration current at their arrival
/// when `tls` is set. Handshakes run beside the accept loop, so a slow client holds up
/// nobody, and each has `HANDSHAKE_TIMEOUT`.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<ReloadingTls>>,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<Conn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let Some(tls) = &tls else {
                if tx.send(Ok(Conn::Plain(tcp))).await.is_err() {
                    return;
                }
                continue;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(Conn::Tls(Box::new(stream)))).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            Conn::Plain(tcp) => tcp.connect_info(),
            Conn::Tls(tls) => tls.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
