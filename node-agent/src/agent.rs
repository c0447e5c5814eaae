//! Wiring: routes source → index → (watch) → map writer; epoch loop; Lease; metrics.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::chain::ChainWatch;
use crate::datapath::Datapath;
use crate::epoch::EpochCloser;
use crate::index::{Desired, Index, Me, RoutesInput};
use crate::lease::LeaseIdentity;
use crate::metrics::Metrics;
use crate::nexthop::NextHops;
use crate::shipper::{Shipper, ShipperConfig};
use crate::spool::{Spool, SpoolError, SpoolHeader};
use crate::status::AgentStatus;
use crate::writer::SharedDatapath;
use crate::{lease, source, writer};
use hsn_core::Role;

/// Where routes tables come from.
#[derive(Debug)]
pub enum RoutesSource {
    /// Watch this ConfigMap.
    ConfigMap(Box<Api<ConfigMap>>, String),
    /// Poll this file (and re-read on SIGHUP).
    File(PathBuf),
    /// Inputs pushed by the caller (tests).
    Channel(mpsc::Receiver<RoutesInput>),
}

/// The Lease to keep renewed.
#[derive(Debug)]
pub struct LeaseConfig {
    /// Leases in the agent's namespace.
    pub api: Api<Lease>,
    /// Name, holder, key.
    pub identity: LeaseIdentity,
    /// Renewal interval.
    pub heartbeat: Duration,
}

/// Everything an agent needs besides its datapath.
#[derive(Debug)]
pub struct AgentConfig {
    /// The HsnNetwork.
    pub network: String,
    /// This agent in routes-table terms.
    pub me: Me,
    /// Written into each spool file.
    pub spool_header: SpoolHeader,
    /// Spool directory.
    pub spool_dir: PathBuf,
    /// Routes input.
    pub routes: RoutesSource,
    /// Next-hop resolution: an edge's toward its super node, a super node's back to edges.
    pub next_hops: NextHops,
    /// This node's tunnel address (`--advertise-address`); unset: the kernel's preferred
    /// source toward each peer.
    pub tunnel_address: Option<std::net::IpAddr>,
    /// Cluster mode: the Lease.
    pub lease: Option<LeaseConfig>,
    /// Epoch length until a routes table says otherwise.
    pub default_epoch_seconds: u32,
    /// Close epochs on the wall clock (off in tests that close them by hand).
    pub epoch_loop: bool,
    /// Initial `datapath` status (attach mode).
    pub datapath_mode: String,
    /// Ship the spool to a ledger.
    pub shipper: Option<ShipperConfig>,
    /// Super: where the ledger ConfigMap's genesis and peers are copied for the pod's ledger.
    pub ledger_relay_dir: Option<PathBuf>,
}

/// A running agent; dropping it stops every task (the pinned counters stay).
#[derive(Debug)]
pub struct Agent<D> {
    /// Desired state as last published by the index.
    pub desired: watch::Receiver<Option<Arc<Desired>>>,
    /// Reported status.
    pub status: watch::Receiver<AgentStatus>,
    /// The agent's metrics.
    pub metrics: Arc<Metrics>,
    /// The registry holding them.
    pub registry: Arc<Registry>,
    /// The datapath (writer and epoch loop share it).
    pub datapath: SharedDatapath<D>,
    tasks: JoinSet<()>,
}

impl<D: Datapath> Agent<D> {
    /// Starts the tasks on the current runtime.
    pub fn start(config: AgentConfig, datapath: D) -> Result<Self, SpoolError> {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.init(&crate::metrics::KnownReasons {
            routes: crate::index::IndexError::LABELS.to_vec(),
            map_update: crate::writer::WriteError::labels(),
            epoch: crate::epoch::EpochError::labels(),
            ledger_submit: crate::shipper::ShipError::labels(),
        });
        let spool = Spool::open(&config.spool_dir)?;
        let datapath = Arc::new(Mutex::new(datapath));
        let (desired_tx, desired_rx) = watch::channel(None);
        let (status_tx, status_rx) = watch::channel(AgentStatus {
            datapath: config.datapath_mode.clone(),
            ..AgentStatus::default()
        });
        let mut tasks = JoinSet::new();

        // The member's ConfigMaps, in cluster mode (a super follows the ledger's too).
        let configmaps = match &config.routes {
            RoutesSource::ConfigMap(api, _) => Some((**api).clone()),
            _ => None,
        };
        let inputs = match config.routes {
            RoutesSource::Channel(rx) => rx,
            RoutesSource::ConfigMap(api, name) => {
                let (tx, rx) = mpsc::channel(8);
                tasks.spawn(source::watch_configmap(*api, name, tx));
                rx
            }
            RoutesSource::File(path) => {
                let (tx, rx) = mpsc::channel(8);
                tasks.spawn(source::watch_file(path, tx));
                rx
            }
        };
        let index = Index::new(
            config.network,
            config.me,
            desired_tx,
            status_tx.clone(),
            metrics.clone(),
        );
        tasks.spawn(index.run(inputs));
        tasks.spawn(writer::run(
            datapath.clone(),
            config.next_hops,
            config.tunnel_address,
            desired_rx.clone(),
            metrics.clone(),
        ));
        let epochs = EpochCloser::new(
            datapath.clone(),
            spool,
            config.spool_header,
            metrics.clone(),
            status_tx.clone(),
        );
        if config.epoch_loop {
            tasks.spawn(epochs.run(desired_rx.clone(), config.default_epoch_seconds));
        }
        if let (Some(c), Some(l)) = (&config.shipper, &config.lease)
            && c.role == Role::Super
            && let Some(endpoint) = &c.endpoint
        {
            tasks.spawn(crate::chain::run(
                ChainWatch {
                    network: c.network.clone(),
                    endpoint: endpoint.clone(),
                    tls: c.tls.clone(),
                    every: l.heartbeat,
                },
                status_tx.clone(),
            ));
            if let Some(api) = configmaps {
                let target = crate::ledger_config::LedgerTarget {
                    endpoint: endpoint.clone(),
                    tls: c.tls.clone(),
                    relay_dir: config.ledger_relay_dir.clone(),
                };
                tasks.spawn(crate::ledger_config::follow(api, target, status_tx.clone()));
            }
        }
        if let Some(c) = config.shipper {
            let shipper = Shipper::new(c, metrics.clone());
            tasks.spawn(shipper.run(desired_rx.clone(), status_rx.clone()));
        }
        if let Some(l) = config.lease {
            tasks.spawn(lease::run(
                l.api,
                l.identity,
                status_rx.clone(),
                l.heartbeat,
                metrics.clone(),
            ));
        }
        // The status sender lives as long as the index; keep one so `status` stays open.
        tasks.spawn(async move {
            status_tx.closed().await;
        });
        Ok(Self {
            desired: desired_rx,
            status: status_rx,
            metrics,
            registry: Arc::new(registry),
            datapath,
            tasks,
        })
    }

    /// Waits until a task ends (they run forever unless their input closes).
    pub async fn join_any(&mut self) {
        self.tasks.join_next().await;
    }
}
