//! HsnNode objects in the hub: one per agent the plan wants, with what its Lease says.
//! Written only when they differ from what is there.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use hsn_api::node::{HsnNodeSpec, HsnNodeStatus, lease};
use hsn_api::{ConditionType, HsnNetwork, HsnNode, HsnNodeReason};
use hsn_core::Role;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::DeleteParams;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Api, Resource, ResourceExt};

use super::Error;
use super::fetch::{Fetched, LeaseInfo, Verdict};
use crate::conditions::{self, Cond};
use crate::context::Context;
use crate::plan::{Plan, SuperId};
use crate::resources::{NETWORK_LABEL, NETWORK_UID_LABEL};

/// Name of the HsnNode of a super node.
pub fn super_node_name(network: &str, s: &SuperId) -> String {
    bounded(format!(
        "{network}.{}.{}",
        s.cluster,
        SuperId::local_name(s.ordinal)
    ))
}

/// Name of the HsnNode of an edge node.
pub fn edge_node_name(network: &str, cluster: &str, node: &str) -> String {
    bounded(format!("{network}.{cluster}.edge.{node}"))
}

/// Object names are at most 253 characters; longer ones keep a readable head and a hash.
fn bounded(name: String) -> String {
    if name.len() <= 253 {
        return name;
    }
    let hash = xxhash_rust::xxh3::xxh3_64(name.as_bytes());
    format!("{}-{hash:016x}", &name[..236])
}

/// An HsnNode the plan wants, and its Ready condition (merged at write time so that its
/// transition time survives).
#[derive(Debug)]
pub struct Wanted {
    node: HsnNode,
    ready: Cond,
}

/// The HsnNodes the plan wants, by name.
pub fn desired(
    network: &HsnNetwork,
    plan: &Plan,
    fetched: &Fetched,
    now: Timestamp,
) -> BTreeMap<String, Wanted> {
    let name = network.name_any();
    let mut out = BTreeMap::new();
    let mut want = |n: String, spec: HsnNodeSpec, lease: String, live: bool| {
        let info = fetched
            .leases
            .get(&spec.cluster)
            .and_then(|l| l.get(&lease))
            .cloned();
        let ready = readiness(info.as_ref(), live, now);
        // A super node's pod is placed by the scheduler: where it runs is known from the
        // pod before its agent says so (other networks plan around that node).
        let pod_node = spec
            .ordinal
            .and_then(|o| u32::try_from(o).ok())
            .and_then(|o| fetched.super_pod_node(&spec.cluster, o))
            .cloned();
        let mut node = node(network, &n, spec, info, fetched.nodes.get(&n));
        if let (Some(status), Some(pod_node)) = (node.status.as_mut(), pod_node) {
            status.node_name = Some(pod_node);
        }
        out.insert(n, Wanted { node, ready });
    };
    for s in plan.supers() {
        let spec = HsnNodeSpec {
            network: name.clone(),
            role: Role::Super,
            cluster: s.cluster.clone(),
            node_name: None,
            ordinal: i32::try_from(s.ordinal).ok(),
            assigned_super_node: None,
        };
        let live = plan.live_supers.contains(&s);
        want(
            super_node_name(&name, &s),
            spec,
            lease::super_lease(s.ordinal),
            live,
        );
    }
    for (edge, s) in &plan.assignment {
        let spec = HsnNodeSpec {
            network: name.clone(),
            role: Role::Edge,
            cluster: edge.cluster.clone(),
            node_name: Some(edge.node.clone()),
            ordinal: None,
            assigned_super_node: Some(super_node_name(&name, s)),
        };
        want(
            edge_node_name(&name, &edge.cluster, &edge.node),
            spec,
            lease::edge_lease(&edge.node),
            true,
        );
    }
    out
}

