//! Connecting to a ledger over gRPC, with optional (m)TLS, and the reads every chain
//! reader makes.

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::pb::{self, ledger_client::LedgerClient};

/// Largest response a client accepts: a full block of 100 000 entries fits.
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// TLS settings of a client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// CA that signed the server's certificate, PEM.
    pub ca: PathBuf,
    /// Client certificate and key, PEM, for mTLS.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Name to check the server certificate against, when not the address's host.
    pub domain: Option<String>,
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Bad address, TLS settings, or no answer.
    #[error("{addr}: {source}")]
    Transport {
        /// The address.
        addr: String,
        /// What failed.
        source: tonic::transport::Error,
    },
    /// A TLS file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// Connects to the ledger at `addr` (`http://host:port`, or `https://` with `tls`).
pub async fn connect(
    addr: &str,
    tls: Option<&ClientTls>,
) -> Result<LedgerClient<Channel>, ConnectError> {
    let transport = |source| ConnectError::Transport {
        addr: addr.to_owned(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(addr.to_owned())
        .map_err(transport)?
        .connect_timeout(Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(client_tls(tls)?).map_err(transport)?;
    }
    let channel = endpoint.connect().await.map_err(transport)?;
    Ok(LedgerClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES))
}

/// Number of blocks the ledger says its chain has.
pub async fn height(client: &mut LedgerClient<Channel>) -> Result<u64, tonic::Status> {
    let status = client.status(pb::StatusRequest {}).await?;
    Ok(status.into_inner().height)
}

/// Block `height`, with or without its entries, as the ledger sends it.
pub async fn block(
    client: &mut LedgerClient<Channel>,
    height: u64,
    include_entries: bool,
) -> Result<Option<pb::Block>, tonic::Status> {
    let request = pb::GetBlockRequest {
        height,
        include_entries,
    };
    Ok(client.get_block(request).await?.into_inner().block)
}

fn client_tls(tls: &ClientTls) -> Result<ClientTlsConfig, ConnectError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| ConnectError::Read {
            path: path.clone(),
            source,
        })
    };
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&tls.ca)?));
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    if let Some(domain) = &tls.domain {
        config = config.domain_name(domain.clone());
    }
    Ok(config)
}
