//! The `hsn-ledger` server: opens the store, loads the super node's key and the key
//! registry, serves gRPC (optionally mTLS), seals epochs as their grace periods end and
//! exposes `/metrics`.

mod args;
mod limit;
mod node;
mod owner;
mod replica;
mod tls;

pub use args::{Cli, Command, ServeArgs, TlsArgs};
pub use node::{NodeArgs, Peer, run_node};
pub use replica::{ReplicaArgs, ReplicaConfig, run_replica};

use hsn_runtime::admin::{self, Readiness};
use hsn_runtime::signals::Hangups;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::clock::SystemClock;
use crate::ledger::{Ledger, LedgerConfig, OpenError};
use crate::metrics::{Metrics, ReasonLabels};
use crate::service::LedgerService;
use crate::store::Store;
use hsn_ledger_api::keys::{self, KeyError, KeyRegistry};
use hsn_ledger_api::pb::ledger_server::LedgerServer;
use hsn_ledger_api::refusal::Reason;

/// Certificate files for TLS; with a client CA, clients must present a certificate it
/// signed (mTLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Server certificate chain, PEM.
    pub cert: PathBuf,
    /// Server private key, PEM.
    pub key: PathBuf,
    /// CA of client certificates, PEM.
    pub client_ca: Option<PathBuf>,
}

/// Everything the server needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// gRPC address.
    pub listen: SocketAddr,
    /// The redb file.
    pub db: PathBuf,
    /// The super node's signing key (hex seed).
    pub key_file: PathBuf,
    /// The key registry (JSON); re-read on SIGHUP.
    pub registry_file: PathBuf,
    /// Ledger settings.
    pub ledger: LedgerConfig,
    /// Largest request accepted, in bytes.
    pub max_request_bytes: usize,
    /// TLS, if any.
    pub tls: Option<TlsFiles>,
    /// `/metrics` address, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// How often to look for epochs to seal.
    pub seal_interval: Duration,
    /// Whether `SealEpochs` may seal an ended epoch before its grace period is over (anyone
    /// who reaches the service can then cut the grace short); otherwise it seals only what
    /// is due.
    pub allow_early_seal: bool,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Key or registry file.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Store or ledger.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// An address could not be bound, or a TLS file read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A replica's genesis or replicated state.
    #[error("replica: {0}")]
    Replica(String),
    /// gRPC transport (TLS setup, serving).
    #[error("grpc: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Runs the server until `shutdown` completes. Prints `hsn-ledger metrics on <addr>` and
/// then `hsn-ledger listening on <addr>` on stdout once the ports are bound (tests and
/// scripts read them when the port is 0).
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let key = keys::read_signing_key(&config.key_file)?;
    let registry = KeyRegistry::load(&config.registry_file)?;
    let store = Store::open(&config.db).map_err(OpenError::from)?;
    let clock = Arc::new(SystemClock);
    let ledger = Arc::new(Ledger::open(
        config.ledger.clone(),
        store,
        key,
        registry,
        clock,
    )?);
    let mut prometheus = Registry::default();
    let metrics = Metrics::register(&mut prometheus);
    // The chain a restart reopens is as high as it was.
    metrics.set_height(ledger.status().map_err(OpenError::from)?.blocks);
    let (stop_tx, stop_rx) = watch::channel(false);

    let listener = bind(config.listen, "gRPC").await?;
    let addr = listener
        .local_addr()
        .map_err(|source| io("gRPC address", source))?;
    if let Some(at) = config.metrics_listen {
        start_metrics(at, prometheus, stop_rx.clone()).await?;
    }
    tokio::spawn(seal_loop(
        ledger.clone(),
        metrics.clone(),
        config.seal_interval,
        stop_rx.clone(),
    ));
    tokio::spawn(reload_on_hangup(
        ledger.clone(),
        config.registry_file.clone(),
        stop_rx.clone(),
    ));

    let service = LedgerService::new(ledger.clone(), metrics.clone(), stop_rx)
        .allow_early_seal(config.allow_early_seal);
    tracing::info!(%addr, network = %config.ledger.network, signer = %ledger.public_key(), "serving");
    let grpc = Grpc {
        listener,
        tls: config.tls.as_ref(),
        max_request_bytes: config.max_request_bytes,
        max_items: config.ledger.max_batch_items,
    };
    serve_grpc(grpc, service, metrics, shutdown, stop_tx).await
}

/// Where and how the gRPC service listens.
struct Grpc<'a> {
    listener: TcpListener,
    tls: Option<&'a TlsFiles>,
    max_request_bytes: usize,
    /// Most records plus observations in one `SubmitRecords`.
    max_items: usize,
}