fn readiness(info: Option<&LeaseInfo>, live: bool, now: Timestamp) -> Cond {
    let ready = ConditionType::Ready;
    match info {
        Some(LeaseInfo {
            verdict: Verdict::Refused(why),
            ..
        }) => Cond::no(
            ready,
            why.reason(),
            format!("{why}: the Lease is ignored for routes and keys"),
        ),
        Some(
            l @ LeaseInfo {
                verdict: Verdict::Trusted(_),
                ..
            },
        ) if live && l.fresh(now) => Cond::yes(
            ready,
            HsnNodeReason::LeaseCurrent,
            "the agent renews its Lease",
        ),
        None
        | Some(LeaseInfo {
            verdict: Verdict::Unwritten,
            ..
        }) if live => Cond::no(
            ready,
            HsnNodeReason::NoLease,
            "the agent has not written its Lease yet",
        ),
        // A super the plan counts as lost, or a Lease that lapsed.
        _ => Cond::no(
            ready,
            HsnNodeReason::LeaseExpired,
            "the agent stopped renewing its Lease",
        ),
    }
}

/// How stale `lastHeartbeat` in an HsnNode's status may get before it is rewritten. Leases
/// renew every few seconds (with microseconds); copying each renewal would rewrite every
/// HsnNode on every reconcile. Liveness itself is the Ready condition, computed from the
/// Lease every time.
pub const HEARTBEAT_RESOLUTION: SignedDuration = SignedDuration::from_secs(60);

/// The heartbeat to record: the previous one while the Lease renewed less than
/// [`HEARTBEAT_RESOLUTION`] after it, else the renewal, to the second (the API stores seconds).
fn heartbeat(previous: Option<&HsnNode>, renewed: Option<Timestamp>) -> Option<Time> {
    let renewed = Timestamp::from_second(renewed?.as_second()).ok()?;
    let kept = previous
        .and_then(|n| n.status.as_ref()?.last_heartbeat.clone())
        .filter(|p| {
            let age = renewed.duration_since(p.0);
            age >= SignedDuration::ZERO && age < HEARTBEAT_RESOLUTION
        });
    Some(kept.unwrap_or(Time(renewed)))
}

fn node(
    network: &HsnNetwork,
    name: &str,
    spec: HsnNodeSpec,
    info: Option<LeaseInfo>,
    previous: Option<&HsnNode>,
) -> HsnNode {
    let mut node = HsnNode::new(name, spec);
    node.metadata = ObjectMeta {
        name: Some(name.to_string()),
        namespace: network.namespace(),
        labels: Some(BTreeMap::from([
            (NETWORK_LABEL.to_string(), network.name_any()),
            (
                NETWORK_UID_LABEL.to_string(),
                network.uid().unwrap_or_default(),
            ),
        ])),
        owner_references: network.controller_owner_ref(&()).map(|o| vec![o]),
        ..Default::default()
    };
    node.status = Some(status(&node.spec, info, previous));
    node
}

/// What the placed pod's Lease says; from any other Lease, or none, nothing: what the last
/// placed pod said stays (its key pinned to it).
fn status(
    spec: &HsnNodeSpec,
    info: Option<LeaseInfo>,
    previous: Option<&HsnNode>,
) -> HsnNodeStatus {
    let kept = previous.and_then(|n| n.status.clone()).unwrap_or_default();
    match info {
        Some(LeaseInfo {
            verdict: Verdict::Trusted(placed),
            peer,
            renewed,
            last_epoch,
            ..
        }) => HsnNodeStatus {
            conditions: vec![],
            public_key: peer.public_key,
            agent_pod: Some(placed.pod),
            node_name: spec.node_name.clone().or(placed.node),
            last_heartbeat: heartbeat(previous, renewed),
            last_epoch,
        },
        _ => HsnNodeStatus {
            conditions: vec![],
            node_name: spec.node_name.clone().or(kept.node_name),
            ..kept
        },
    }
}

/// HsnNode writes in flight at once: a rollout creates hundreds, each a spec and then a
/// status write; one after another they took most of a rollout's reconcile.
const HUB_WRITES_IN_FLIGHT: usize = 4;

/// Creates and updates HsnNodes so the hub matches `want`, [`HUB_WRITES_IN_FLIGHT`] nodes
/// at a time (each node's spec before its status).
pub async fn sync(
    network: &HsnNetwork,
    ctx: &Context,
    have: &BTreeMap<String, HsnNode>,
    want: BTreeMap<String, Wanted>,
    now: Timestamp,
) -> Result<(), Error> {
    let api: Api<HsnNode> =
        Api::namespaced(ctx.hub.clone(), &network.namespace().unwrap_or_default());
    // The futures are made before the stream (see `apply::apply_member`).
    let writes: Vec<_> = want
        .into_iter()
        .map(|(name, wanted)| write_node(ctx, &api, have.get(&name), name, wanted, now))
        .collect();
    futures::stream::iter(writes)
        .buffer_unordered(HUB_WRITES_IN_FLIGHT)
        .try_collect::<()>()
        .await
}

