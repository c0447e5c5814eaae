//! Fetch: everything a network's reconcile reads, from the hub and the members, with each
//! agent's Lease judged ([`trust`](super::trust)) against the pods the operator placed.

use std::collections::{BTreeMap, BTreeSet};

use hsn_api::condition::has_reason;
use hsn_api::network::LedgerHead;
use hsn_api::node::{HsnNodeStatus, lease};
use hsn_api::{ConditionType, HsnNetwork, HsnNode, HsnNodeReason, MecCluster};
use hsn_core::Role;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DynamicObject, ListParams, ObjectMeta};
use kube::{Api, Client, ResourceExt};

use crate::context::Context;
use crate::lists;
use crate::member::MemberState;
use crate::plan::{EdgeId, Previous, SuperId};
use crate::resources::{
    APPLIED_HASH_ANNOTATION, NETWORK_LABEL, NETWORK_UID_LABEL, Peer, Peers, SUPER_NODE,
    member_namespace,
};

use super::Error;
use super::stuck::{self, Stuck};
use super::trust::{self, Claim, Distrust, PodFacts, Pods, Seat};

/// Whether what a Lease says is used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Verdict {
    /// No agent wrote it yet (the operator created it): no holder, no renewal.
    #[default]
    Unwritten,
    /// Written by the pod placed for it.
    Trusted(trust::Placed),
    /// Written by something else, or with a key its pod did not publish first: ignored for
    /// routes, keys and liveness.
    Refused(Distrust),
}

/// What one agent's Lease says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseInfo {
    /// Last renewal.
    pub renewed: Option<Timestamp>,
    /// When it expires: renewal plus duration.
    pub expires: Option<Timestamp>,
    /// The last epoch the agent closed.
    pub last_epoch: Option<i64>,
    /// What the agent advertises for the routes tables (and its public key for its HsnNode).
    pub peer: Peer,
    /// Super nodes: the chain as their ledger replica reports it.
    pub ledger: Option<LedgerHead>,
    /// Whether any of it is used.
    pub verdict: Verdict,
}

impl LeaseInfo {
    /// Whether the Lease is current at `now`.
    pub fn fresh(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|e| e > now)
    }

    /// What a trusted Lease advertises.
    fn trusted_peer(&self) -> Option<&Peer> {
        matches!(self.verdict, Verdict::Trusted(_)).then_some(&self.peer)
    }
}

/// Agents' Leases of one member namespace, by Lease name (Leases that are no agent's are
/// left out).
pub type Leases = BTreeMap<String, LeaseInfo>;

/// The inputs of a network reconcile.
#[derive(Debug)]
pub struct Fetched {
    /// MecClusters that exist, with their members' state.
    pub members: Vec<(MecCluster, MemberState)>,
    /// Agent Leases per reachable member.
    pub leases: BTreeMap<String, Leases>,
    /// HsnNodes the network controls, by name.
    pub nodes: BTreeMap<String, HsnNode>,
    /// HsnNodes that claim the network but that it does not control: made by hand.
    pub forged: Vec<String>,
    /// What was read of each reachable member, for apply not to read it again.
    pub reads: BTreeMap<String, MemberRead>,
}

/// One member's Leases as listed, the network's pods there that are stuck, and where its
/// super nodes' pods run.
#[derive(Debug, Default)]
pub struct MemberRead {
    /// The member namespace's Leases.
    pub leases: Vec<Lease>,
    /// The network's pods that cannot be placed or started.
    pub stuck: Stuck,
    /// The node the scheduler put each of the network's super-node pods on, by ordinal
    /// (known before any agent there runs or advertises); `None` when the pods could not
    /// be read.
    pub super_pods: Option<BTreeMap<u32, String>>,
}

