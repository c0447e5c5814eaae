//! `hsn-ledger replica`: one super node's replica of its network's ledger, the ABCI
//! application of the CometBFT node beside it. Serves ABCI (gRPC) to CometBFT, the ledger's
//! gRPC API to agents and auditors (submissions go through CometBFT), and `/metrics`.
//! Start it before CometBFT and stop CometBFT first; when the ABCI service fails it exits,
//! as CometBFT does when the application fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::{Grpc, ServerError, TlsArgs, TlsFiles, bind, io, serve_grpc, start_metrics};
use crate::ledger::OpenError;
use crate::metrics::Metrics;
use crate::replica::abci::{self, DEFAULT_ABCI_LISTEN};
use crate::replica::forward::{DEFAULT_COMMIT_TIMEOUT, Forwarder};
use crate::replica::{AppState, Replica};
use crate::service::LedgerService;
use crate::store::Store;
use hsn_ledger_api::keys;

/// `hsn-ledger replica` flags.
#[derive(Debug, Args)]
pub struct ReplicaArgs {
    /// The store file (redb); created when missing.
    #[arg(long, env = "HSN_LEDGER_DB")]
    pub db: PathBuf,
    /// The super node's signing key (hex seed), also its CometBFT validator key
    /// (`hsn-ledger validator-key` writes CometBFT's file from it).
    #[arg(long, env = "HSN_LEDGER_KEY_FILE")]
    pub key_file: PathBuf,
    /// CometBFT's genesis.json; its `app_state` holds the network's ledger settings and
    /// first registry.
    #[arg(long, env = "HSN_LEDGER_GENESIS")]
    pub genesis: PathBuf,
    /// Where ABCI listens (CometBFT's `proxy_app`, with `abci = "grpc"`).
    #[arg(long, env = "HSN_LEDGER_ABCI_LISTEN", default_value_t = DEFAULT_ABCI_LISTEN)]
    pub abci_listen: SocketAddr,
    /// The RPC address of this super node's CometBFT node.
    #[arg(long, env = "HSN_LEDGER_COMETBFT_RPC", default_value_t = SocketAddr::from(([127, 0, 0, 1], hsn_core::ports::COMETBFT_RPC)))]
    pub cometbft_rpc: SocketAddr,
    /// The ledger's gRPC address; keep it on loopback unless TLS is on.
    #[arg(long, env = "HSN_LEDGER_LISTEN", default_value_t = SocketAddr::from(([127, 0, 0, 1], hsn_core::ports::LEDGER)))]
    pub listen: SocketAddr,
    /// How long a submission waits for its block to commit before answering UNAVAILABLE.
    #[arg(long, default_value_t = DEFAULT_COMMIT_TIMEOUT.as_millis() as u64)]
    pub commit_timeout_ms: u64,
    /// Largest request in bytes; larger ones are refused with OUT_OF_RANGE.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_request_bytes: usize,
    /// Serve Prometheus metrics on this address at /metrics.
    #[arg(long, env = "HSN_LEDGER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// TLS certificates of the ledger's gRPC API.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Everything a replica needs.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// The store file.
    pub db: PathBuf,
    /// The super node's key file.
    pub key_file: PathBuf,
    /// CometBFT's genesis.json.
    pub genesis: PathBuf,
    /// ABCI address.
    pub abci_listen: SocketAddr,
    /// CometBFT's RPC address.
    pub cometbft_rpc: SocketAddr,
    /// gRPC address.
    pub listen: SocketAddr,
    /// How long a submission waits for its commit.
    pub commit_timeout: Duration,
    /// Largest request accepted, in bytes.
    pub max_request_bytes: usize,
    /// `/metrics` address, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// TLS of the gRPC API, if any.
    pub tls: Option<TlsFiles>,
}