/// Writes one HsnNode's spec and status where they differ from `existing`.
async fn write_node(
    ctx: &Context,
    api: &Api<HsnNode>,
    existing: Option<&HsnNode>,
    name: String,
    Wanted { mut node, ready }: Wanted,
    now: Timestamp,
) -> Result<(), Error> {
    let old_conds = existing
        .and_then(|e| e.status.as_ref())
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let status = node.status.as_mut().expect("desired nodes carry status");
    status.conditions = conditions::merge(&old_conds, &[ready], None, now);
    let same_spec = existing.is_some_and(|e| e.spec == node.spec && e.labels() == node.labels());
    if !same_spec {
        tracing::debug!(node = %name, "writing HsnNode spec");
        ctx.apply_spec(super::CONTROLLER, api, &name, &node.metadata, &node.spec)
            .await
            .map_err(Error::Hub)?;
    }
    if existing.and_then(|e| e.status.as_ref()) != node.status.as_ref() {
        tracing::debug!(node = %name, have = ?existing.and_then(|e| e.status.as_ref()), want = ?node.status, "writing HsnNode status");
        ctx.apply_status(super::CONTROLLER, api, &name, &node.status)
            .await
            .map_err(Error::Hub)?;
    }
    Ok(())
}

/// Event reason: an HsnNode claiming the network that the operator did not create was
/// removed.
pub const FORGED_NODE_REMOVED: &str = "ForgedHsnNodeRemoved";

/// Deletes the HsnNodes that claim the network but that it does not control (made by
/// hand): their status is no agent's. Each is an Event on the network and a log line.
pub async fn remove_forged(
    network: &HsnNetwork,
    ctx: &Context,
    forged: &[String],
) -> Result<(), Error> {
    let api: Api<HsnNode> =
        Api::namespaced(ctx.hub.clone(), &network.namespace().unwrap_or_default());
    for name in forged {
        tracing::warn!(node = %name, "removing an HsnNode this network did not create");
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {
                ctx.metrics.hub_write(super::CONTROLLER);
                ctx.metrics.forged_nodes_removed.inc();
            }
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(Error::Hub(e)),
        }
        let event = KubeEvent {
            type_: EventType::Warning,
            reason: FORGED_NODE_REMOVED.into(),
            note: Some(format!(
                "HsnNode {name} claimed this network but was not created by the operator; removed"
            )),
            action: "RemoveHsnNode".into(),
            secondary: None,
        };
        ctx.recorder
            .publish(&event, &network.object_ref(&()))
            .await
            .map_err(Error::Hub)?;
    }
    Ok(())
}

