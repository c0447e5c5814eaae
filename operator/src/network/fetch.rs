//! Fetch: everything a network's reconcile reads, from the hub and the members.

use std::collections::{BTreeMap, BTreeSet};

use hsn_api::condition::has_reason;
use hsn_api::node::lease;
use hsn_api::{ConditionType, HsnNetwork, HsnNode, HsnNodeReason, MecCluster};
use hsn_core::Role;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::context::Context;
use crate::member::MemberState;
use crate::plan::{EdgeId, Previous, SuperId};
use crate::resources::{NETWORK_UID_LABEL, Peer, Peers, member_namespace};

use super::Error;

/// What one agent's Lease says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseInfo {
    /// Last renewal.
    pub renewed: Option<Timestamp>,
    /// When it expires: renewal plus duration.
    pub expires: Option<Timestamp>,
    /// The last epoch the agent closed.
    pub last_epoch: Option<i64>,
    /// The node the agent runs on (the Lease holder).
    pub holder: Option<String>,
    /// What the agent advertises for the routes tables (and its public key for its HsnNode).
    pub peer: Peer,
}

impl LeaseInfo {
    /// Whether the Lease is current at `now`.
    pub fn fresh(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|e| e > now)
    }
}

/// Leases of one member namespace, by Lease name.
pub type Leases = BTreeMap<String, LeaseInfo>;

/// The inputs of a network reconcile.
#[derive(Debug)]
pub struct Fetched {
    /// MecClusters that exist, with their members' state.
    pub members: Vec<(MecCluster, MemberState)>,
    /// Agent Leases per reachable member.
    pub leases: BTreeMap<String, Leases>,
    /// HsnNodes of the network, by name.
    pub nodes: BTreeMap<String, HsnNode>,
}

/// Longest a reconcile waits for the MecCluster cache's first list.
const CACHE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// MecClusters not probed yet. Planning before every cluster's first probe would see
/// fewer clusters than there are and move (and prune) what it cannot see, e.g. right
/// after the operator starts; the caller waits instead.
pub async fn unprobed(ctx: &Context) -> Vec<String> {
    // The MecCluster cache fills from its own watch; an empty cache may just be early. A
    // reconcile never waits on it for good: it says so and is retried.
    match tokio::time::timeout(CACHE_WAIT, ctx.clusters.wait_until_ready()).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return vec!["<cluster cache stopped>".to_string()],
        Err(_) => {
            tracing::warn!(wait = ?CACHE_WAIT, "the MecCluster cache is not filled yet");
            return vec!["<cluster cache not filled>".to_string()];
        }
    }
    ctx.clusters
        .state()
        .iter()
        .map(|mec| mec.name_any())
        .filter(|name| ctx.inventory.get(name).is_none())
        .collect()
}

/// Reads the clusters, the network's HsnNodes, and the agents' Leases.
pub async fn fetch(network: &HsnNetwork, ctx: &Context) -> Result<Fetched, Error> {
    let mut members = Vec::new();
    for mec in ctx.clusters.state() {
        if let Some(member) = ctx.inventory.get(&mec.name_any()) {
            members.push((mec.as_ref().clone(), member));
        }
    }
    let namespace = network.namespace().unwrap_or_default();
    let uid = network.uid().unwrap_or_default();
    let nodes: Api<HsnNode> = Api::namespaced(ctx.hub.clone(), &namespace);
    let nodes = nodes
        .list(&ListParams::default().labels(&format!("{NETWORK_UID_LABEL}={uid}")))
        .await
        .map_err(Error::Hub)?
        .items
        .into_iter()
        .map(|n| (n.name_any(), n))
        .collect();

    let reads = members
        .iter()
        .filter(|(_, m)| m.view.ready)
        .map(|(mec, _)| async {
            let client = ctx.members.client(mec).await.ok()?;
            // A member that stops answering mid-read must not hold the reconcile: it counts
            // as unreadable, like one that refuses.
            let namespace = member_namespace(&network.name_any());
            let read = read_leases(&client, &namespace);
            let leases = tokio::time::timeout(ctx.settings.member_timeout, read)
                .await
                .ok()?
                .ok()?;
            Some((mec.name_any(), leases))
        });
    let leases = futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect();
    Ok(Fetched {
        members,
        leases,
        nodes,
    })
}

