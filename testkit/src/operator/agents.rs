//! A network's objects in a member exactly as the operator renders them, for tests that run
//! agents (or judge what they may do) without running the operator.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use hsn_api::HsnNetwork;
use hsn_operator::plan::{ClusterPlan, Plan};
use hsn_operator::resources::{Chain, MemberObject, Owner, Peers, member_objects};
use kube::Client;

/// Names of the agents' ServiceAccounts (and their Role and RoleBinding) in a member.
pub use hsn_operator::resources::{EDGE_AGENT_IDENTITY, SUPER_AGENT_IDENTITY, agent_identity};

/// The member the objects are rendered for.
pub const MEMBER: &str = "m1";
/// The edge pool of [`one_of_each`]'s edge node (the test networks' first pool).
pub const EDGE_POOL: &str = "bb";
/// The node of [`one_of_each`]'s edge agent.
pub const EDGE_NODE: &str = "n1";
/// The hub identity the objects are marked with (no operator reads it back here).
pub const HUB: &str = "testkit-hub";

/// What the operator writes into [`MEMBER`] when its plan puts one super node (ordinal 0)
/// and one edge node ([`EDGE_NODE`] of pool [`EDGE_POOL`]) of `network` there, before any
/// agent advertised itself: the namespace, each role's identity (ServiceAccount, Role,
/// RoleBinding), the Leases `super-0` and `edge-n1`, the routes ConfigMap and the workloads.
pub fn one_of_each(network: &HsnNetwork) -> Vec<MemberObject> {
    edge_on(network, EDGE_NODE)
}

/// [`one_of_each`] with the edge agent on `node`: with another node than [`EDGE_NODE`],
/// what the operator writes once its plan has dropped [`EDGE_NODE`] (its Lease, no longer
/// in the edge agents' Role).
pub fn edge_on(network: &HsnNetwork, node: &str) -> Vec<MemberObject> {
    let plan = Plan {
        clusters: [(
            MEMBER.to_string(),
            ClusterPlan {
                super_replicas: 1,
                edge_pools: BTreeMap::from([(EDGE_POOL.into(), vec![node.into()])]),
            },
        )]
        .into(),
        ..Default::default()
    };
    let owner = Owner {
        hub: HUB.into(),
        cluster: MEMBER.into(),
    };
    member_objects(network, &owner, &plan, &Peers::new(), &Chain::default())
}

/// Server-side applies, as the operator does, those of [`one_of_each`]'s objects whose
/// kind is in `kinds` (e.g. `["Namespace", "ServiceAccount", "Role", "RoleBinding"]`);
/// returns the member namespace, which `kinds` must include.
pub async fn apply_member_objects(
    client: &Client,
    network: &HsnNetwork,
    kinds: &[&str],
) -> Result<String> {
    apply_objects(client, &one_of_each(network), kinds).await
}

/// [`apply_member_objects`] of any rendering (e.g. [`edge_on`]).
pub async fn apply_objects(
    client: &Client,
    objects: &[MemberObject],
    kinds: &[&str],
) -> Result<String> {
    let mut ns = None;
    for d in objects
        .iter()
        .filter(|d| kinds.contains(&d.resource.kind.as_str()))
    {
        d.apply(client)
            .await
            .with_context(|| format!("applying {} {}", d.resource.kind, d.name))?;
        if d.resource.kind == "Namespace" {
            ns = Some(d.name.clone());
        }
    }
    ns.context("no Namespace among the desired objects")
}

/// What an agent of `network` uses to reach its ledgers over TLS: the network's CA
/// certificate as the operator put it in the member's `namespace` (in a file of the returned
/// directory) and the ledger name agents check.
pub async fn ledger_tls(
    member: &Client,
    namespace: &str,
    network: &str,
) -> Result<(tempfile::TempDir, hsn_ledger_api::client::ClientTls)> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let ca = kube::Api::<ConfigMap>::namespaced(member.clone(), namespace)
        .get(hsn_operator::resources::CA_CONFIGMAP)
        .await?
        .data
        .and_then(|mut d| d.remove(hsn_operator::resources::CA_CERT_KEY))
        .context("the network's CA certificate")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join(hsn_operator::resources::CA_CERT_KEY);
    std::fs::write(&file, ca)?;
    let tls = hsn_ledger_api::client::ClientTls {
        ca: file,
        identity: None,
        domain: Some(hsn_operator::resources::ledger_server_name(network)),
    };
    Ok((dir, tls))
}