impl MemberRead {
    /// The Leases by name, as the dynamic objects apply compares with what it wants: of
    /// each only what apply reads (its name, labels and applied hash), not a copy of the
    /// whole Lease through JSON, which a reconcile did for every agent.
    pub fn leases_as_objects(&self) -> BTreeMap<String, DynamicObject> {
        self.leases
            .iter()
            .map(|l| {
                let hash = l.annotations().get(APPLIED_HASH_ANNOTATION);
                let metadata = ObjectMeta {
                    name: l.metadata.name.clone(),
                    labels: l.metadata.labels.clone(),
                    annotations: hash
                        .map(|h| BTreeMap::from([(APPLIED_HASH_ANNOTATION.into(), h.clone())])),
                    ..ObjectMeta::default()
                };
                let object = DynamicObject {
                    types: None,
                    metadata,
                    data: serde_json::Value::Null,
                };
                (l.name_any(), object)
            })
            .collect()
    }
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

/// Reads the clusters, the network's HsnNodes, and the agents' Leases and pods.
pub async fn fetch(network: &HsnNetwork, ctx: &Context) -> Result<Fetched, Error> {
    let mut members = Vec::new();
    for mec in ctx.clusters.state() {
        if let Some(member) = ctx.inventory.get(&mec.name_any()) {
            members.push((mec.as_ref().clone(), member));
        }
    }
    let namespace = network.namespace().unwrap_or_default();
    let uid = network.uid().unwrap_or_default();
    let hub_api = Api::<HsnNode>::namespaced(ctx.hub.clone(), &namespace);
    let every = ListParams::default();
    let hub_nodes = lists::list(&hub_api, &every, |n| n);
    let reads = members
        .iter()
        .filter(|(_, m)| m.view.ready)
        .map(|(mec, _)| async {
            let client = ctx.members.client(mec).await.ok()?;
            // A member that stops answering mid-read must not hold the reconcile: it counts
            // as unreadable, like one that refuses.
            let namespace = member_namespace(&network.name_any());
            let read = read_member(&client, &namespace, &uid);
            let read = tokio::time::timeout(ctx.settings.member_timeout, read)
                .await
                .ok()?
                .ok()?;
            Some((mec.name_any(), read))
        });
    // The hub's HsnNodes and every member's agents are read at the same time: different
    // API servers.
    let (all, reads) = tokio::join!(hub_nodes, futures::future::join_all(reads));
    let (nodes, forged) = sort_nodes(network, all.map_err(Error::Hub)?);
    let pins = pins(&nodes);
    let mut leases = BTreeMap::new();
    let mut member_reads = BTreeMap::new();
    for (cluster, (pods, read)) in reads.into_iter().flatten() {
        let judged = read
            .leases
            .iter()
            .filter_map(|l| {
                let name = l.name_any();
                let seat = Seat::of(&name)?;
                let pinned = pins.get(&(cluster.as_str(), seat.clone())).copied();
                Some((name, lease_info(l, &seat, &pods, pinned)))
            })
            .collect();
        leases.insert(cluster.clone(), judged);
        member_reads.insert(cluster, read);
    }
    Ok(Fetched {
        members,
        leases,
        nodes,
        forged,
        reads: member_reads,
    })
}

/// The network's HsnNodes (controlled by it), and the names of those that claim it (label
/// or `spec.network`) without being controlled by it.
fn sort_nodes(network: &HsnNetwork, all: Vec<HsnNode>) -> (BTreeMap<String, HsnNode>, Vec<String>) {
    let (name, uid) = (network.name_any(), network.uid().unwrap_or_default());
    let mut nodes = BTreeMap::new();
    let mut forged = Vec::new();
    for node in all {
        let labels = node.labels();
        let claims = node.spec.network == name
            || labels.get(NETWORK_LABEL) == Some(&name)
            || labels.get(NETWORK_UID_LABEL) == Some(&uid);
        if node.is_controlled_by(&uid) {
            nodes.insert(node.name_any(), node);
        } else if claims {
            forged.push(node.name_any());
        }
    }
    (nodes, forged)
}

/// The status of each HsnNode by (cluster, seat): the pod and key it pinned.
fn pins(nodes: &BTreeMap<String, HsnNode>) -> BTreeMap<(&str, Seat), &HsnNodeStatus> {
    nodes
        .values()
        .filter_map(|n| {
            let seat = match (n.spec.role, &n.spec.node_name, n.spec.ordinal) {
                (Role::Edge, Some(node), _) => Seat::Edge(node.clone()),
                (Role::Super, _, Some(o)) => Seat::Super(u32::try_from(o).ok()?),
                _ => return None,
            };
            Some(((n.spec.cluster.as_str(), seat), n.status.as_ref()?))
        })
        .collect()
}

/// The Leases of a member namespace, then the network's pods there (label-selected, one
/// list): what each pod is (to judge the Leases), which are stuck, where the super nodes'
/// run. In that order: a pod exists before it writes its Lease, so every holder read is in
/// the pod list unless it was deleted since. Pods that cannot be read are reported as such,
/// and no Lease is trusted.
async fn read_member(
    client: &Client,
    namespace: &str,
    uid: &str,
) -> Result<(Pods, MemberRead), kube::Error> {
    let selector = format!("{NETWORK_UID_LABEL}={uid}");
    // Leases and pods at the same time; of each pod only what judges Leases and what says
    // it is stuck is kept.
    let (lease_api, pod_api) = (
        Api::<Lease>::namespaced(client.clone(), namespace),
        Api::<Pod>::namespaced(client.clone(), namespace),
    );
    let (every, agents) = (
        ListParams::default(),
        ListParams::default().labels(&selector),
    );
    let (leases, pods) = tokio::join!(
        lists::list(&lease_api, &every, |l| l),
        lists::list(&pod_api, &agents, |p| (PodFacts::of(&p), stuck::of(&p)))
    );
    let leases = match leases {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok((Ok(BTreeMap::new()), MemberRead::default()));
        }
        Err(e) => return Err(e),
    };
    let mut read = MemberRead {
        leases,
        ..MemberRead::default()
    };
    let pods = match pods {
        Ok(list) => {
            let mut facts = BTreeMap::new();
            let mut stuck = Vec::new();
            let placed = read.super_pods.insert(BTreeMap::new());
            for ((name, f), s) in list {
                if let Some((ordinal, node)) = super_placement(&name, &f) {
                    placed.insert(ordinal, node.clone());
                }
                facts.insert(name, f);
                stuck.push(s);
            }
            read.stuck = stuck.into_iter().collect();
            stuck::explain_claims(client, namespace, uid, &mut read.stuck).await;
            Ok(facts)
        }
        Err(e) => {
            tracing::warn!(namespace, error = %e, "reading the agents' pods failed: no Lease there is trusted");
            Err(e.to_string())
        }
    };
    Ok((pods, read))
}

