//! Whether a Lease speaks for the agent the operator placed. What a Lease says (address,
//! public key, heartbeat) is used only when its holder is a pod of the network's workload
//! for that Lease, on the expected node, running as its role's ServiceAccount, and still the
//! very pod that wrote it (UID); and when the key it carries is the one that pod published
//! first (pinned in the HsnNode's status). Pure: fetch reads, this judges.

use std::collections::BTreeMap;

use hsn_api::HsnNodeReason;
use hsn_api::node::{AgentPod, HsnNodeStatus, lease};
use hsn_core::{Role, SuperId};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::resources::{SUPER_NODE, agent_identity};

/// Prefix of every edge DaemonSet's name ([`crate::resources::edge_daemonset`]).
const EDGE_DAEMONSET_PREFIX: &str = "hsn-edge-";

/// What a Lease's trust is judged on, of one pod of the network's workloads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// Its UID.
    pub uid: String,
    /// The node it runs on.
    pub node: Option<String>,
    /// Its ServiceAccount.
    pub service_account: Option<String>,
    /// Kind and name of its controller (owner reference with `controller: true`).
    pub controller: Option<(String, String)>,
}

impl PodFacts {
    /// The facts of `pod`, by its name.
    pub fn of(pod: &Pod) -> (String, Self) {
        let spec = pod.spec.as_ref();
        let controller = pod
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| (o.kind.clone(), o.name.clone()));
        let facts = Self {
            uid: pod.uid().unwrap_or_default(),
            node: spec.and_then(|s| s.node_name.clone()),
            service_account: spec.and_then(|s| s.service_account_name.clone()),
            controller,
        };
        (pod.name_any(), facts)
    }
}

/// The network's pods in one member namespace by name, or why they could not be read.
pub type Pods = Result<BTreeMap<String, PodFacts>, String>;

/// The agent a Lease is for, from its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seat {
    /// `super-<ordinal>`: the StatefulSet's pod of that ordinal.
    Super(u32),
    /// `edge-<node>`: the edge DaemonSet's pod on that node.
    Edge(String),
}

impl Seat {
    /// The seat a Lease name stands for; `None` for a Lease that is no agent's.
    pub fn of(lease_name: &str) -> Option<Self> {
        SuperId::ordinal_of(lease_name)
            .map(Self::Super)
            .or_else(|| lease::edge_node_of(lease_name).map(|n| Self::Edge(n.to_owned())))
    }

    /// The role of the agent in this seat.
    pub fn role(&self) -> Role {
        match self {
            Self::Super(_) => Role::Super,
            Self::Edge(_) => Role::Edge,
        }
    }
}

/// What a Lease claims about who wrote it and what it publishes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Claim<'a> {
    /// `spec.holderIdentity`: the pod's name.
    pub holder: Option<&'a str>,
    /// The pod's UID (annotation).
    pub pod_uid: Option<&'a str>,
    /// The public key (annotation).
    pub public_key: Option<&'a str>,
}

/// A Lease written by the pod placed for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The pod.
    pub pod: AgentPod,
    /// The node it runs on.
    pub node: Option<String>,
}

/// Why what a Lease says is ignored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Distrust {
    /// The network's pods could not be read: no holder can be checked.
    #[error("the network's pods in this cluster could not be read ({0})")]
    PodsUnreadable(String),
    /// No holder pod or UID.
    #[error("the Lease names no holder pod and UID")]
    NoHolder,
    /// The holder is no pod of the network.
    #[error("its holder {0} is not a pod of this network")]
    NoSuchPod(String),
    /// The holder's name is now another pod's (a StatefulSet pod replaced).
    #[error("its holder {pod} (UID {claimed}) has been replaced by UID {current}")]
    Replaced {
        /// Pod name.
        pod: String,
        /// The UID the Lease names.
        claimed: String,
        /// The UID of the pod of that name now.
        current: String,
    },
    /// The holder is not the pod the operator placed for this Lease.
    #[error("its holder {pod} is not {want}")]
    NotPlaced {
        /// Pod name.
        pod: String,
        /// Which pod should hold it.
        want: String,
    },
    /// The holder runs as another ServiceAccount than its role's.
    #[error("its holder {pod} runs as ServiceAccount {account:?}, not {want}")]
    WrongAccount {
        /// Pod name.
        pod: String,
        /// Its ServiceAccount.
        account: Option<String>,
        /// The role's.
        want: &'static str,
    },
    /// The pod that published the pinned key announces another one.
    #[error("pod {pod} published key {pinned} and now announces {announced:?}; refused")]
    KeyChanged {
        /// Pod name.
        pod: String,
        /// The key pinned in the HsnNode's status.
        pinned: String,
        /// The key in the Lease.
        announced: Option<String>,
    },
}

