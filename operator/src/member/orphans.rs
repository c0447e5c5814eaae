//! Orphans: namespaces this hub wrote into a member through one MecCluster for a network
//! that no longer exists in the hub (its finalizer removed by hand, a hub restored from an
//! old backup, a cleanup lost). The MecCluster controller removes them after each successful
//! probe.

use std::collections::BTreeSet;

use hsn_api::HsnNetwork;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client, ResourceExt};

use crate::resources::{HUB_LABEL, NETWORK_UID_LABEL, Owner, Ownership};

/// One namespace removed as an orphan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    /// The namespace.
    pub namespace: String,
    /// The UID of the network it was written for.
    pub network_uid: String,
}

/// Deletes `owner`'s network namespaces in a member whose network no longer exists in the
/// hub; returns them. The member's namespaces are listed before the hub's networks, both
/// from the API servers: a network created meanwhile is in the second list, so it is never
/// taken for gone.
#[tracing::instrument(skip_all, fields(cluster = %owner.cluster, removed))]
pub async fn remove_orphans(
    hub: &Client,
    member: &Client,
    owner: &Owner,
) -> Result<Vec<Orphan>, kube::Error> {
    let namespaces: Api<Namespace> = Api::all(member.clone());
    let selector = format!("{NETWORK_UID_LABEL},{HUB_LABEL}={}", owner.hub);
    let ours: Vec<Orphan> = namespaces
        .list_metadata(&ListParams::default().labels(&selector))
        .await?
        .into_iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_none())
        .filter(|ns| owner.ownership(&ns.metadata) == Ownership::Ours)
        .filter_map(|ns| {
            Some(Orphan {
                network_uid: ns.labels().get(NETWORK_UID_LABEL)?.clone(),
                namespace: ns.name_any(),
            })
        })
        .collect();
    if ours.is_empty() {
        return Ok(Vec::new());
    }
    let networks: BTreeSet<String> = Api::<HsnNetwork>::all(hub.clone())
        .list_metadata(&ListParams::default())
        .await?
        .into_iter()
        .filter_map(|n| n.metadata.uid)
        .collect();
    let mut removed = Vec::new();
    for orphan in ours
        .into_iter()
        .filter(|o| !networks.contains(&o.network_uid))
    {
        namespaces
            .delete(&orphan.namespace, &DeleteParams::background())
            .await?;
        tracing::info!(
            namespace = %orphan.namespace,
            network_uid = %orphan.network_uid,
            "removed the namespace of a network that no longer exists"
        );
        removed.push(orphan);
    }
    tracing::Span::current().record("removed", removed.len());
    Ok(removed)
}