async fn read_leases(client: &Client, namespace: &str) -> Result<Leases, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Leases::new()),
        Err(e) => return Err(e),
    };
    Ok(list
        .items
        .iter()
        .map(|l| (l.name_any(), lease_info(l)))
        .collect())
}

fn lease_info(l: &Lease) -> LeaseInfo {
    let spec = l.spec.clone().unwrap_or_default();
    let renewed = spec.renew_time.map(|t| t.0);
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let annotations = lease::Annotations::from_map(l.annotations());
    LeaseInfo {
        renewed,
        expires: renewed.and_then(|r| r.checked_add(duration).ok()),
        peer: Peer {
            address: annotations.address,
            mac: annotations.mac,
            public_key: annotations.public_key,
        },
        last_epoch: annotations.last_epoch.and_then(|e| i64::try_from(e).ok()),
        holder: spec.holder_identity,
    }
}

impl Fetched {
    /// What the agents advertise, per cluster and Lease name.
    pub fn peers(&self) -> Peers {
        self.leases
            .iter()
            .map(|(cluster, leases)| {
                let peers = leases
                    .iter()
                    .map(|(name, info)| (name.clone(), info.peer.clone()))
                    .collect();
                (cluster.clone(), peers)
            })
            .collect()
    }

    /// Super nodes whose Lease existed and expired. A super without a Lease yet is
    /// starting, and trusted until its first Lease lapses.
    pub fn lost_supers(&self, now: Timestamp) -> BTreeSet<SuperId> {
        let mut lost = BTreeSet::new();
        for (cluster, leases) in &self.leases {
            for (name, info) in leases {
                let Some(ordinal) = SuperId::ordinal_of(name) else {
                    continue;
                };
                if !info.fresh(now) {
                    lost.insert(SuperId {
                        cluster: cluster.clone(),
                        ordinal,
                    });
                }
            }
        }
        lost
    }

    /// When each lost super's Lease lapsed.
    pub fn lease_expiry(&self, s: &SuperId) -> Option<Timestamp> {
        self.leases
            .get(&s.cluster)?
            .get(&lease::super_lease(s.ordinal))?
            .expires
    }

    /// The plan in force, rebuilt from the HsnNodes the operator last wrote.
    pub fn previous(&self) -> Previous {
        let mut supers_by_name = BTreeMap::new();
        let mut previous = Previous::default();
        for (name, node) in &self.nodes {
            if node.spec.role != Role::Super {
                continue;
            }
            let Some(ordinal) = node.spec.ordinal.and_then(|o| u32::try_from(o).ok()) else {
                continue;
            };
            let id = SuperId {
                cluster: node.spec.cluster.clone(),
                ordinal,
            };
            let live = node.status.as_ref().is_some_and(|s| {
                !has_reason(
                    &s.conditions,
                    ConditionType::Ready,
                    HsnNodeReason::LeaseExpired.as_str(),
                )
            });
            if live {
                previous.supers.insert(id.clone());
            }
            supers_by_name.insert(name.clone(), id);
        }
        for node in self.nodes.values() {
            let (Some(node_name), Some(sup)) =
                (&node.spec.node_name, &node.spec.assigned_super_node)
            else {
                continue;
            };
            if let Some(id) = supers_by_name.get(sup) {
                let edge = EdgeId {
                    cluster: node.spec.cluster.clone(),
                    node: node_name.clone(),
                };
                previous.assignment.insert(edge, id.clone());
            }
        }
        previous
    }
}
