//! Two networks on one MEC cluster, on real control planes (a hub, a kwok member with a
//! scheduler and fake kubelets, the operator as a process): the older network keeps its
//! nodes and the cluster's super-node capacity; the newer one plans around them and says
//! so in its conditions and Events, never Healthy while its pods cannot be scheduled.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use hsn_api::{HsnNetwork, HsnNode, MecCluster};
use hsn_testkit::operator::*;
use hsn_testkit::wait_for;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const CLUSTER: &str = "mec-a";

fn network(namespace: &str, name: &str, replicas: i32) -> Result<HsnNetwork> {
    // An empty node selector: every node of every cluster.
    Ok(serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "superNodes": {"replicas": replicas},
            "edgePools": [{"name": "all", "sliceType": "eMBB"}]
        }
    }))?)
}

async fn create_network(hub: &Client, namespace: &str, name: &str, replicas: i32) -> Result<()> {
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(hub.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Api::<HsnNetwork>::namespaced(hub.clone(), namespace)
        .create(&PostParams::default(), &network(namespace, name, replicas)?)
        .await?;
    Ok(())
}

/// The network's condition `type_` once `done` accepts it: (status, reason, message).
async fn condition_until(
    api: &Api<HsnNetwork>,
    name: &str,
    type_: &str,
    done: impl Fn(&str, &str, &str) -> bool,
) -> Result<(String, String, String)> {
    Ok(
        wait_for(&format!("HsnNetwork {name} {type_}"), DEADLINE, || async {
            let n = api.get(name).await.ok()?;
            let c = n
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == type_)?;
            done(&c.status, &c.reason, &c.message).then_some((c.status, c.reason, c.message))
        })
        .await?,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_network_leaves_an_older_ones_nodes_and_capacity_and_reports_it() -> Result<()> {
    let (hub, member_cluster) = hub_with_member(CLUSTER, "eu-west", 3).await?;
    Api::<MecCluster>::all(hub.client())
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"capacity": {"maxSuperNodes": 2}}})),
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let op = Operator::start(hub.kubeconfig(), dir.path(), &[], &[]).await?;
    with_process_log(&op, scenario(&hub.client(), &member_cluster.client())).await
}

async fn scenario(hub: &Client, member: &Client) -> Result<()> {
    // The older network: one super node, an edge on each of the three nodes.
    create_network(hub, "team-a", "older", 1).await?;
    let older = Api::<HsnNetwork>::namespaced(hub.clone(), "team-a");
    wait_condition(&older, "older", "Ready", "True", Some("AllAgentsReady")).await?;

    // The newer network wants two super nodes (the cluster has room for one more) and an
    // edge on every node (each runs an agent of the older network).
    create_network(hub, "team-b", "newer", 2).await?;
    let newer = Api::<HsnNetwork>::namespaced(hub.clone(), "team-b");
    let wanted = [
        "1 super node fits on no Ready, uncordoned, selected cluster with room \
         (capacity.maxSuperNodes counts the super nodes of other networks: 1 on mec-a)",
        "3 selected nodes run another network's agent, so this network runs none there",
        "mec-a/node-1 (network team-a/older)",
        // Its one super node has no node left: each runs an agent of the older network.
        "1 agent pod cannot be scheduled: pod hsn-super-node-0 in cluster mec-a: 0/3 nodes are available",
        "anti-affinity",
    ];
    let (_, reason, message) = condition_until(&newer, "newer", "Degraded", |status, _, m| {
        status == "True" && wanted.iter().all(|w| m.contains(w))
    })
    .await?;
    eprintln!("newer Degraded={reason}: {message}");
    ensure!(
        reason == "InsufficientCapacity",
        "Degraded reason {reason}: {message}"
    );
    let (status, reason, _) = condition_until(&newer, "newer", "Ready", |_, _, _| true).await?;
    ensure!(
        (status.as_str(), reason.as_str()) == ("False", "AgentsNotReady"),
        "newer Ready={status} {reason}"
    );

    // The newer network runs one super replica and no edge; the older one is untouched.
    let sts = Api::<StatefulSet>::namespaced(member.clone(), "hsn-newer")
        .get("hsn-super-node")
        .await?;
    ensure!(sts.spec.and_then(|s| s.replicas) == Some(1));
    let daemonsets = Api::<DaemonSet>::namespaced(member.clone(), "hsn-newer")
        .list(&ListParams::default())
        .await?;
    ensure!(
        daemonsets.items.is_empty(),
        "the newer network got an edge DaemonSet"
    );
    let roles: BTreeMap<String, String> = Api::<HsnNode>::namespaced(hub.clone(), "team-b")
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|n| {
            (
                n.name_any(),
                hsn_api::node::api_role::name(n.spec.role).to_string(),
            )
        })
        .collect();
    ensure!(
        roles.values().all(|r| r == "Super") && roles.len() == 1,
        "newer HsnNodes: {roles:?}"
    );
    wait_condition(&older, "older", "Ready", "True", Some("AllAgentsReady")).await?;
    let (status, reason, _) = condition_until(&older, "older", "Degraded", |_, _, _| true).await?;
    ensure!(
        (status.as_str(), reason.as_str()) == ("False", "Healthy"),
        "older Degraded={status} {reason}"
    );

    // Each change of Degraded was an Event on the newer network, readable as it stands.
    let events = wait_for(
        "a Warning Event naming the node conflict",
        DEADLINE,
        || async {
            let list = Api::<Event>::namespaced(hub.clone(), "team-b")
                .list(&ListParams::default())
                .await
                .ok()?;
            let notes: Vec<(String, String)> = list
                .items
                .into_iter()
                .filter(|e| e.type_.as_deref() == Some("Warning"))
                .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
                .collect();
            notes
                .iter()
                .any(|(reason, note)| {
                    reason == "InsufficientCapacity" && note.contains("run another network's agent")
                })
                .then_some(notes)
        },
    )
    .await?;
    ensure!(
        events.iter().all(|(_, note)| note.len() <= 1024),
        "{events:?}"
    );
    Ok(())
}
