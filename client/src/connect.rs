//! How the client reaches a server: address, TLS (server verification, optional client
//! certificate for mutual TLS) and an API key sent as `authorization: Bearer`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use sentio::proto::emotion_recognizer_client::EmotionRecognizerClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

#[derive(Args, Clone, Debug)]
pub(crate) struct ConnectArgs {
    /// Server address; https:// turns TLS on.
    #[arg(
        long,
        global = true,
        env = "SENTIO_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub addr: String,
    /// PEM CA bundle to verify the server with (default: the system's roots).
    #[arg(long, global = true, env = "SENTIO_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate, for servers that require mutual TLS (with --tls-key).
    #[arg(long, global = true, env = "SENTIO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, global = true, env = "SENTIO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Name to verify in the server's certificate, when it differs from the address's host.
    #[arg(long, global = true, env = "SENTIO_TLS_DOMAIN")]
    pub tls_domain: Option<String>,
    /// API key, sent as `authorization: Bearer <key>`.
    #[arg(long, global = true, env = "SENTIO_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// Adds the bearer key, when there is one, to every call.
#[derive(Clone)]
pub(crate) struct BearerKey(Option<AsciiMetadataValue>);

impl Interceptor for BearerKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub(crate) type Client = EmotionRecognizerClient<InterceptedService<Channel, BearerKey>>;

impl ConnectArgs {
    fn tls(&self) -> anyhow::Result<Option<ClientTlsConfig>> {
        let wants_tls =
            self.addr.starts_with("https://") || self.tls_ca.is_some() || self.tls_cert.is_some();
        if !wants_tls {
            return Ok(None);
        }
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let mut tls = match &self.tls_ca {
            Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        if let Some(domain) = &self.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        Ok(Some(tls))
    }

    /// One HTTP/2 connection to the server.
    pub(crate) async fn connect(&self) -> anyhow::Result<Client> {
        let mut endpoint = Channel::from_shared(self.addr.clone())?;
        if let Some(tls) = self.tls()? {
            endpoint = endpoint.tls_config(tls)?;
        }
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        let key = match &self.api_key {
            Some(key) => Some(
                MetadataValue::try_from(format!("Bearer {key}"))
                    .context("the API key must be printable ASCII")?,
            ),
            None => None,
        };
        Ok(
            EmotionRecognizerClient::with_interceptor(channel, BearerKey(key))
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
        )
    }
}