/// Deletes the HsnNodes in `have` that are not in `keep`.
pub async fn prune(
    network: &HsnNetwork,
    ctx: &Context,
    have: &BTreeMap<String, HsnNode>,
    keep: impl Fn(&str) -> bool,
) -> Result<(), Error> {
    let api: Api<HsnNode> =
        Api::namespaced(ctx.hub.clone(), &network.namespace().unwrap_or_default());
    for name in have.keys().filter(|n| !keep(n)) {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => ctx.metrics.hub_write(super::CONTROLLER),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(Error::Hub(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::trust::{Distrust, Placed};
    use crate::resources::Peer;
    use hsn_api::node::AgentPod;

    fn with_heartbeat(t: &str) -> HsnNode {
        let mut n = HsnNode::new(
            "n",
            HsnNodeSpec {
                network: "metro".into(),
                role: Role::Edge,
                cluster: "a".into(),
                node_name: Some("n1".into()),
                ordinal: None,
                assigned_super_node: None,
            },
        );
        n.status = Some(HsnNodeStatus {
            last_heartbeat: Some(Time(t.parse().unwrap())),
            ..Default::default()
        });
        n
    }

    #[test]
    fn ready_follows_the_lease_unless_the_super_is_lost() {
        let now: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let placed = Verdict::Trusted(Placed {
            pod: AgentPod {
                name: "hsn-super-node-0".into(),
                uid: "u0".into(),
            },
            node: Some("n1".into()),
        });
        let lease = |expires: &str, verdict: &Verdict| LeaseInfo {
            expires: Some(expires.parse().unwrap()),
            verdict: verdict.clone(),
            ..LeaseInfo::default()
        };
        let fresh = lease("2026-11-26T10:00:10Z", &placed);
        let lapsed = lease("2026-11-26T09:59:50Z", &placed);
        let unwritten = LeaseInfo::default();
        let forged = lease(
            "2026-11-26T10:00:10Z",
            &Verdict::Refused(Distrust::NoSuchPod("x".into())),
        );
        let reason = |info: Option<&LeaseInfo>, live| {
            let c = readiness(info, live, now);
            (c.status, c.reason)
        };
        assert_eq!(reason(Some(&fresh), true), (true, "LeaseCurrent"));
        assert_eq!(reason(Some(&lapsed), true), (false, "LeaseExpired"));
        assert_eq!(reason(None, true), (false, "NoLease"));
        assert_eq!(reason(Some(&unwritten), true), (false, "NoLease"));
        assert_eq!(reason(Some(&fresh), false), (false, "LeaseExpired"));
        assert_eq!(reason(None, false), (false, "LeaseExpired"));
        // Fresh or not, live or not: a Lease no placed pod wrote says so.
        assert_eq!(reason(Some(&forged), true), (false, "UntrustedLease"));
        assert_eq!(reason(Some(&forged), false), (false, "UntrustedLease"));
    }

    #[test]
    fn status_copies_only_the_placed_pods_lease_and_keeps_the_pinned_key_otherwise() {
        let spec = with_heartbeat("2026-11-26T10:00:05Z").spec;
        let placed = Placed {
            pod: AgentPod {
                name: "hsn-edge-bb-x1".into(),
                uid: "u1".into(),
            },
            node: Some("n1".into()),
        };
        let info = |verdict: Verdict, key: &str| LeaseInfo {
            peer: Peer {
                public_key: Some(key.into()),
                ..Peer::default()
            },
            verdict,
            ..LeaseInfo::default()
        };
        let first = status(
            &spec,
            Some(info(Verdict::Trusted(placed.clone()), "k1")),
            None,
        );
        assert_eq!(first.public_key.as_deref(), Some("k1"));
        assert_eq!(first.agent_pod.as_ref(), Some(&placed.pod));
        let mut previous = with_heartbeat("2026-11-26T10:00:05Z");
        previous.status = Some(first.clone());
        let refused = Verdict::Refused(Distrust::NoSuchPod("forger".into()));
        let kept = status(&spec, Some(info(refused, "k-forged")), Some(&previous));
        assert_eq!(kept, first, "nothing of a refused Lease enters the status");
        assert_eq!(status(&spec, None, Some(&previous)), first);
    }

    #[test]
    fn heartbeats_are_recorded_to_the_second_and_only_once_a_resolution() {
        let at = |t: &str| Some(t.parse::<Timestamp>().unwrap());
        // First sight: the renewal, without its microseconds.
        assert_eq!(
            heartbeat(None, at("2026-11-26T10:00:05.123456Z")),
            Some(Time("2026-11-26T10:00:05Z".parse().unwrap()))
        );
        let prev = with_heartbeat("2026-11-26T10:00:05Z");
        // Renewals within the resolution keep the recorded one: no status write.
        assert_eq!(
            heartbeat(Some(&prev), at("2026-11-26T10:00:59.9Z")),
            Some(Time("2026-11-26T10:00:05Z".parse().unwrap()))
        );
        // A minute later it moves.
        assert_eq!(
            heartbeat(Some(&prev), at("2026-11-26T10:01:05.5Z")),
            Some(Time("2026-11-26T10:01:05Z".parse().unwrap()))
        );
        // A renewal before the recorded one (clock skew, a new Lease) replaces it.
        assert_eq!(
            heartbeat(Some(&prev), at("2026-11-26T09:59:00Z")),
            Some(Time("2026-11-26T09:59:00Z".parse().unwrap()))
        );
        assert_eq!(heartbeat(Some(&prev), None), None);
    }
}
