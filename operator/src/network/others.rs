//! Other networks on the same clusters: what each one holds, read from their HsnNodes, so
//! that the plan leaves it to them.
//!
//! Networks are ordered by age (creation time, then namespace and name): an older network
//! keeps what it has, a newer one plans around it, so two networks never both yield or both
//! take. A newer network's super nodes also hold their node: the plan cannot move a super
//! node (the scheduler places it), so no network pins an edge onto a node where another
//! network's super node runs. The agents' pods refuse to share a node with another
//! network's agents (pod anti-affinity), which keeps super nodes off taken nodes.

use std::collections::BTreeMap;

use hsn_api::{HsnNetwork, HsnNode};
use hsn_core::Role;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::Error;
use crate::context::Context;
use crate::plan::Held;
use crate::resources::NETWORK_UID_LABEL;

/// The order in which networks keep what they hold: oldest first.
fn age(n: &HsnNetwork) -> (Option<Timestamp>, String, String) {
    (
        n.metadata.creation_timestamp.as_ref().map(|t| t.0),
        n.namespace().unwrap_or_default(),
        n.name_any(),
    )
}

/// Per cluster, what the other networks hold that `network` must leave them.
pub async fn held(network: &HsnNetwork, ctx: &Context) -> Result<BTreeMap<String, Held>, Error> {
    let networks = Api::<HsnNetwork>::all(ctx.hub.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::Hub)?
        .items;
    let own = network.uid().unwrap_or_default();
    let others: Vec<&HsnNetwork> = networks
        .iter()
        .filter(|n| n.uid().unwrap_or_default() != own)
        .collect();
    if others.is_empty() {
        return Ok(BTreeMap::new());
    }
    let nodes = crate::lists::list(
        &Api::<HsnNode>::all(ctx.hub.clone()),
        &ListParams::default().labels(NETWORK_UID_LABEL),
        |n| n,
    )
    .await
    .map_err(Error::Hub)?;
    Ok(tally(network, &others, &nodes))
}

/// What `others` hold, from their HsnNodes among `nodes`. Pure.
pub fn tally(
    network: &HsnNetwork,
    others: &[&HsnNetwork],
    nodes: &[HsnNode],
) -> BTreeMap<String, Held> {
    let mine = age(network);
    // uid -> (namespace/name, older than this network)
    let by_uid: BTreeMap<String, (String, bool)> = others
        .iter()
        .map(|n| {
            let who = format!("{}/{}", n.namespace().unwrap_or_default(), n.name_any());
            (n.uid().unwrap_or_default(), (who, age(n) < mine))
        })
        .collect();
    let mut held: BTreeMap<String, Held> = BTreeMap::new();
    for node in nodes {
        let Some((who, older)) = node
            .labels()
            .get(NETWORK_UID_LABEL)
            .and_then(|u| by_uid.get(u))
        else {
            continue;
        };
        let on = held.entry(node.spec.cluster.clone()).or_default();
        let host = match node.spec.role {
            Role::Super => node.status.as_ref().and_then(|s| s.node_name.clone()),
            Role::Edge => node.spec.node_name.clone(),
        };
        match (node.spec.role, older) {
            (Role::Super, true) => on.supers += 1,
            (Role::Edge, true) => on.edges += 1,
            // A newer network's super node holds its node, not capacity; its edges yield.
            (Role::Super, false) => {}
            (Role::Edge, false) => continue,
        }
        if let Some(host) = host {
            on.nodes.entry(host).or_insert_with(|| who.clone());
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use hsn_api::HsnNodeSpec;
    use hsn_api::node::HsnNodeStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn network(ns: &str, name: &str, created: &str) -> HsnNetwork {
        let mut n: HsnNetwork = serde_json::from_value(serde_json::json!({
            "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
            "spec": {"superNodes": {"replicas": 1}, "edgePools": [{"name": "p", "sliceType": "eMBB"}]}
        }))
        .unwrap();
        n.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
        n
    }

    fn agent(of: &str, cluster: &str, role: Role, host: &str) -> HsnNode {
        let mut n = HsnNode::new(
            &format!("{of}.{cluster}.{host}"),
            HsnNodeSpec {
                network: of.into(),
                role,
                cluster: cluster.into(),
                node_name: (role == Role::Edge).then(|| host.to_string()),
                ordinal: (role == Role::Super).then_some(0),
                assigned_super_node: None,
            },
        );
        n.metadata.labels = Some(BTreeMap::from([(
            NETWORK_UID_LABEL.to_string(),
            format!("uid-{of}"),
        )]));
        n.status = (role == Role::Super).then(|| HsnNodeStatus {
            node_name: Some(host.into()),
            ..Default::default()
        });
        n
    }

    #[test]
    fn older_networks_hold_capacity_and_nodes_newer_ones_only_their_super_nodes_nodes() {
        let me = network("b", "me", "2026-01-02T00:00:00Z");
        let old = network("a", "old", "2026-01-01T00:00:00Z");
        let new = network("c", "new", "2026-01-03T00:00:00Z");
        let nodes = [
            agent("old", "mec-a", Role::Super, "n1"),
            agent("old", "mec-a", Role::Edge, "n2"),
            agent("old", "mec-b", Role::Edge, "n1"),
            agent("new", "mec-a", Role::Super, "n3"),
            agent("new", "mec-a", Role::Edge, "n4"),
            agent("me", "mec-a", Role::Edge, "n5"),
        ];
        let held = tally(&me, &[&old, &new], &nodes);
        let a = &held["mec-a"];
        assert_eq!((a.supers, a.edges), (1, 1));
        assert_eq!(
            a.nodes,
            BTreeMap::from([
                ("n1".to_string(), "a/old".to_string()),
                ("n2".to_string(), "a/old".to_string()),
                ("n3".to_string(), "c/new".to_string()),
            ])
        );
        let b = &held["mec-b"];
        assert_eq!((b.supers, b.edges), (0, 1));
        assert_eq!(
            b.nodes,
            BTreeMap::from([("n1".to_string(), "a/old".to_string())])
        );
    }

    #[test]
    fn networks_created_in_the_same_second_are_ordered_by_namespace_and_name() {
        let first = network("a", "x", "2026-01-01T00:00:00Z");
        let second = network("a", "y", "2026-01-01T00:00:00Z");
        let nodes = [
            agent("x", "mec-a", Role::Edge, "n1"),
            agent("y", "mec-a", Role::Edge, "n2"),
        ];
        assert_eq!(tally(&second, &[&first], &nodes)["mec-a"].edges, 1);
        assert!(tally(&first, &[&second], &nodes)["mec-a"].nodes.is_empty());
    }
}
