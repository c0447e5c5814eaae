//! The routes index: validates each routes table and computes the desired datapath state,
//! published on a `watch` channel to the one map writer. A bad table changes nothing but the
//! reported error; the last good state stays in force.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use hsn_api::routes::{RoutesError, RoutesTable};
use hsn_core::{PrefixClaims, Role, SharedPrefix, SuperId, TenantId};
use hsn_ebpf::TenantPrefixes;
use ipnet::IpNet;
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use crate::status::StatusTx;

/// Who this agent is, as the routes table names agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Me {
    /// An edge on this Kubernetes node.
    Edge {
        /// Node name (the table's `edges[].node`).
        node: String,
    },
    /// Super node `ordinal`; `cluster` disambiguates ids `<cluster>/super-<ordinal>`.
    Super {
        /// StatefulSet ordinal.
        ordinal: u32,
        /// This cluster's name, when known.
        cluster: Option<String>,
    },
}

impl Me {
    /// The role of this identity.
    pub fn role(&self) -> Role {
        match self {
            Self::Edge { .. } => Role::Edge,
            Self::Super { .. } => Role::Super,
        }
    }

    fn is_super_id(&self, id: &SuperId) -> bool {
        let Self::Super { ordinal, cluster } = self else {
            return false;
        };
        id.ordinal == *ordinal && cluster.as_deref().is_none_or(|want| want == id.cluster)
    }
}

/// The super node an edge sends tenant uplink to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperTarget {
    /// `<cluster>/super-<ordinal>`.
    pub id: SuperId,
    /// Its address, once the operator knows it.
    pub address: Option<IpAddr>,
}

/// Role-specific part of the desired state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleState {
    /// An edge: its super node, `None` when the table does not route this node.
    Edge {
        /// Where tenant uplink goes.
        target: Option<SuperTarget>,
        /// Every super node's address: tunnelled downlink is taken from these.
        supers: Vec<IpAddr>,
    },
    /// A super node: the edges routed to it.
    Super {
        /// The edges, as the routes table describes them.
        edges: Vec<EdgePeer>,
        /// The network's other super nodes' addresses: their ledgers serve the same chain,
        /// so this node's spool goes there while its own pod's ledger cannot take it.
        peers: Vec<IpAddr>,
    },
}

/// An edge routed to this super node, with what its agent advertised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgePeer {
    /// Kubernetes node name.
    pub node: String,
    /// Its cluster, when not this one.
    pub cluster: String,
    /// The address its counters are attributed to.
    pub address: Option<IpAddr>,
    /// Its public key, hex.
    pub public_key: Option<String>,
}

/// Everything the map writer and the epoch loop need from one good routes table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Epoch length in seconds.
    pub epoch_seconds: u32,
    /// Tenant prefixes, ready for the datapath.
    pub tenants: Vec<TenantPrefixes>,
    /// Tenant id → name, for spool records.
    pub tenant_names: BTreeMap<TenantId, String>,
    /// Edge or super specifics.
    pub role: RoleState,
}

/// Why a routes table was not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    /// Parse or validation failed (`RoutesTable::parse`).
    #[error(transparent)]
    Routes(#[from] RoutesError),
    /// The routes source has no table (ConfigMap or key missing, file unreadable).
    #[error("no routes table: {0}")]
    Missing(String),
    /// The table is for another network.
    #[error("routes table is for network {found:?}, this agent serves {want:?}")]
    WrongNetwork {
        /// The table's network.
        found: String,
        /// `--network`.
        want: String,
    },
    /// A tenant id outside 1..=u32::MAX.
    #[error("tenant {tenant} has invalid id {id}")]
    TenantId {
        /// Tenant name.
        tenant: String,
        /// Its id.
        id: i32,
    },
    /// One prefix claimed by two tenants.
    #[error("prefix {prefix} belongs to both tenant {first} and tenant {second}")]
    PrefixConflict {
        /// The prefix (host bits cleared).
        prefix: IpNet,
        /// First owner.
        first: String,
        /// Second owner.
        second: String,
    },
    /// `epochSeconds` of zero.
    #[error("epochSeconds must be positive")]
    ZeroEpoch,
}

impl IndexError {
    /// Every label [`IndexError::label`] returns.
    pub const LABELS: &[&'static str] = &[
        "malformed",
        "version",
        "unknown_super",
        "bad_prefix",
        "missing",
        "wrong_network",
        "tenant_id",
        "prefix_conflict",
        "epoch",
    ];

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Routes(RoutesError::Malformed(_)) => "malformed",
            Self::Routes(RoutesError::Version { .. }) => "version",
            Self::Routes(RoutesError::UnknownSuper { .. }) => "unknown_super",
            Self::Routes(RoutesError::BadPrefix { .. }) => "bad_prefix",
            Self::Missing(_) => "missing",
            Self::WrongNetwork { .. } => "wrong_network",
            Self::TenantId { .. } => "tenant_id",
            Self::PrefixConflict { .. } => "prefix_conflict",
            Self::ZeroEpoch => "epoch",
        }
    }
}

