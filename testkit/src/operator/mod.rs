//! The operator's test harness (feature `operator`): a hub and MEC clusters, the operator
//! running against them, and helpers that wait on conditions with deadlines. Used by
//! hsn-operator's integration tests and `make bench-operator`, and by the agent's tests that
//! need a member's objects exactly as the operator writes them ([`apply_member_objects`]).
//!
//! By default everything runs here: a hub control plane, kwok member clusters with fake
//! nodes, the operator as a process ([`Operator`]). The `HSN_E2E_*` variables ([`E2eEnv`])
//! point the same suite at clusters that already exist instead, e.g. kind with the operator
//! installed by Helm (kind/README.md).
//!
//! Errors are `anyhow`'s: this is test code, and every caller is a test or a bench.

mod access;
mod agents;
mod churn;
mod env;
mod in_cluster;
mod leases;
mod members;
mod process;

pub use access::{as_service_account, member_access};
pub use agents::{
    EDGE_AGENT_IDENTITY, EDGE_NODE, EDGE_POOL, MEMBER, SUPER_AGENT_IDENTITY, agent_identity,
    apply_member_objects, apply_objects, edge_on, ledger_tls, one_of_each,
};
pub use churn::{after_loss, moved_and_ideal};
pub use env::{E2eEnv, HUB_VAR, Hub, MEMBERS_VAR, NODE_EXEC_VAR, OPERATOR_VAR, client_for};
pub use in_cluster::{InCluster, OperatorUnderTest};
pub use leases::{LeaseWrite, PodId, edge_pod, put_lease, put_super_lease, super_key, super_pod};
pub use members::{AGENTS_TAINT, Member, NOWHERE, Topology, members, node_exec};
pub use process::{Operator, sum_samples};

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use hsn_api::{HsnNetwork, HsnNode, MecCluster};
use hsn_operator::member::EDGE_CAPABLE_LABEL;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};

use crate::{FakeNode, KwokCluster, wait_for};

/// Deadline of each wait in the e2e tests (2 cores running three control planes).
pub const DEADLINE: Duration = Duration::from_secs(180);
/// Namespace of the operator and of the kubeconfig Secrets.
pub const OPERATOR_NS: &str = "hsn-system";

/// Fake nodes for a member in `region`: zones `<region>-1a/1b`, `per_zone` nodes each; the
/// first `edges` of each zone are edge-capable, alternating broadband and IoT slices.
pub fn nodes(region: &str, per_zone: usize, edges: usize) -> Vec<FakeNode> {
    let mut out = Vec::new();
    for zone in [format!("{region}-1a"), format!("{region}-1b")] {
        for i in 1..=per_zone {
            let mut n = FakeNode::new(&format!("{zone}-node-{i}"), region, &zone);
            if i <= edges {
                let slice = if i % 2 == 1 { "embb" } else { "mmtc" };
                n = n
                    .label(EDGE_CAPABLE_LABEL, "true")
                    .label("hsn.io/slice", slice);
            }
            out.push(n);
        }
    }
    out
}

/// Creates the CRDs in the hub and waits until they are served.
pub async fn install_crds(hub: &Client) -> Result<()> {
    crate::install_crds(hub, &hsn_api::crdgen::crds(), DEADLINE).await?;
    let ns: Api<Namespace> = Api::all(hub.clone());
    let meta = ObjectMeta {
        name: Some(OPERATOR_NS.into()),
        ..Default::default()
    };
    ns.create(
        &PostParams::default(),
        &Namespace {
            metadata: meta,
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// Stores `kubeconfig` in a Secret of the operator namespace.
pub async fn kubeconfig_secret(hub: &Client, name: &str, kubeconfig: &[u8]) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), OPERATOR_NS);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".to_string(),
            ByteString(kubeconfig.to_vec()),
        )])),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;
    Ok(())
}

/// Registers a member cluster in the hub, in zone `<region>-1a`.
pub async fn mec_cluster(hub: &Client, name: &str, region: &str, secret: &str) -> Result<()> {
    mec_cluster_in(hub, name, region, &format!("{region}-1a"), secret).await
}

/// Registers a member cluster in the hub: tier `mec`, its kubeconfig in Secret `secret`.
pub async fn mec_cluster_in(
    hub: &Client,
    name: &str,
    region: &str,
    zone: &str,
    secret: &str,
) -> Result<()> {
    let mec: MecCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "MecCluster",
        "metadata": {"name": name, "labels": {"hsn.io/tier": "mec"}},
        "spec": {"kubeconfigSecretRef": {"name": secret}, "region": region, "zone": zone}
    }))?;
    Api::<MecCluster>::all(hub.clone())
        .create(&PostParams::default(), &mec)
        .await?;
    Ok(())
}

