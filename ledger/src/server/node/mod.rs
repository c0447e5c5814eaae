//! `hsn-ledger node`: everything a super node runs for its network's chain, in one process
//! (one container): the replica (ABCI application and the ledger's gRPC API) and the
//! CometBFT node beside it as a child process, whose home it writes from the network's
//! genesis, the super node's key and the peers file ([`home`]), each read from the mounted
//! ConfigMap or the pod's agent's fresher copy ([`relay`]), and never begins a second
//! chain where the network's has history ([`history`]); it also delivers the
//! registry changes the administrator publishes ([`registry`]). The replica starts first
//! and CometBFT stops first (CometBFT must not outlive its application, nor start without
//! it); when either ends on its own the node stops the other and exits non-zero, so
//! Kubernetes restarts both together.

mod history;
mod home;
mod peers;
mod registry;
mod relay;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

use super::{ReplicaArgs, ServerError};
use hsn_ledger_api::genesis::node_id;
use hsn_ledger_api::keys::{self, NodeKey};

pub use peers::Peer;
use relay::Copies;

/// How long CometBFT gets to stop after SIGTERM before it is killed.
const COMETBFT_STOP: Duration = Duration::from_secs(10);

/// How long the replica gets to drain its connections once told to stop; a node that must
/// restart never waits on a client that does not hang up.
const REPLICA_STOP: Duration = Duration::from_secs(8);

/// `hsn-ledger node` flags: the replica's, and CometBFT's home, binary and P2P addresses.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The replica.
    #[command(flatten)]
    pub replica: ReplicaArgs,
    /// CometBFT's home (configuration and chain data); made with `cometbft init` when
    /// missing. Its genesis, keys and the settings `hsn-ledger node` owns in `config.toml`
    /// are rewritten at every start; its data never.
    #[arg(long, env = "HSN_LEDGER_COMETBFT_HOME")]
    pub cometbft_home: PathBuf,
    /// The `cometbft` binary (v0.38).
    #[arg(long, env = "HSN_LEDGER_COMETBFT", default_value = "cometbft")]
    pub cometbft: PathBuf,
    /// Where CometBFT listens for the other validators.
    #[arg(long, env = "HSN_LEDGER_P2P_LISTEN", default_value_t = SocketAddr::from(([0, 0, 0, 0], hsn_core::ports::COMETBFT_P2P)))]
    pub p2p_listen: SocketAddr,
    /// The address the other validators reach this one at, when not the listener's (e.g.
    /// the node's address and the P2P port).
    #[arg(long, env = "HSN_LEDGER_P2P_EXTERNAL")]
    pub p2p_external: Option<SocketAddr>,
    /// The other validators, one `<node id>@<host>:<port>` a line (its own line is
    /// skipped); read at start and every 2 s, new or moved peers dialled.
    #[arg(long, env = "HSN_LEDGER_PEERS_FILE")]
    pub peers_file: Option<PathBuf>,
    /// A directory where the pod's agent copies the ledger ConfigMap's `genesis.json`,
    /// `peers` and `history` as soon as they change (the kubelet's mount lags by up to a
    /// minute): each is read from here or from `--genesis` / `--peers-file` /
    /// `--history-file`, whichever was written last, and a node without a genesis in either
    /// waits for one.
    #[arg(long, env = "HSN_LEDGER_RELAYED_CONFIG")]
    pub relayed_config: Option<PathBuf>,
    /// A file the operator writes once the network's chain has committed a block: a node
    /// with it, a CometBFT home that never signed a block and no peer to sync from does not
    /// start (it would begin a second chain from the genesis) and waits, saying why.
    #[arg(long, env = "HSN_LEDGER_HISTORY_FILE")]
    pub history_file: Option<PathBuf>,
    /// A signed registry change (one `LedgerTx`, hex) the administrator published; read
    /// every 2 s, a new one submitted to the chain.
    #[arg(long, env = "HSN_LEDGER_REGISTRY_FILE")]
    pub registry_file: Option<PathBuf>,
    /// CometBFT's Prometheus metrics on this address.
    #[arg(long, env = "HSN_LEDGER_COMETBFT_METRICS")]
    pub cometbft_metrics: Option<SocketAddr>,
}

