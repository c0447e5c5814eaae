//! The ledger client of the agent: ships closed epochs from the spool to a ledger.
//!
//! Each round reads the unsent spool files oldest first, signs their records (edge: records;
//! super: observations of its edges, see [`convert`]), submits each file as `SubmitRecords`
//! batches and, once every batch of the file is acknowledged, renames it to `.sent`. Nothing
//! is deleted here. A crash between the acknowledgement and the rename re-submits the same
//! signed bodies on restart, which the ledger accepts as identical duplicates (ed25519
//! signatures are deterministic, so the re-signed items are byte-identical).
//!
//! Failures: transport errors (no connection, `UNAVAILABLE`, timeouts, …) end the round; a
//! refusal of one file (e.g. `epoch_sealed`, `unknown_key`) leaves that file unsent and moves
//! on to the next. Either way the next round waits an exponential, capped, jittered backoff.

pub mod backoff;
pub mod convert;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use hsn_ledger_api::client::{self, ClientTls, ConnectError};
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb::{self, ledger_client::LedgerClient};
use hsn_ledger_api::refusal::{REASON_METADATA, Reason};
use tokio::sync::watch;
use tonic::Code;
use tonic::transport::Channel;

use crate::index::{Desired, RoleState};
use crate::metrics::{Metrics, ReasonLabels};
use crate::spool::{self, SpoolError, UnsentFile};
use crate::status::AgentStatus;
pub use backoff::Backoff;
pub use convert::{ConvertError, EdgeKeyFlag, EdgeKeys};
use hsn_core::Role;

/// How the shipper runs.
#[derive(Clone, Debug)]
pub struct ShipperConfig {
    /// The HsnNetwork.
    pub network: String,
    /// Edge (records) or super (observations).
    pub role: Role,
    /// The agent's key.
    pub key: SigningKey,
    /// Spool directory.
    pub spool_dir: PathBuf,
    /// `--ledger-endpoint`; without it an edge ships to its super's
    /// `http(s)://<address>:7443`.
    pub endpoint: Option<String>,
    /// `--ledger-ca` and co.: ship over TLS (`https://`), verifying the ledger, with a client
    /// certificate for mTLS. `None`: plain text.
    pub tls: Option<ClientTls>,
    /// Super: edge address → key from `--edge-key`; these win over the routes table's.
    pub edge_keys: EdgeKeys,
    /// Time between rounds when all is well (a closed epoch also starts one).
    pub interval: Duration,
    /// First retry delay.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Deadline of one RPC.
    pub rpc_timeout: Duration,
    /// Most items per `SubmitRecords` (the ledger's `--max-batch-items`).
    pub max_batch_items: usize,
    /// The port of the ledgers whose addresses come from the routes table.
    pub ledger_port: u16,
}

impl ShipperConfig {
    /// Defaults: 5 s rounds, retries from 1 s up to 60 s, 30 s RPC deadline, 10 000 items.
    pub fn new(network: &str, role: Role, key: SigningKey, spool_dir: PathBuf) -> Self {
        Self {
            network: network.to_owned(),
            role,
            key,
            spool_dir,
            endpoint: None,
            tls: None,
            edge_keys: EdgeKeys::default(),
            interval: Duration::from_secs(5),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            rpc_timeout: Duration::from_secs(30),
            max_batch_items: 10_000,
            ledger_port: hsn_core::ports::LEDGER,
        }
    }
}

/// Why a file (or a round) was not shipped. The file stays unsent in every case.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// Listing, reading or renaming spool files.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The file cannot be signed as ours.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// No connection to the ledger.
    #[error("connecting to the ledger: {0} ({cause})", cause = tls::root_cause(.0))]
    Connect(#[from] ConnectError),
    /// The ledger answered with an error.
    #[error("ledger refused epoch {epoch} ({reason}): {status}")]
    Rpc {
        /// The spool epoch (0 for `Status`).
        epoch: u64,
        /// Refusal reason or status code name.
        reason: &'static str,
        /// The status.
        status: Box<tonic::Status>,
    },
    /// No answer within the RPC deadline.
    #[error("ledger call timed out after {0:?}")]
    Timeout(Duration),
    /// The ledger counts epochs of another length; epoch numbers would mean other times.
    #[error("epoch {epoch} is {ours} s long, the ledger's epochs are {ledger} s")]
    EpochLength {
        /// The file's epoch.
        epoch: u64,
        /// The file's epoch seconds.
        ours: u32,
        /// The ledger's.
        ledger: u64,
    },
    /// The ledger serves another network.
    #[error("the ledger serves network {0:?}")]
    LedgerNetwork(String),
    /// Super: records of edges with no known key; the rest was submitted.
    #[error("epoch {epoch}: {count} records of edges without a known key ({first:?}, …)")]
    UnknownEdges {
        /// The file's epoch.
        epoch: u64,
        /// Records left out.
        count: usize,
        /// One unmapped edge address.
        first: Option<IpAddr>,
    },
}