impl Distrust {
    /// The HsnNode's Ready reason for this refusal.
    pub fn reason(&self) -> HsnNodeReason {
        match self {
            Self::KeyChanged { .. } => HsnNodeReason::KeyChanged,
            _ => HsnNodeReason::UntrustedLease,
        }
    }
}

/// Judges the Lease of `seat` claiming `claim`, against the network's `pods` and the
/// HsnNode's status (`pinned`: the pod and key it recorded).
pub fn vet(
    seat: &Seat,
    claim: Claim<'_>,
    pods: &Pods,
    pinned: Option<&HsnNodeStatus>,
) -> Result<Placed, Distrust> {
    let pods = pods
        .as_ref()
        .map_err(|e| Distrust::PodsUnreadable(e.clone()))?;
    let (Some(holder), Some(uid)) = (claim.holder, claim.pod_uid) else {
        return Err(Distrust::NoHolder);
    };
    let pod = pods
        .get(holder)
        .ok_or_else(|| Distrust::NoSuchPod(holder.to_owned()))?;
    if pod.uid != uid {
        return Err(Distrust::Replaced {
            pod: holder.to_owned(),
            claimed: uid.to_owned(),
            current: pod.uid.clone(),
        });
    }
    let not_placed = |want: String| Distrust::NotPlaced {
        pod: holder.to_owned(),
        want,
    };
    let controller = pod
        .controller
        .as_ref()
        .map(|(k, n)| (k.as_str(), n.as_str()));
    match seat {
        Seat::Super(ordinal) => {
            let want = format!("{SUPER_NODE}-{ordinal}");
            if holder != want || controller != Some(("StatefulSet", SUPER_NODE)) {
                return Err(not_placed(format!("StatefulSet {SUPER_NODE}'s pod {want}")));
            }
        }
        Seat::Edge(node) => {
            let edge_ds = controller
                .is_some_and(|(k, n)| k == "DaemonSet" && n.starts_with(EDGE_DAEMONSET_PREFIX));
            if !edge_ds || pod.node.as_deref() != Some(node) {
                return Err(not_placed(format!(
                    "an edge DaemonSet's pod on node {node}"
                )));
            }
        }
    }
    let want = agent_identity(seat.role());
    if pod.service_account.as_deref() != Some(want) {
        return Err(Distrust::WrongAccount {
            pod: holder.to_owned(),
            account: pod.service_account.clone(),
            want,
        });
    }
    let me = AgentPod {
        name: holder.to_owned(),
        uid: uid.to_owned(),
    };
    if let Some(pinned_key) = pinned
        .filter(|s| s.agent_pod.as_ref() == Some(&me))
        .and_then(|s| s.public_key.as_deref())
        .filter(|k| claim.public_key != Some(*k))
    {
        return Err(Distrust::KeyChanged {
            pod: holder.to_owned(),
            pinned: pinned_key.to_owned(),
            announced: claim.public_key.map(str::to_owned),
        });
    }
    Ok(Placed {
        pod: me,
        node: pod.node.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{EDGE_AGENT_IDENTITY, SUPER_AGENT_IDENTITY};

    fn facts(uid: &str, node: &str, account: &str, kind: &str, owner: &str) -> PodFacts {
        PodFacts {
            uid: uid.into(),
            node: Some(node.into()),
            service_account: Some(account.into()),
            controller: Some((kind.into(), owner.into())),
        }
    }

    fn pods() -> Pods {
        Ok(BTreeMap::from([
            (
                "hsn-super-node-0".to_string(),
                facts(
                    "u-s0",
                    "n9",
                    SUPER_AGENT_IDENTITY,
                    "StatefulSet",
                    SUPER_NODE,
                ),
            ),
            (
                "hsn-super-node-1".to_string(),
                facts(
                    "u-s1",
                    "n8",
                    SUPER_AGENT_IDENTITY,
                    "StatefulSet",
                    SUPER_NODE,
                ),
            ),
            (
                "hsn-edge-bb-x1".to_string(),
                facts(
                    "u-e1",
                    "n1",
                    EDGE_AGENT_IDENTITY,
                    "DaemonSet",
                    "hsn-edge-bb",
                ),
            ),
            (
                "hsn-edge-bb-x2".to_string(),
                facts(
                    "u-e2",
                    "n2",
                    EDGE_AGENT_IDENTITY,
                    "DaemonSet",
                    "hsn-edge-bb",
                ),
            ),
            // Right workload and node, wrong ServiceAccount.
            (
                "hsn-edge-bb-x3".to_string(),
                facts(
                    "u-e3",
                    "n3",
                    SUPER_AGENT_IDENTITY,
                    "DaemonSet",
                    "hsn-edge-bb",
                ),
            ),
            // A pod someone made by hand on n4.
            (
                "debug".to_string(),
                facts("u-d", "n4", EDGE_AGENT_IDENTITY, "ReplicaSet", "debug"),
            ),
        ]))
    }

    fn claim<'a>(holder: &'a str, uid: &'a str, key: &'a str) -> Claim<'a> {
        Claim {
            holder: Some(holder),
            pod_uid: Some(uid),
            public_key: Some(key),
        }
    }

    fn edge(node: &str) -> Seat {
        Seat::Edge(node.into())
    }

    #[test]
    fn seats_come_from_lease_names() {
        assert_eq!(Seat::of("super-3"), Some(Seat::Super(3)));
        assert_eq!(Seat::of("edge-n1"), Some(edge("n1")));
        assert_eq!(Seat::of("hsn-operator"), None);
        assert_eq!(Seat::of("super-x"), None);
    }

    #[test]
    fn the_placed_pod_is_trusted() {
        let placed = vet(
            &Seat::Super(1),
            claim("hsn-super-node-1", "u-s1", "k"),
            &pods(),
            None,
        );
        assert_eq!(placed.unwrap().node.as_deref(), Some("n8"));
        let placed = vet(
            &edge("n2"),
            claim("hsn-edge-bb-x2", "u-e2", "k"),
            &pods(),
            None,
        );
        assert_eq!(placed.unwrap().pod.name, "hsn-edge-bb-x2");
    }

    #[test]
    fn any_other_holder_is_refused_with_its_reason() {
        let refused = |seat: &Seat, c: Claim<'_>| vet(seat, c, &pods(), None).unwrap_err();
        // An edge's pod holding a super's Lease, or another edge's.
        assert!(matches!(
            refused(&Seat::Super(0), claim("hsn-edge-bb-x1", "u-e1", "k")),
            Distrust::NotPlaced { .. }
        ));
        assert!(matches!(
            refused(&edge("n2"), claim("hsn-edge-bb-x1", "u-e1", "k")),
            Distrust::NotPlaced { .. }
        ));
        // Super 1's pod holding super 0's Lease.
        assert!(matches!(
            refused(&Seat::Super(0), claim("hsn-super-node-1", "u-s1", "k")),
            Distrust::NotPlaced { .. }
        ));
        // A hand-made pod on the right node.
        assert!(matches!(
            refused(&edge("n4"), claim("debug", "u-d", "k")),
            Distrust::NotPlaced { .. }
        ));
        assert!(matches!(
            refused(&edge("n3"), claim("hsn-edge-bb-x3", "u-e3", "k")),
            Distrust::WrongAccount { .. }
        ));
        assert_eq!(
            refused(&edge("n1"), claim("gone", "u-g", "k")),
            Distrust::NoSuchPod("gone".into())
        );
        assert!(matches!(
            refused(&Seat::Super(0), claim("hsn-super-node-0", "u-old", "k")),
            Distrust::Replaced { .. }
        ));
        let no_uid = Claim {
            pod_uid: None,
            ..claim("hsn-edge-bb-x1", "", "k")
        };
        assert_eq!(refused(&edge("n1"), no_uid), Distrust::NoHolder);
        let unreadable = vet(
            &edge("n1"),
            claim("hsn-edge-bb-x1", "u-e1", "k"),
            &Err("403".into()),
            None,
        );
        assert_eq!(
            unreadable.unwrap_err().reason(),
            HsnNodeReason::UntrustedLease
        );
    }

    #[test]
    fn a_key_is_pinned_to_its_pod_and_a_new_pod_may_bring_a_new_one() {
        let status = |pod: &str, uid: &str, key: &str| HsnNodeStatus {
            public_key: Some(key.into()),
            agent_pod: Some(AgentPod {
                name: pod.into(),
                uid: uid.into(),
            }),
            ..Default::default()
        };
        let pinned = status("hsn-super-node-0", "u-s0", "k1");
        let seat = Seat::Super(0);
        let same = vet(
            &seat,
            claim("hsn-super-node-0", "u-s0", "k1"),
            &pods(),
            Some(&pinned),
        );
        assert!(same.is_ok());
        let changed = vet(
            &seat,
            claim("hsn-super-node-0", "u-s0", "k2"),
            &pods(),
            Some(&pinned),
        )
        .unwrap_err();
        assert_eq!(changed.reason(), HsnNodeReason::KeyChanged);
        let dropped = Claim {
            public_key: None,
            ..claim("hsn-super-node-0", "u-s0", "")
        };
        assert!(vet(&seat, dropped, &pods(), Some(&pinned)).is_err());
        // The key came from an earlier pod of the same name: this one may bring its own.
        let earlier = status("hsn-super-node-0", "u-before", "k1");
        let new_pod = vet(
            &seat,
            claim("hsn-super-node-0", "u-s0", "k2"),
            &pods(),
            Some(&earlier),
        );
        assert_eq!(new_pod.unwrap().pod.uid, "u-s0");
    }
}