/// One reading of the routes source: the table's JSON, or why there is none.
pub type RoutesInput = Result<String, String>;

/// Parses, validates and computes the desired state for `me`. Pure.
pub fn compute(json: &str, network: &str, me: &Me) -> Result<Desired, IndexError> {
    let table = RoutesTable::parse(json)?;
    if table.network != network {
        return Err(IndexError::WrongNetwork {
            found: table.network,
            want: network.to_owned(),
        });
    }
    if table.epoch_seconds == 0 {
        return Err(IndexError::ZeroEpoch);
    }
    let (tenants, tenant_names) = tenants(&table)?;
    let role = match me {
        Me::Edge { node } => RoleState::Edge {
            target: table.super_of(node).map(|s| SuperTarget {
                id: s.id.clone(),
                address: s.address,
            }),
            supers: table.supers.iter().filter_map(|s| s.address).collect(),
        },
        Me::Super { ordinal, cluster } => {
            // The table names the cluster it was written into; a flag-less super node
            // learns its own cluster from it.
            let me = match cluster {
                None if !table.cluster.is_empty() => &Me::Super {
                    ordinal: *ordinal,
                    cluster: Some(table.cluster.clone()),
                },
                _ => me,
            };
            RoleState::Super {
                edges: table
                    .edges
                    .iter()
                    .filter(|e| me.is_super_id(&e.super_id))
                    .map(|e| EdgePeer {
                        node: e.node.clone(),
                        cluster: e.cluster.clone(),
                        address: e.address,
                        public_key: e.public_key.clone(),
                    })
                    .collect(),
                peers: table
                    .supers
                    .iter()
                    .filter(|s| !me.is_super_id(&s.id))
                    .filter_map(|s| s.address)
                    .collect(),
            }
        }
    };
    Ok(Desired {
        epoch_seconds: table.epoch_seconds,
        tenants,
        tenant_names,
        role,
    })
}

type Tenants = (Vec<TenantPrefixes>, BTreeMap<TenantId, String>);

fn tenants(table: &RoutesTable) -> Result<Tenants, IndexError> {
    let mut claims = PrefixClaims::default();
    let mut out = Vec::new();
    let mut names = BTreeMap::new();
    for t in &table.tenants {
        let id = TenantId::try_from(t.id).map_err(|_| IndexError::TenantId {
            tenant: t.name.clone(),
            id: t.id,
        })?;
        let mut prefixes = Vec::new();
        for p in &t.prefixes {
            let net: IpNet = p.0.parse().map_err(|_| RoutesError::BadPrefix {
                tenant: t.name.clone(),
                prefix: p.0.clone(),
            })?;
            claims.claim(net, t.name.as_str()).map_err(
                |SharedPrefix {
                     prefix,
                     first,
                     second,
                 }| IndexError::PrefixConflict {
                    prefix,
                    first: first.to_owned(),
                    second: second.to_owned(),
                },
            )?;
            prefixes.push(net.trunc());
        }
        names.insert(id, t.name.clone());
        out.push(TenantPrefixes {
            tenant: id,
            prefixes,
        });
    }
    Ok((out, names))
}

/// The index task: reads routes inputs, publishes desired state, reports errors.
#[derive(Debug)]
pub struct Index {
    network: String,
    me: Me,
    desired: watch::Sender<Option<Arc<Desired>>>,
    status: StatusTx,
    metrics: Arc<Metrics>,
}

impl Index {
    /// An index for `me` in `network`, publishing into `desired`.
    pub fn new(
        network: String,
        me: Me,
        desired: watch::Sender<Option<Arc<Desired>>>,
        status: StatusTx,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            network,
            me,
            desired,
            status,
            metrics,
        }
    }

    /// Applies one input: a good table replaces the desired state (if it differs); a bad one
    /// only sets the error.
    pub fn update(&self, input: RoutesInput) {
        let result = input
            .map_err(IndexError::Missing)
            .and_then(|json| compute(&json, &self.network, &self.me));
        match result {
            Ok(desired) => {
                self.status
                    .send_if_modified(|s| s.routes_error.take().is_some());
                self.desired.send_if_modified(|current| {
                    let changed = current.as_deref() != Some(&desired);
                    if changed {
                        tracing::info!(?desired.role, tenants = desired.tenants.len(), "routes table accepted");
                        *current = Some(Arc::new(desired));
                    }
                    changed
                });
            }
            Err(error) => {
                let message = error.to_string();
                self.metrics.routes_error(error.label());
                tracing::warn!(%error, label = error.label(), "routes table refused; keeping the last good one");
                self.status.send_if_modified(|s| {
                    let changed = s.routes_error.as_deref() != Some(message.as_str());
                    s.routes_error = Some(message);
                    changed
                });
            }
        }
    }

    /// Runs until the input channel closes.
    pub async fn run(self, mut inputs: mpsc::Receiver<RoutesInput>) {
        while let Some(input) = inputs.recv().await {
            self.update(input);
        }
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