/// Serves `service` until `shutdown`, then tells the server's tasks through `stop`.
async fn serve_grpc(
    grpc: Grpc<'_>,
    service: LedgerService,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
    stop: watch::Sender<bool>,
) -> Result<(), ServerError> {
    let addr = grpc
        .listener
        .local_addr()
        .map_err(|source| io("gRPC address", source))?;
    let service = LedgerServer::new(service)
        .max_decoding_message_size(grpc.max_request_bytes)
        .max_encoding_message_size(usize::MAX);
    let builder = Server::builder();
    let limit = limit::ItemLimitLayer {
        max_items: grpc.max_items,
        max_request_bytes: grpc.max_request_bytes,
        metrics: metrics.clone(),
    };
    let router = builder
        .layer(tower::util::MapResponseLayer::new(move |r| {
            count_transport_refusals(&metrics, r)
        }))
        .layer(limit)
        .add_service(service);
    println!("hsn-ledger listening on {addr}");
    let stopping = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    match grpc.tls {
        Some(files) => {
            let incoming = tls::incoming(grpc.listener, files)?;
            router
                .serve_with_incoming_shutdown(incoming, stopping)
                .await?;
        }
        None => {
            let incoming = TcpIncoming::from(grpc.listener).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, stopping)
                .await?;
        }
    }
    Ok(())
}

/// Serves `/metrics` on `at` until `stop`; prints `hsn-ledger metrics on <addr>`.
async fn start_metrics(
    at: SocketAddr,
    prometheus: Registry,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let stopped = async move {
        let _ = stop.wait_for(|&s| s).await;
    };
    let (bound, server) = admin::serve(at, Arc::new(prometheus), Readiness::always(), stopped)
        .await
        .map_err(|source| io(&format!("bind metrics {at}"), source))?;
    println!("hsn-ledger metrics on {bound}");
    tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "metrics server failed");
        }
    });
    Ok(())
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| io(&format!("bind {what} {addr}"), source))
}

fn io(what: &str, source: std::io::Error) -> ServerError {
    ServerError::Io {
        what: what.to_owned(),
        source,
    }
}

/// What the transport refuses before any handler runs, counted with the other refusals:
/// requests over the size limit (`OUT_OF_RANGE`, `too_large`), and requests that do not
/// decode, which tonic answers `INTERNAL` and which are the client's fault: answered
/// `INVALID_ARGUMENT` with the reason `malformed`, as a malformed item is.
fn count_transport_refusals<B>(
    metrics: &Metrics,
    mut response: http::Response<B>,
) -> http::Response<B> {
    let status = |code: tonic::Code| (code as i32).to_string();
    let headers = response.headers_mut();
    let code = headers.get("grpc-status").map(|v| v.as_bytes().to_vec());
    let undecodable = headers.get("grpc-message").is_some_and(|m| {
        m.as_bytes()
            .starts_with(b"failed%20to%20decode%20Protobuf%20message")
    });
    let reason = match code {
        Some(c) if c == status(tonic::Code::OutOfRange).as_bytes() => Reason::TooLarge,
        Some(c) if c == status(tonic::Code::Internal).as_bytes() && undecodable => {
            let invalid = status(tonic::Code::InvalidArgument);
            if let Ok(v) = http::HeaderValue::from_str(&invalid) {
                headers.insert("grpc-status", v);
            }
            headers.insert(
                hsn_ledger_api::refusal::REASON_METADATA,
                http::HeaderValue::from_static("malformed"),
            );
            Reason::Malformed
        }
        _ => return response,
    };
    metrics
        .refused
        .get_or_create(&ReasonLabels {
            reason: reason.label(),
        })
        .inc();
    response
}

/// Seals due epochs now and then; a failure is logged and retried on the next tick.
async fn seal_loop(
    ledger: Arc<Ledger>,
    metrics: Metrics,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        let l = ledger.clone();
        match tokio::task::spawn_blocking(move || l.seal_due()).await {
            Ok(Ok(headers)) => {
                metrics.sealed(&headers);
                if let Some(last) = headers.last() {
                    tracing::info!(
                        height = last.header.height + 1,
                        blocks = headers.len(),
                        "sealed"
                    );
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "sealing failed"),
            Err(e) => tracing::error!(error = %e, "sealing task failed"),
        }
    }
}

/// Re-reads the key registry on SIGHUP; a bad file is logged and the old registry kept.
async fn reload_on_hangup(ledger: Arc<Ledger>, path: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut hangups = Hangups::new();
    loop {
        tokio::select! {
            () = hangups.recv() => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        match KeyRegistry::load(&path) {
            Ok(registry) => {
                tracing::info!(keys = registry.len(), "key registry reloaded");
                ledger.set_registry(registry);
            }
            Err(e) => tracing::error!(error = %e, "key registry not reloaded"),
        }
    }
}
