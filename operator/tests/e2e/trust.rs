//! Step 3c: what a Lease says counts only when the pod the operator placed wrote it. A
//! super node's Lease written by an edge's pod, an edge's by another edge's pod, or the
//! placed pod announcing a second key: none reaches HsnNode status or the routes, and the
//! HsnNode says why. The placed pod's Lease does; a replaced pod may bring a new key. And an
//! HsnNode made by hand, claiming the network with a key in its status, is removed.

use anyhow::{Result, ensure};
use hsn_api::node::lease::{edge_lease, super_lease};
use hsn_api::routes::RoutesTable;
use hsn_api::{HsnNode, HsnNodeReason};
use hsn_testkit::operator::{
    DEADLINE, LeaseWrite, PodId, edge_pod, put_lease, super_key, super_pod, wait_condition,
};
use hsn_testkit::wait_for;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::reads::{assignments, routes};
use crate::{MEMBER_NS, NET, NS, Suite};

pub(crate) async fn trust(s: &Suite) -> Result<()> {
    forged_node_removed(s).await?;
    if s.live_agents() {
        eprintln!(
            "step 3c (Leases written as pods) skipped: real agents renew their own Leases \
             here and would overwrite what the suite writes"
        );
        return Ok(());
    }
    super_lease_trust(s).await?;
    edge_lease_trust(s).await
}

/// The HsnNode of `name`, once `ok` holds for it.
async fn node_when(
    hub: &Client,
    name: &str,
    what: &str,
    ok: impl Fn(&HsnNode) -> bool,
) -> Result<HsnNode> {
    let nodes: Api<HsnNode> = Api::namespaced(hub.clone(), NS);
    Ok(wait_for(&format!("{name}: {what}"), DEADLINE, || async {
        nodes.get(name).await.ok().filter(|n| ok(n))
    })
    .await?)
}

fn ready_reason(n: &HsnNode) -> Option<&str> {
    let st = n.status.as_ref()?;
    let c = st.conditions.iter().find(|c| c.type_ == "Ready")?;
    Some(c.reason.as_str())
}

fn key(n: &HsnNode) -> Option<&str> {
    n.status.as_ref()?.public_key.as_deref()
}

fn pod_of(n: &HsnNode) -> Option<&str> {
    Some(n.status.as_ref()?.agent_pod.as_ref()?.name.as_str())
}

/// Step 3c, super node: an edge's pod (a real pod of the network, the wrong workload and
/// ServiceAccount) writing a super's Lease is ignored and the super counts as lost; its
/// placed pod's Lease is trusted.
async fn super_lease_trust(s: &Suite) -> Result<()> {
    let (hub, a, nets) = (s.hub(), &s.a, s.nets());
    let ac = a.client();
    // The super node of A that guarantees edges, as step 3b picks it.
    let ordinal = crate::lease::guarding_super(&hub, a).await?;
    let name = Suite::super_node(a, ordinal);
    let lease = super_lease(ordinal);
    let intruder = edge_pod(&ac, MEMBER_NS, &own_edges(&ac).await?[0], None).await?;
    let forged = LeaseWrite {
        public_key: Some("ee".repeat(32)),
        address: Some("10.66.0.1".parse()?),
        ..LeaseWrite::by(intruder.clone())
    };
    put_lease(&ac, MEMBER_NS, &lease, &forged).await?;
    let n = node_when(&hub, &name, "UntrustedLease", |n| {
        ready_reason(n) == Some(HsnNodeReason::UntrustedLease.as_str())
    })
    .await?;
    // Its status keeps what the placed pod published (step 3b), nothing of the intruder's.
    ensure!(
        key(&n) == Some(super_key(ordinal).as_str()) && pod_of(&n) != Some(intruder.name.as_str()),
        "the forged Lease reached {name}: {:?}",
        n.status
    );
    // Not a heartbeat of the super node: it is lost, and nowhere advertised.
    wait_condition(&nets, NET, "Degraded", "True", Some("SuperNodesLost")).await?;
    let table = routes(&ac).await?;
    ensure!(
        !mentions(&table, "10.66.0.1"),
        "the forged address reached the routes: {table:?}"
    );

    // The placed pod: trusted, its key in the HsnNode (pinned to it), its address routed.
    let placed = super_pod(&ac, MEMBER_NS, ordinal).await?;
    let write = LeaseWrite {
        public_key: Some(super_key(ordinal)),
        address: Some("10.99.1.2".parse()?),
        ..LeaseWrite::by(placed.clone())
    };
    put_lease(&ac, MEMBER_NS, &lease, &write).await?;
    let n = node_when(&hub, &name, "LeaseCurrent", |n| {
        ready_reason(n) == Some(HsnNodeReason::LeaseCurrent.as_str())
    })
    .await?;
    ensure!(key(&n) == Some(super_key(ordinal).as_str()), "{n:?}");
    ensure!(pod_of(&n) == Some(placed.name.as_str()), "{n:?}");
    wait_condition(&nets, NET, "Degraded", "False", None).await?;
    wait_for("the super's address routed", DEADLINE, || async {
        mentions(&routes(&ac).await.ok()?, "10.99.1.2").then_some(())
    })
    .await?;
    // Back in the assignment (it wins its edges back) before the next step.
    wait_for(&format!("{name} guarantees edges"), DEADLINE, || async {
        let all = assignments(&hub).await.ok()?;
        all.iter().any(|(_, _, sup)| *sup == name).then_some(())
    })
    .await?;
    Ok(())
}