impl ShipError {
    /// Every label [`ShipError::label`] returns.
    pub fn labels() -> Vec<&'static str> {
        let own = [
            "connect",
            "timeout",
            "epoch_length",
            "wrong_network",
            "unknown_edge",
        ];
        let refusals: Vec<&'static str> = Reason::ALL.iter().map(|r| r.label()).collect();
        [
            &own[..],
            &RPC_CODE_LABELS[..],
            &refusals,
            &tls::REASONS,
            SpoolError::LABELS,
            ConvertError::LABELS,
        ]
        .concat()
    }

    /// A short label for `hsn_agent_ledger_submit_errors_total{reason}`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Spool(e) => e.label(),
            Self::Convert(e) => e.label(),
            Self::Connect(e) => tls::reason(e).unwrap_or("connect"),
            Self::Rpc { reason, .. } => reason,
            Self::Timeout(_) => "timeout",
            Self::EpochLength { .. } => "epoch_length",
            Self::LedgerNetwork(_) => "wrong_network",
            Self::UnknownEdges { .. } => "unknown_edge",
        }
    }

    /// The ledger is unreachable or unwell: stop the round, drop the connection.
    fn ends_round(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Timeout(_) | Self::LedgerNetwork(_) => true,
            Self::Spool(e) => !matches!(e, SpoolError::Corrupt { .. }),
            Self::Rpc { status, .. } => matches!(
                status.code(),
                Code::Unavailable
                    | Code::Unknown
                    | Code::Internal
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::Aborted
                    | Code::ResourceExhausted
                    | Code::Unimplemented
            ),
            Self::Convert(_) | Self::EpochLength { .. } | Self::UnknownEdges { .. } => false,
        }
    }
}

/// Labels of RPC failures the ledger gave no refusal reason for, by status code.
const RPC_CODE_LABELS: [&str; 4] = ["unavailable", "deadline", "internal", "rpc_other"];

fn rpc_error(epoch: u64, status: tonic::Status) -> ShipError {
    let named = status
        .metadata()
        .get(REASON_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.parse::<Reason>().ok())
        .map(Reason::label);
    let [unavailable, deadline, internal, other] = RPC_CODE_LABELS;
    let reason = named
        .or_else(|| tls::reason(&status))
        .unwrap_or(match status.code() {
            Code::Unavailable => unavailable,
            Code::DeadlineExceeded => deadline,
            Code::Internal => internal,
            Code::OutOfRange => Reason::TooLarge.label(),
            _ => other,
        });
    ShipError::Rpc {
        epoch,
        reason,
        status: Box::new(status),
    }
}

/// What one round did.
#[derive(Debug, Default)]
pub struct Round {
    /// Epochs acknowledged and renamed to `.sent`, in order.
    pub sent: Vec<u64>,
    /// Items the ledger stored (new information).
    pub stored: u64,
    /// Items the ledger already had, identical (replays).
    pub duplicates: u64,
    /// Failures, per epoch (0: not about one file).
    pub errors: Vec<(u64, ShipError)>,
    /// Unsent files left.
    pub backlog: usize,
}

/// Ships the spool of one agent.
#[derive(Debug)]
pub struct Shipper {
    config: ShipperConfig,
    metrics: Arc<Metrics>,
    conn: Option<(String, LedgerClient<Channel>, u64)>,
    /// Super: edge address → key, as the routes table last listed them.
    learned: EdgeKeys,
    /// Edge: the super it last shipped to.
    last_target: Option<IpAddr>,
    /// Rounds in a row that failed (0 after one that did not).
    failed_rounds: u32,
}

