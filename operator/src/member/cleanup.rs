//! Removing a network from a member: the namespaces of it that are provably ours (and so
//! every object in them), now; or, while the member is down, a note on its MecCluster
//! (`hsn.io/pending-cleanup`) that the MecCluster controller acts on when the member answers
//! again. A namespace that carries the network's label but not this hub's and this
//! MecCluster's markings ([`Owner`]) is left alone, whoever wrote it.

use hsn_api::MecCluster;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::resources::{NETWORK_UID_LABEL, Owner, Ownership};

/// Annotation on a MecCluster: network UIDs whose objects must still be removed from it.
pub const PENDING_CLEANUP_ANNOTATION: &str = "hsn.io/pending-cleanup";

/// What [`delete_owned_namespaces`] did in a member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// Namespaces deleted now.
    pub deleted: Vec<String>,
    /// Namespaces of the network left alone, and whose they are.
    pub left: Vec<(String, Ownership)>,
}

impl Removal {
    /// Warns about each namespace left alone: after the network is gone nothing else will
    /// remove it. (Not for a network that merely left a member: that repeats every reconcile.)
    pub fn warn_left(&self, cluster: &str, uid: &str) {
        for (namespace, ownership) in &self.left {
            tracing::warn!(
                cluster,
                namespace = %namespace,
                network_uid = uid,
                ownership = %ownership,
                "namespace carries the deleted network's label but is not provably ours: left \
                 alone; delete it by hand if it is stale"
            );
        }
    }
}

/// Deletes the namespaces of network `uid` in a member that `owner` wrote (and so every
/// object in them). Namespaces of the network that are not provably `owner`'s are left.
pub async fn delete_owned_namespaces(
    client: &Client,
    uid: &str,
    owner: &Owner,
) -> Result<Removal, kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let selector = format!("{NETWORK_UID_LABEL}={uid}");
    let mut removal = Removal::default();
    for ns in namespaces
        .list_metadata(&ListParams::default().labels(&selector))
        .await?
    {
        let name = ns.name_any();
        match owner.ownership(&ns.metadata) {
            Ownership::Ours if ns.metadata.deletion_timestamp.is_none() => {
                namespaces
                    .delete(&name, &DeleteParams::background())
                    .await?;
                removal.deleted.push(name);
            }
            Ownership::Ours => {}
            other => removal.left.push((name, other)),
        }
    }
    Ok(removal)
}

/// The network UIDs waiting to be removed from `mec`; `None` without the annotation.
pub fn pending(mec: &MecCluster) -> Option<Vec<&str>> {
    mec.annotations()
        .get(PENDING_CLEANUP_ANNOTATION)
        .map(|p| p.split(',').filter(|u| !u.is_empty()).collect())
}

/// Records on `mec` that network `uid` must still be removed from it. `Ok(false)`: it
/// already was, and nothing was written.
pub async fn mark_pending(hub: &Client, mec: &MecCluster, uid: &str) -> Result<bool, kube::Error> {
    let mut pending = pending(mec).unwrap_or_default();
    if pending.contains(&uid) {
        return Ok(false);
    }
    pending.push(uid);
    let api: Api<MecCluster> = Api::all(hub.clone());
    let patch =
        json!({"metadata": {"annotations": {PENDING_CLEANUP_ANNOTATION: pending.join(",")}}});
    api.patch(
        &mec.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(true)
}

/// Removes the annotation from MecCluster `name` once its pending cleanups are done.
pub async fn clear_pending(hub: &Client, name: &str) -> Result<(), kube::Error> {
    let api: Api<MecCluster> = Api::all(hub.clone());
    let patch = json!({"metadata": {"annotations": {PENDING_CLEANUP_ANNOTATION: null}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}