/// Runs the replica and its CometBFT node until `shutdown` completes (then CometBFT is
/// stopped before the replica) or one of them ends on its own (an error).
pub async fn run_node(
    args: NodeArgs,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut config = args.replica.config();
    let relay = args.relayed_config.as_deref();
    let genesis = Copies::new(config.genesis.clone(), relay);
    config.genesis = tokio::select! {
        path = genesis.wait() => path,
        () = &mut shutdown => return Ok(()),
    };
    let key = keys::read_signing_key(&config.key_file)?;
    let own_id = node_id(&NodeKey::of(&key));
    let peer_copies = args.peers_file.clone().map(|p| Copies::new(p, relay));
    let read_peers = || match &peer_copies {
        Some(copies) => peers::read(copies, &own_id).map_err(ServerError::Replica),
        None => Ok(Vec::new()),
    };
    let mut known = read_peers()?;
    if let Some(path) = args.history_file.clone() {
        let history = Copies::new(path, relay);
        let mut said = false;
        while let Some(why) = history::refusal(&history, &args.cometbft_home, &known) {
            if !said {
                tracing::error!(%why, "not starting");
                said = true;
            }
            tokio::select! {
                () = tokio::time::sleep(history::HISTORY_POLL) => {}
                () = &mut shutdown => return Ok(()),
            }
            known = read_peers()?;
        }
        if said {
            tracing::info!(
                peers = known.len(),
                "starting: a peer to sync from is listed"
            );
        }
    }
    let home = home::prepare(&home::HomeSpec {
        home: &args.cometbft_home,
        cometbft: &args.cometbft,
        genesis: &config.genesis,
        key: &key,
        abci: config.abci_listen,
        rpc: config.cometbft_rpc,
        p2p: args.p2p_listen,
        external: args.p2p_external,
        peers: &known,
        metrics: args.cometbft_metrics,
    })?;
    tracing::info!(node_id = %own_id, home = %home.display(), peers = known.len(), "CometBFT home ready");

    let (stop_replica, replica_stop) = oneshot::channel::<()>();
    let (bound_tx, bound) = oneshot::channel();
    let rpc = config.cometbft_rpc;
    let mut replica = tokio::spawn(super::replica::serve_replica(
        config,
        async move {
            let _ = replica_stop.await;
        },
        Some(bound_tx),
    ));
    // CometBFT retries its application every 3 s: start it once ABCI is listening.
    tokio::select! {
        ready = bound => if ready.is_err() {
            return finish_replica(replica.await);
        },
        done = &mut replica => return finish_replica(done).and(Err(ServerError::Replica(
            "the replica stopped before it served".into(),
        ))),
    }
    let mut cometbft = spawn_cometbft(&args.cometbft, &home)?;
    tracing::info!(pid = cometbft.id(), "CometBFT started");
    let (stop_tx, stop_rx) = watch::channel(false);
    if let Some(copies) = peer_copies {
        tokio::spawn(peers::follow(copies, own_id, rpc, known, stop_rx.clone()));
    }
    if let Some(path) = args.registry_file.clone() {
        tokio::spawn(registry::follow(path, rpc, stop_rx));
    }
    let outcome = tokio::select! {
        () = shutdown => Ok(()),
        status = cometbft.wait() => Err(ServerError::Replica(match status {
            Ok(s) => format!("CometBFT exited ({s})"),
            Err(e) => format!("CometBFT: {e}"),
        })),
        done = &mut replica => {
            stop_cometbft(&mut cometbft).await;
            let _ = stop_tx.send(true);
            return finish_replica(done).and(Err(ServerError::Replica(
                "the replica stopped on its own".into(),
            )));
        }
    };
    if let Err(why) = &outcome {
        tracing::error!(%why, "stopping the replica");
    }
    let _ = stop_tx.send(true);
    stop_cometbft(&mut cometbft).await;
    let _ = stop_replica.send(());
    let replica_outcome = match tokio::time::timeout(REPLICA_STOP, &mut replica).await {
        Ok(done) => {
            tracing::info!("replica stopped");
            finish_replica(done)
        }
        Err(_) => {
            tracing::warn!(wait = ?REPLICA_STOP, "the replica did not stop in time; leaving it");
            replica.abort();
            Err(ServerError::Replica(format!(
                "the replica did not stop within {REPLICA_STOP:?}"
            )))
        }
    };
    outcome.and(replica_outcome)
}

fn finish_replica(
    done: Result<Result<(), ServerError>, tokio::task::JoinError>,
) -> Result<(), ServerError> {
    done.map_err(|e| ServerError::Replica(format!("replica task: {e}")))?
}

/// `cometbft start`, its output on ours, killed when this process dies (its parent-death
/// signal; the spawning thread is a runtime thread, alive as long as the process).
#[allow(unsafe_code)]
fn spawn_cometbft(binary: &std::path::Path, home: &std::path::Path) -> Result<Child, ServerError> {
    let mut command = Command::new(binary);
    command
        .arg("start")
        .arg("--home")
        .arg(home)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    command
        .spawn()
        .map_err(|source| super::io(&format!("start {}", binary.display()), source))
}

/// SIGTERM, then SIGKILL after [`COMETBFT_STOP`].
async fn stop_cometbft(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    match tokio::time::timeout(COMETBFT_STOP, child.wait()).await {
        Ok(status) => tracing::info!(?status, "CometBFT stopped"),
        Err(_) => {
            tracing::warn!("CometBFT did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}