impl Shipper {
    /// A shipper counting into `metrics`.
    pub fn new(config: ShipperConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            config,
            metrics,
            conn: None,
            learned: EdgeKeys::default(),
            last_target: None,
            failed_rounds: 0,
        }
    }

    /// Takes the edge keys a super node's routes table lists (address and key advertised
    /// in each edge's Lease); `--edge-key` flags still win.
    pub fn learn_edge_keys(&mut self, desired: Option<&Desired>) {
        let Some(RoleState::Super { edges, .. }) = desired.map(|d| &d.role) else {
            return;
        };
        self.learned = EdgeKeys(
            edges
                .iter()
                .filter_map(|e| {
                    let bytes = hex::decode(e.public_key.as_deref()?).ok()?;
                    Some((e.address?, NodeKey::from_slice(&bytes).ok()?))
                })
                .collect(),
        );
    }

    fn edge_keys(&self) -> EdgeKeys {
        let mut keys = self.learned.clone();
        keys.0.extend(self.config.edge_keys.0.clone());
        keys
    }

    /// Where to ship now: the override, else (edge) its super's ledger from the routes
    /// table. An edge the table assigns no super with a known address (the plan dropped
    /// it, or its super was lost and it waits to be re-homed) ships to the super it last
    /// shipped to while the table still lists that one, else to the table's first: every
    /// super serves the network's one chain, and the spool must not wait for an assignment
    /// that may never come (a dropped edge's last records).
    ///
    /// A super node ships to its pod's ledger (the override); after a round that failed
    /// there, every other round goes to another super node's ledger of the same chain, in
    /// turn: its own may be restarting, or stopping with the pod while the agent drains.
    pub fn endpoint(&mut self, desired: Option<&Desired>) -> Option<String> {
        if let Some(e) = &self.config.endpoint {
            if let Some(RoleState::Super { peers, .. }) = desired.map(|d| &d.role)
                && !peers.is_empty()
                && self.failed_rounds % 2 == 1
            {
                let turn = (self.failed_rounds / 2) as usize % peers.len();
                return Some(self.ledger_url(peers[turn]));
            }
            return Some(e.clone());
        }
        let Some(RoleState::Edge { target, supers }) = desired.map(|d| &d.role) else {
            return None;
        };
        let address = match target.as_ref().and_then(|t| t.address) {
            Some(address) => address,
            None => self
                .last_target
                .filter(|a| supers.contains(a))
                .or_else(|| supers.first().copied())?,
        };
        self.last_target = Some(address);
        Some(self.ledger_url(address))
    }

    /// The ledger of the super node at `address`.
    fn ledger_url(&self, address: IpAddr) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let addr = SocketAddr::new(address, self.config.ledger_port);
        format!("{scheme}://{addr}")
    }

    /// One pass over the unsent files to `endpoint`.
    pub async fn ship_once(&mut self, endpoint: &str) -> Round {
        let mut round = Round::default();
        let files = match spool::unsent(&self.config.spool_dir) {
            Ok(files) => files,
            Err(e) => {
                round.errors.push((0, e.into()));
                return self.finish(round, 0);
            }
        };
        let mut left = files.len();
        for file in &files {
            match self.ship_file(endpoint, file, &mut round).await {
                Ok(()) => {
                    left -= 1;
                    round.sent.push(file.epoch);
                }
                Err(e) => {
                    let stop = e.ends_round();
                    if stop {
                        self.conn = None;
                    }
                    round.errors.push((file.epoch, e));
                    if stop {
                        break;
                    }
                }
            }
        }
        self.finish(round, left)
    }

    fn finish(&self, mut round: Round, backlog: usize) -> Round {
        round.backlog = backlog;
        let m = &self.metrics;
        m.ledger_backlog
            .set(i64::try_from(backlog).unwrap_or(i64::MAX));
        for (_, e) in &round.errors {
            m.ledger_submit_errors
                .get_or_create(&ReasonLabels { reason: e.label() })
                .inc();
        }
        round
    }

    async fn ship_file(
        &mut self,
        endpoint: &str,
        file: &UnsentFile,
        round: &mut Round,
    ) -> Result<(), ShipError> {
        let content = spool::read_file(&file.path)?;
        let keys = self.edge_keys();
        let c = &self.config;
        let items = convert::items(&content, &c.network, c.role, &c.key, &keys)?;
        if !items.is_empty() {
            let timeout = c.rpc_timeout;
            let batches = items.batches(c.max_batch_items);
            let (mut client, epoch_seconds) = self.client(endpoint).await?;
            if epoch_seconds != u64::from(content.epoch_seconds) {
                return Err(ShipError::EpochLength {
                    epoch: file.epoch,
                    ours: content.epoch_seconds,
                    ledger: epoch_seconds,
                });
            }
            for batch in batches {
                let reply = tokio::time::timeout(timeout, client.submit_records(batch))
                    .await
                    .map_err(|_| ShipError::Timeout(timeout))?
                    .map_err(|s| rpc_error(file.epoch, s))?
                    .into_inner();
                let shipped = u64::from(reply.stored) + u64::from(reply.duplicates);
                self.metrics.ledger_shipped.inc_by(shipped);
                self.metrics
                    .ledger_duplicates
                    .inc_by(u64::from(reply.duplicates));
                round.stored += u64::from(reply.stored);
                round.duplicates += u64::from(reply.duplicates);
            }
        }
        if let Some(first) = items.unmapped.first() {
            return Err(ShipError::UnknownEdges {
                epoch: file.epoch,
                count: items.unmapped.len(),
                first: *first,
            });
        }
        spool::mark_sent(file)?;
        self.metrics.ledger_files_sent.inc();
        Ok(())
    }

    /// The cached connection to `endpoint` (and the ledger's epoch length), or a new one.
    async fn client(&mut self, endpoint: &str) -> Result<(LedgerClient<Channel>, u64), ShipError> {
        if self.conn.as_ref().is_none_or(|(at, _, _)| at != endpoint) {
            let timeout = self.config.rpc_timeout;
            let mut client =
                tokio::time::timeout(timeout, client::connect(endpoint, self.config.tls.as_ref()))
                    .await
                    .map_err(|_| ShipError::Timeout(timeout))??;
            let status = tokio::time::timeout(timeout, client.status(pb::StatusRequest {}))
                .await
                .map_err(|_| ShipError::Timeout(timeout))?
                .map_err(|s| rpc_error(0, s))?
                .into_inner();
            if status.network != self.config.network {
                return Err(ShipError::LedgerNetwork(status.network));
            }
            self.conn = Some((endpoint.to_owned(), client, status.epoch_seconds));
        }
        match &self.conn {
            Some((_, client, seconds)) => Ok((client.clone(), *seconds)),
            None => unreachable!("connected above"),
        }
    }

    /// Ships forever: a round every `interval` or when an epoch closes; after a failed round,
    /// the backoff's delay instead. Without an endpoint it only keeps the backlog gauge.
    pub async fn run(
        mut self,
        desired: watch::Receiver<Option<Arc<Desired>>>,
        mut status: watch::Receiver<AgentStatus>,
    ) {
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let mut endpoint_logged: Option<String> = None;
        loop {
            self.learn_edge_keys(desired.borrow().as_deref());
            let endpoint = self.endpoint(desired.borrow().as_deref());
            let delay = match endpoint {
                None => {
                    let backlog = spool::unsent(&self.config.spool_dir).map_or(0, |f| f.len());
                    self.finish(Round::default(), backlog);
                    self.config.interval
                }
                Some(endpoint) => {
                    if endpoint_logged.as_deref() != Some(endpoint.as_str()) {
                        tracing::info!(%endpoint, "shipping the spool to the ledger");
                        endpoint_logged = Some(endpoint.clone());
                    }
                    let round = self.ship_once(&endpoint).await;
                    log_round(&round);
                    if round.errors.is_empty() {
                        self.failed_rounds = 0;
                        backoff.reset();
                        self.config.interval
                    } else {
                        self.failed_rounds = self.failed_rounds.saturating_add(1);
                        backoff.fail()
                    }
                }
            };
            let wake_early = backoff.failures() == 0;
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                // A newly closed epoch is shipped at once (unless backing off); a closed
                // channel falls back to the timer.
                Ok(()) = status.changed(), if wake_early => {}
            }
        }
    }
}

fn log_round(round: &Round) {
    if !round.sent.is_empty() {
        tracing::info!(epochs = ?round.sent, stored = round.stored,
            duplicates = round.duplicates, backlog = round.backlog, "epochs acknowledged by the ledger");
    }
    for (epoch, error) in &round.errors {
        tracing::warn!(epoch, reason = error.label(), %error, backlog = round.backlog,
            "shipping to the ledger failed; kept in the spool, will retry");
    }
}

#[cfg(test)]
mod tests;