/// The ordinal of a pod `name` of the network's super-node StatefulSet, and the node it
/// was placed on.
fn super_placement<'a>(name: &str, pod: &'a PodFacts) -> Option<(u32, &'a String)> {
    let (kind, controller) = pod.controller.as_ref()?;
    if kind != "StatefulSet" || controller != SUPER_NODE {
        return None;
    }
    let ordinal = name
        .strip_prefix(SUPER_NODE)?
        .strip_prefix('-')?
        .parse()
        .ok()?;
    Some((ordinal, pod.node.as_ref()?))
}

fn lease_info(l: &Lease, seat: &Seat, pods: &Pods, pinned: Option<&HsnNodeStatus>) -> LeaseInfo {
    let spec = l.spec.clone().unwrap_or_default();
    let renewed = spec.renew_time.map(|t| t.0);
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let annotations = lease::Annotations::from_map(l.annotations());
    let verdict = if spec.holder_identity.is_none() && renewed.is_none() {
        Verdict::Unwritten
    } else {
        let claim = Claim {
            holder: spec.holder_identity.as_deref(),
            pod_uid: annotations.pod_uid.as_deref(),
            public_key: annotations.public_key.as_deref(),
        };
        match trust::vet(seat, claim, pods, pinned) {
            Ok(placed) => Verdict::Trusted(placed),
            Err(why) => Verdict::Refused(why),
        }
    };
    LeaseInfo {
        renewed,
        expires: renewed.and_then(|r| r.checked_add(duration).ok()),
        peer: Peer {
            address: annotations.address,
            public_key: annotations.public_key,
            holds_chain: annotations
                .ledger
                .as_ref()
                .is_some_and(|head| head.chain_height > 0),
        },
        last_epoch: annotations.last_epoch.and_then(|e| i64::try_from(e).ok()),
        ledger: annotations.ledger,
        verdict,
    }
}