/// Step 3c, edge: another edge's pod writing an edge's Lease is ignored; the placed pod's
/// key is pinned (a second key from it refused); a replaced pod brings its own.
async fn edge_lease_trust(s: &Suite) -> Result<()> {
    let (hub, a) = (s.hub(), &s.a);
    let ac = a.client();
    let edges = own_edges(&ac).await?;
    let (node, other) = (&edges[0], &edges[1]);
    let name = hsn_operator::network::edge_node_name(NET, &a.name, node);
    let lease = edge_lease(node);
    let neighbour = edge_pod(&ac, MEMBER_NS, other, None).await?;
    let edge_write = |pod: &PodId, key: &str| LeaseWrite {
        public_key: Some(key.repeat(32)),
        address: Some("10.98.1.1".parse().expect("an address")),
        ..LeaseWrite::by(pod.clone())
    };
    put_lease(&ac, MEMBER_NS, &lease, &edge_write(&neighbour, "e0")).await?;
    let n = node_when(&hub, &name, "UntrustedLease", |n| {
        ready_reason(n) == Some(HsnNodeReason::UntrustedLease.as_str())
    })
    .await?;
    ensure!(key(&n).is_none(), "{n:?}");
    ensure!(!mentions(&routes(&ac).await?, &"e0".repeat(32)), "routes");

    let placed = edge_pod(&ac, MEMBER_NS, node, None).await?;
    put_lease(&ac, MEMBER_NS, &lease, &edge_write(&placed, "e1")).await?;
    node_when(&hub, &name, "the placed pod's key", |n| {
        key(n) == Some(&"e1".repeat(32)) && pod_of(n) == Some(placed.name.as_str())
    })
    .await?;
    wait_for("the edge's key routed", DEADLINE, || async {
        mentions(&routes(&ac).await.ok()?, &"e1".repeat(32)).then_some(())
    })
    .await?;

    // The same pod announcing another key: refused, the pinned one stays.
    put_lease(&ac, MEMBER_NS, &lease, &edge_write(&placed, "e2")).await?;
    let n = node_when(&hub, &name, "KeyChanged", |n| {
        ready_reason(n) == Some(HsnNodeReason::KeyChanged.as_str())
    })
    .await?;
    ensure!(key(&n) == Some(&"e1".repeat(32)), "{n:?}");
    ensure!(!mentions(&routes(&ac).await?, &"e2".repeat(32)), "routes");

    // A new pod (the DaemonSet replaces the deleted one) may bring a new key.
    Api::<Pod>::namespaced(ac.clone(), MEMBER_NS)
        .delete(&placed.name, &DeleteParams::default())
        .await?;
    let next = edge_pod(&ac, MEMBER_NS, node, Some(&placed)).await?;
    put_lease(&ac, MEMBER_NS, &lease, &edge_write(&next, "e2")).await?;
    node_when(&hub, &name, "the new pod's key", |n| {
        key(n) == Some(&"e2".repeat(32))
            && pod_of(n) == Some(next.name.as_str())
            && ready_reason(n) == Some(HsnNodeReason::LeaseCurrent.as_str())
    })
    .await?;
    Ok(())
}

/// An HsnNode made by hand, labelled with the network and with a key in its status, is
/// removed by the operator.
async fn forged_node_removed(s: &Suite) -> Result<()> {
    let nodes: Api<HsnNode> = Api::namespaced(s.hub(), NS);
    let name = format!("{NET}.{}.super-9", s.a.name);
    let forged: HsnNode = serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNode",
        "metadata": {"name": name, "labels": {"hsn.io/network": NET}},
        "spec": {"network": NET, "role": "Super", "cluster": s.a.name, "ordinal": 9}
    }))?;
    nodes.create(&PostParams::default(), &forged).await?;
    let status = json!({"status": {"publicKey": "f0".repeat(32)}});
    nodes
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    wait_for("the forged HsnNode removed", DEADLINE, || async {
        nodes.get_opt(&name).await.ok()?.is_none().then_some(())
    })
    .await?;
    Ok(())
}

/// The edges of member `ac` (not those of other clusters its super nodes serve), sorted;
/// at least two.
async fn own_edges(ac: &Client) -> Result<Vec<String>> {
    let table = routes(ac).await?;
    let mut nodes: Vec<String> = table
        .edges
        .iter()
        .filter(|e| e.cluster.is_empty())
        .map(|e| e.node.clone())
        .collect();
    nodes.sort();
    ensure!(nodes.len() >= 2, "two edges in the routes: {table:?}");
    Ok(nodes)
}

fn mentions(table: &RoutesTable, text: &str) -> bool {
    serde_json::to_string(table).is_ok_and(|j| j.contains(text))
}
