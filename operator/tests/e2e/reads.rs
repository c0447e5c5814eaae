//! What the steps read from the hub and the members.

use std::collections::BTreeMap;

use anyhow::Result;
use hsn_api::routes::{ROUTES_KEY, RoutesTable};
use hsn_api::{HsnNetwork, HsnNode};
use hsn_testkit::operator::edge_assignments;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::{MEMBER_NS, NET, NS};

pub(crate) async fn routes(member: &Client) -> Result<RoutesTable> {
    let cm = Api::<ConfigMap>::namespaced(member.clone(), MEMBER_NS)
        .get("hsn-routes")
        .await?;
    Ok(RoutesTable::parse(
        &cm.data.unwrap_or_default()[ROUTES_KEY],
    )?)
}

pub(crate) async fn super_replicas(member: &Client) -> Option<i32> {
    let sts = Api::<StatefulSet>::namespaced(member.clone(), MEMBER_NS)
        .get_opt("hsn-super-node")
        .await
        .ok()??;
    sts.spec?.replicas
}

/// Edge HsnNodes by (cluster, node) -> assigned super HsnNode.
pub(crate) async fn assignments(hub: &Client) -> Result<Vec<(String, String, String)>> {
    edge_assignments(hub, NS).await
}

/// What a reconcile must not rewrite even while agents renew Leases: the network (its
/// resourceVersion) and every HsnNode's spec (generation), by name.
pub(crate) async fn hub_objects(
    hub: &Client,
) -> Result<(Option<String>, BTreeMap<String, Option<i64>>)> {
    let net = Api::<HsnNetwork>::namespaced(hub.clone(), NS)
        .get(NET)
        .await?;
    let nodes = Api::<HsnNode>::namespaced(hub.clone(), NS)
        .list(&ListParams::default())
        .await?;
    let generations = nodes
        .items
        .iter()
        .map(|n| (n.name_any(), n.metadata.generation))
        .collect();
    Ok((net.resource_version(), generations))
}

pub(crate) async fn namespace_gone(member: &Client) -> Option<()> {
    let ns = Api::<Namespace>::all(member.clone());
    ns.get_opt(MEMBER_NS).await.ok()?.is_none().then_some(())
}
