//! The one writer of the BPF maps: programs each desired state the index publishes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use std::net::IpAddr;

use hsn_ebpf::EdgeNode;

use crate::datapath::Datapath;
use crate::index::{Desired, RoleState};
use crate::metrics::{Metrics, ReasonLabels};
use crate::nexthop::{NextHopError, NextHops};

/// How soon a failed programming (e.g. an unresolved neighbour) is retried.
pub const RETRY: Duration = Duration::from_secs(2);

/// Why one desired state was not fully programmed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A map write failed.
    #[error("programming the maps: {0}")]
    Maps(#[from] hsn_ebpf::Error),
    /// A next hop is unknown: an edge's uplink, or a super node's downlink to that edge,
    /// goes to the kernel meanwhile.
    #[error("next hop: {0}")]
    NextHop(#[from] NextHopError),
}

impl WriteError {
    /// Every label [`WriteError::label`] returns.
    pub fn labels() -> Vec<&'static str> {
        [hsn_ebpf::Error::LABELS, NextHopError::LABELS].concat()
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Maps(e) => e.label(),
            Self::NextHop(e) => e.label(),
        }
    }
}

/// Shared handle on the loaded datapath: the writer writes maps, the epoch loop reads counters.
pub type SharedDatapath<D> = Arc<Mutex<D>>;

/// Locks the datapath; a panic elsewhere while holding it leaves the maps usable.
pub fn lock<D>(dp: &Mutex<D>) -> std::sync::MutexGuard<'_, D> {
    dp.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Programs `desired` into `dp`: tenants first, then (edge) the super nodes and the next
/// hop, or (super) the edges and the way back to each. `local` is this node's tunnel
/// address. An edge whose way back is not resolved yet is still programmed (its uplink is
/// counted; its downlink is left to the kernel) and the error makes the writer retry.
pub async fn apply<D: Datapath>(
    dp: &Mutex<D>,
    hops: &NextHops,
    local: Option<IpAddr>,
    desired: &Desired,
) -> Result<(), WriteError> {
    lock(dp).set_tenants(&desired.tenants)?;
    match &desired.role {
        RoleState::Edge { target, supers } => {
            lock(dp).set_supers(supers)?;
            let hop = match target {
                Some(target) => match hops.resolve(local, target).await {
                    Ok(hop) => Some(hop),
                    Err(e) => {
                        // Never keep sending to a super node the table no longer names.
                        lock(dp).set_next_hop(None)?;
                        return Err(e.into());
                    }
                },
                None => None,
            };
            lock(dp).set_next_hop(hop)?;
            Ok(())
        }
        RoleState::Super { edges, .. } => {
            let mut nodes = Vec::new();
            let mut unresolved = None;
            for addr in edges.iter().filter_map(|e| e.address) {
                let route = match hops.way_back(local, addr).await {
                    Ok(hop) => Some(hop),
                    Err(e) => {
                        unresolved.get_or_insert(e);
                        None
                    }
                };
                nodes.push(EdgeNode { addr, route });
            }
            lock(dp).set_edges(&nodes)?;
            unresolved.map_or(Ok(()), |e| Err(e.into()))
        }
    }
}

/// Runs the writer until `desired` closes: applies every change and retries failures.
pub async fn run<D: Datapath>(
    dp: SharedDatapath<D>,
    hops: NextHops,
    local: Option<IpAddr>,
    mut desired: watch::Receiver<Option<Arc<Desired>>>,
    metrics: Arc<Metrics>,
) {
    let mut failed = false;
    loop {
        let current = desired.borrow_and_update().clone();
        if let Some(d) = current {
            let started = Instant::now();
            match apply(&dp, &hops, local, &d).await {
                Ok(()) => {
                    metrics.map_update.observe(started.elapsed().as_secs_f64());
                    if failed {
                        tracing::info!("datapath programmed after earlier failure");
                    }
                    failed = false;
                }
                Err(error) => {
                    metrics
                        .map_update_errors
                        .get_or_create(&ReasonLabels {
                            reason: error.label(),
                        })
                        .inc();
                    if !failed {
                        tracing::warn!(%error, "programming the datapath failed; retrying");
                    }
                    failed = true;
                }
            }
        }
        let changed = if failed {
            match tokio::time::timeout(RETRY, desired.changed()).await {
                Ok(r) => r,
                Err(_elapsed) => Ok(()),
            }
        } else {
            desired.changed().await
        };
        if changed.is_err() {
            return;
        }
    }
}