/// A member cluster: a kwok cluster with fake nodes, registered in the hub.
pub async fn member(
    hub: &Client,
    name: &str,
    region: &str,
    nodes: &[FakeNode],
) -> Result<KwokCluster> {
    let cluster = KwokCluster::create(name).await?;
    cluster.add_nodes(nodes).await?;
    // The operator reaches the member as a user's install lets it: the chart's member
    // identity (a token of its ServiceAccount), never the cluster's admin.
    let admin = cluster.self_contained_kubeconfig()?;
    let kubeconfig = member_access(&cluster.client(), &admin).await?;
    kubeconfig_secret(hub, name, &kubeconfig).await?;
    mec_cluster(hub, name, region, name).await?;
    Ok(cluster)
}

/// A hub with the CRDs and one member `name` in `region`, its `nodes` fake nodes named
/// `node-<i>` in the zone `<region>-1a`: the smallest world a network runs in.
pub async fn hub_with_member(
    name: &str,
    region: &str,
    nodes: usize,
) -> Result<(crate::ControlPlane, KwokCluster)> {
    let hub = crate::ControlPlane::start().await?;
    install_crds(&hub.client()).await?;
    let zone = format!("{region}-1a");
    let nodes: Vec<FakeNode> = (1..=nodes)
        .map(|i| FakeNode::new(&format!("node-{i}"), region, &zone))
        .collect();
    let cluster = member(&hub.client(), name, region, &nodes).await?;
    Ok((hub, cluster))
}

/// Waits until the network's condition `type_` has `status` (and `reason`, if given).
pub async fn wait_condition(
    api: &Api<HsnNetwork>,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<HsnNetwork> {
    let what = format!("HsnNetwork {name} {type_}={status} {reason:?}");
    Ok(wait_for(&what, DEADLINE, || async {
        let n = api.get(name).await.ok()?;
        let c = n
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == type_)?
            .clone();
        (c.status == status && reason.is_none_or(|r| c.reason == r)).then_some(n)
    })
    .await?)
}

/// Runs `f`; on error, appends the operator's log tail.
pub async fn with_log<T>(op: &OperatorUnderTest, f: impl Future<Output = Result<T>>) -> Result<T> {
    match f.await {
        Ok(v) => Ok(v),
        Err(e) => bail!("{e:#}\n--- operator log tail ---\n{}", op.log_tail().await),
    }
}

/// Like [`with_log`], for an operator started as a process here ([`Operator`]).
pub async fn with_process_log<T>(op: &Operator, f: impl Future<Output = Result<T>>) -> Result<T> {
    match f.await {
        Ok(v) => Ok(v),
        Err(e) => bail!("{e:#}\n--- operator log tail ---\n{}", op.log_tail()),
    }
}

/// The (status, reason, message) of a MecCluster's condition `type_`, if set.
pub fn mec_condition(mec: &MecCluster, type_: &str) -> Option<(String, String, String)> {
    let c = mec
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The edge HsnNodes in `namespace`, in list order: (cluster, node, assigned super HsnNode).
pub async fn edge_assignments(
    hub: &Client,
    namespace: &str,
) -> Result<Vec<(String, String, String)>> {
    let nodes = Api::<HsnNode>::namespaced(hub.clone(), namespace)
        .list(&ListParams::default())
        .await?;
    Ok(nodes
        .items
        .into_iter()
        .filter_map(|n| {
            Some((
                n.spec.cluster,
                n.spec.node_name?,
                n.spec.assigned_super_node?,
            ))
        })
        .collect())
}

/// Name of a resource, for messages.
pub fn name_of<K: ResourceExt>(k: &K) -> String {
    k.name_any()
}

/// Creates node `name` in the cluster `client` reaches, with no kubelet behind it: its
/// Ready condition is written here and nothing changes it. Edge-capable, in region `hub`,
/// zone `hub-1a`, so a hub with a `local: true` MecCluster is a member hosting an edge.
pub async fn hand_made_ready_node(client: &Client, name: &str) -> Result<()> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let node = serde_json::json!({"metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name, EDGE_CAPABLE_LABEL: "true",
        "topology.kubernetes.io/region": "hub", "topology.kubernetes.io/zone": "hub-1a"}}});
    nodes
        .create(&PostParams::default(), &serde_json::from_value(node)?)
        .await?;
    let status = serde_json::json!({"status": {"conditions": [{"type": "Ready",
        "status": "True", "reason": "KubeletReady", "message": "written by the test"}]}});
    nodes
        .patch_status(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&status),
        )
        .await?;
    Ok(())
}
