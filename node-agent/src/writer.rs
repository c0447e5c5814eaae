//! The one writer of the BPF maps: programs each desired state the index publishes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use hsn_core::MacAddr;
use hsn_ebpf::EdgeNode;

use crate::datapath::Datapath;
use crate::index::{Desired, EdgePeer, RoleState};
use crate::metrics::{Metrics, ReasonLabels};
use crate::nexthop::{NextHopError, NextHops};
use crate::status::StatusTx;

/// How soon a failed programming (e.g. an unresolved neighbour) is retried.
pub const RETRY: Duration = Duration::from_secs(2);

/// Why one desired state was not fully programmed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A map write failed.
    #[error("programming the maps: {0}")]
    Maps(#[from] hsn_ebpf::Error),
    /// The super node's next hop is unknown; uplink goes to the kernel meanwhile.
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

/// The edges a super node can recognise by MAC: those that advertised an address and a
/// well-formed MAC. The others are counted under their IP source meanwhile.
pub fn edge_nodes(edges: &[EdgePeer]) -> Vec<EdgeNode> {
    edges
        .iter()
        .filter_map(|e| {
            let mac: MacAddr = e.mac.as_deref()?.parse().ok()?;
            Some(EdgeNode {
                mac,
                addr: e.address?,
            })
        })
        .collect()
}

/// Programs `desired` into `dp`: tenants first, then the next hop (edge) or the edges
/// (super). Returns the source MAC an edge now redirects with.
pub async fn apply<D: Datapath>(
    dp: &Mutex<D>,
    hops: &NextHops,
    desired: &Desired,
) -> Result<Option<MacAddr>, WriteError> {
    lock(dp).set_tenants(&desired.tenants)?;
    match &desired.role {
        RoleState::Edge { target } => {
            let hop = match target {
                Some(target) => match hops.resolve(target).await {
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
            Ok(hop.map(|h| h.src_mac))
        }
        RoleState::Super { edges } => {
            lock(dp).set_edges(&edge_nodes(edges))?;
            Ok(None)
        }
    }
}

/// Runs the writer until `desired` closes: applies every change, retries failures, and
/// reports an edge's redirect MAC in the status (the Lease carries it to the operator).
pub async fn run<D: Datapath>(
    dp: SharedDatapath<D>,
    hops: NextHops,
    mut desired: watch::Receiver<Option<Arc<Desired>>>,
    metrics: Arc<Metrics>,
    status: StatusTx,
) {
    let mut failed = false;
    loop {
        let current = desired.borrow_and_update().clone();
        if let Some(d) = current {
            let started = Instant::now();
            match apply(&dp, &hops, &d).await {
                Ok(mac) => {
                    if let Some(mac) = mac.map(|m| m.to_string()) {
                        status.send_if_modified(|s| {
                            let changed = s.mac.as_deref() != Some(mac.as_str());
                            s.mac = Some(mac);
                            changed
                        });
                    }
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