impl ReplicaArgs {
    /// The configuration these flags describe.
    pub fn config(&self) -> ReplicaConfig {
        ReplicaConfig {
            db: self.db.clone(),
            key_file: self.key_file.clone(),
            genesis: self.genesis.clone(),
            abci_listen: self.abci_listen,
            cometbft_rpc: self.cometbft_rpc,
            listen: self.listen,
            commit_timeout: Duration::from_millis(self.commit_timeout_ms.max(1)),
            max_request_bytes: self.max_request_bytes,
            metrics_listen: self.metrics_listen,
            tls: self.tls.files(),
        }
    }
}

/// Runs a replica until `shutdown` completes or its ABCI service fails. Prints `hsn-ledger
/// abci on <addr>`, then `hsn-ledger listening on <addr>` once its ports are bound.
pub async fn run_replica(
    config: ReplicaConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    serve_replica(config, shutdown, None).await
}

/// [`run_replica`], telling `bound` once its ports are bound.
pub(super) async fn serve_replica(
    config: ReplicaConfig,
    shutdown: impl Future<Output = ()>,
    bound: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), ServerError> {
    let key = keys::read_signing_key(&config.key_file)?;
    let genesis = AppState::from_genesis_file(&config.genesis)
        .map_err(|e| ServerError::Replica(e.to_string()))?;
    let store = Store::open(&config.db).map_err(OpenError::from)?;
    let replica =
        Replica::open(store, genesis, key).map_err(|e| ServerError::Replica(e.to_string()))?;
    let replica = Arc::new(replica);
    let mut prometheus = Registry::default();
    let metrics = Metrics::register(&mut prometheus);
    let ledger = replica.ledger().clone();
    metrics.set_height(ledger.status().map_err(OpenError::from)?.blocks);
    let (stop_tx, stop_rx) = watch::channel(false);

    let abci_listener = bind(config.abci_listen, "ABCI").await?;
    let abci_addr = abci_listener
        .local_addr()
        .map_err(|source| io("ABCI address", source))?;
    let listener = bind(config.listen, "gRPC").await?;
    if let Some(at) = config.metrics_listen {
        start_metrics(at, prometheus, stop_rx.clone()).await?;
    }
    tokio::spawn(follow_height(
        ledger.clone(),
        metrics.clone(),
        stop_rx.clone(),
    ));
    let mut abci_stop = stop_rx.clone();
    let abci = tokio::spawn(abci::serve(replica.clone(), abci_listener, async move {
        let _ = abci_stop.wait_for(|&s| s).await;
    }));
    println!("hsn-ledger abci on {abci_addr}");
    if let Some(bound) = bound {
        let _ = bound.send(());
    }
    tracing::info!(
        network = %replica.genesis().network,
        key = %replica.public_key(),
        abci = %abci_addr,
        cometbft = %config.cometbft_rpc,
        "replica serving"
    );
    let forwarder = Forwarder::new(replica.clone(), config.cometbft_rpc, config.commit_timeout);
    let service = LedgerService::replicated(ledger, forwarder, metrics.clone(), stop_rx);
    let grpc = Grpc {
        listener,
        tls: config.tls.as_ref(),
        max_request_bytes: config.max_request_bytes,
        max_items: replica.genesis().max_batch_items,
    };
    let failed = std::sync::OnceLock::new();
    let abci_failed = async {
        let why = match abci.await {
            Ok(Ok(())) => "a call failed that the replica cannot go on from".to_owned(),
            Ok(Err(e)) => format!("ABCI service failed: {e}"),
            Err(e) => format!("ABCI task failed: {e}"),
        };
        tracing::error!(%why, "stopping");
        let _ = failed.set(why);
    };
    let stopping = async {
        tokio::select! {
            () = shutdown => {}
            () = abci_failed => {}
        }
    };
    serve_grpc(grpc, service, metrics, stopping, stop_tx).await?;
    match failed.into_inner() {
        Some(why) => Err(ServerError::Replica(why)),
        None => Ok(()),
    }
}

/// Keeps the height gauge at the chain's height as blocks commit.
async fn follow_height(
    ledger: Arc<crate::ledger::Ledger>,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut blocks = ledger.subscribe();
    loop {
        metrics.set_height(*blocks.borrow_and_update());
        tokio::select! {
            changed = blocks.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|&s| s) => return,
        }
    }
}
