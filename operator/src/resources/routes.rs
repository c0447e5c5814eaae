//! The routes ConfigMap: the assignment table of one cluster's edges, every live super
//! node, and the tenants.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hsn_api::node::lease;
use hsn_api::routes::{EdgeRoute, ROUTES_KEY, ROUTES_VERSION, RoutesTable, SuperRoute};
use k8s_openapi::api::core::v1::ConfigMap;

use super::{ROUTES_CONFIGMAP, Renderer};
use crate::plan::Plan;

/// What one agent advertises about itself in its Lease annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// `hsn.io/address`.
    pub address: Option<IpAddr>,
    /// `hsn.io/public-key`.
    pub public_key: Option<String>,
    /// Super nodes: their ledger replica reported a committed block (`hsn.io/ledger`), so
    /// it holds the chain and a validator without data may sync from it.
    pub holds_chain: bool,
}

/// Agents' advertisements per member cluster, then per Lease name (`super-<n>`, `edge-<node>`).
pub type Peers = BTreeMap<String, BTreeMap<String, Peer>>;

/// The routes table for `cluster`: its edges, the edges of other clusters its super nodes
/// serve, every live super node, and what their agents advertise.
pub fn routes_table(
    network: &hsn_api::HsnNetwork,
    name: &str,
    cluster: &str,
    plan: &Plan,
    peers: &Peers,
) -> RoutesTable {
    let peer = |c: &str, lease_name: String| peers.get(c).and_then(|l| l.get(&lease_name));
    RoutesTable {
        version: ROUTES_VERSION,
        network: name.to_string(),
        cluster: cluster.to_string(),
        epoch_seconds: u32::try_from(network.spec.metering.epoch_seconds).unwrap_or(60),
        supers: plan
            .live_supers
            .iter()
            .map(|s| SuperRoute {
                id: s.clone(),
                address: peer(&s.cluster, lease::super_lease(s.ordinal)).and_then(|p| p.address),
            })
            .collect(),
        edges: plan
            .assignment
            .iter()
            .filter(|(e, s)| e.cluster == cluster || s.cluster == cluster)
            .map(|(e, s)| {
                let p = peer(&e.cluster, lease::edge_lease(&e.node))
                    .cloned()
                    .unwrap_or_default();
                EdgeRoute {
                    node: e.node.clone(),
                    cluster: if e.cluster == cluster {
                        String::new()
                    } else {
                        e.cluster.clone()
                    },
                    super_id: s.clone(),
                    address: p.address,
                    public_key: p.public_key,
                }
            })
            .collect(),
        tenants: network.spec.metering.tenants.clone(),
    }
}

/// The ConfigMap holding [`routes_table`] as JSON.
pub(super) fn config_map(
    render: &Renderer<'_>,
    cluster: &str,
    plan: &Plan,
    peers: &Peers,
) -> ConfigMap {
    let table = routes_table(render.network, &render.name, cluster, plan, peers);
    ConfigMap {
        metadata: render.meta(ROUTES_CONFIGMAP),
        data: Some(BTreeMap::from([(
            ROUTES_KEY.to_string(),
            serde_json::to_string_pretty(&table).expect("routes serialize to JSON"),
        )])),
        ..Default::default()
    }
}