/// Ready reasons of a super node the plan did not count live.
const NOT_LIVE: [HsnNodeReason; 3] = [
    HsnNodeReason::LeaseExpired,
    HsnNodeReason::UntrustedLease,
    HsnNodeReason::KeyChanged,
];

impl Fetched {
    /// What the agents advertise in Leases their placed pods wrote, per cluster and Lease
    /// name; nothing of any other Lease.
    pub fn peers(&self) -> Peers {
        self.leases
            .iter()
            .map(|(cluster, leases)| {
                let peers = leases
                    .iter()
                    .filter_map(|(name, info)| Some((name.clone(), info.trusted_peer()?.clone())))
                    .collect();
                (cluster.clone(), peers)
            })
            .collect()
    }

    /// Super nodes whose Lease was written and expired, or was written by anything but
    /// their placed pod (that is no heartbeat of theirs). A super whose Lease no agent
    /// wrote yet is starting, and trusted until its first Lease lapses.
    pub fn lost_supers(&self, now: Timestamp) -> BTreeSet<SuperId> {
        let mut lost = BTreeSet::new();
        for (cluster, leases) in &self.leases {
            for (name, info) in leases {
                let Some(ordinal) = SuperId::ordinal_of(name) else {
                    continue;
                };
                let dead = match info.verdict {
                    Verdict::Unwritten => false,
                    Verdict::Trusted(_) => !info.fresh(now),
                    Verdict::Refused(_) => true,
                };
                if dead {
                    lost.insert(SuperId {
                        cluster: cluster.clone(),
                        ordinal,
                    });
                }
            }
        }
        lost
    }

    /// The next instant a super node's Lease, trusted and fresh now, lapses unless renewed:
    /// when the operator must look again to fail it over without delay. A Lease expiring
    /// changes nothing in the object, so no watch event announces it; the renewal the
    /// operator last read says when.
    pub fn next_super_expiry(&self, now: Timestamp) -> Option<Timestamp> {
        self.leases
            .values()
            .flat_map(|leases| leases.iter())
            .filter(|(name, info)| {
                SuperId::ordinal_of(name).is_some()
                    && matches!(info.verdict, Verdict::Trusted(_))
                    && info.fresh(now)
            })
            .filter_map(|(_, info)| info.expires)
            .min()
    }

    /// When each lost super's Lease lapsed.
    pub fn lease_expiry(&self, s: &SuperId) -> Option<Timestamp> {
        self.leases
            .get(&s.cluster)?
            .get(&lease::super_lease(s.ordinal))?
            .expires
    }

    /// Per cluster, the nodes this network's super nodes run on: where the scheduler put
    /// their pods, in the members whose pods were read this time, else where their agents
    /// last said they ran (their HsnNodes): a failed read must not put an edge back on a
    /// super node's node for a reconcile.
    pub fn super_hosts(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut hosts: BTreeMap<String, BTreeSet<String>> = self
            .reads
            .iter()
            .filter_map(|(cluster, read)| {
                Some((
                    cluster.clone(),
                    read.super_pods.as_ref()?.values().cloned().collect(),
                ))
            })
            .collect();
        for node in self.nodes.values() {
            let read = self.reads.get(&node.spec.cluster);
            if node.spec.role != Role::Super || read.is_some_and(|r| r.super_pods.is_some()) {
                continue;
            }
            if let Some(host) = node.status.as_ref().and_then(|s| s.node_name.clone()) {
                hosts
                    .entry(node.spec.cluster.clone())
                    .or_default()
                    .insert(host);
            }
        }
        hosts
    }

    /// The node super node `ordinal`'s pod in `cluster` was placed on, as read this time.
    pub fn super_pod_node(&self, cluster: &str, ordinal: u32) -> Option<&String> {
        self.reads.get(cluster)?.super_pods.as_ref()?.get(&ordinal)
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
                !NOT_LIVE
                    .iter()
                    .any(|reason| has_reason(&s.conditions, ConditionType::Ready, reason.as_str()))
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

#[cfg(test)]
#[path = "fetch_tests.rs"]
pub(super) mod tests;
