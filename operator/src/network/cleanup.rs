//! Cleanup on deletion: remove the network from every member; a member that is down is
//! marked on its MecCluster and cleaned by the MecCluster controller when it returns.

use hsn_api::{HsnNetwork, MecCluster};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::Error;
use crate::clusters::{PENDING_CLEANUP_ANNOTATION, delete_network_namespaces};
use crate::context::Context;

/// Removes everything of `network` from every member, then lets the finalizer go.
pub async fn cleanup(network: &HsnNetwork, ctx: &Context) -> Result<Action, Error> {
    let uid = network.uid().unwrap_or_default();
    // Every cluster must be known before the finalizer goes, or a cluster missing from an
    // early cache would keep the network's objects forever.
    ctx.clusters
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheStopped)?;
    for mec in ctx.clusters.state() {
        let name = mec.name_any();
        let ready = ctx.inventory.get(&name).is_some_and(|m| m.view.ready);
        let cleaned = if ready {
            match ctx.members.client(&mec).await {
                Ok(client) => delete_network_namespaces(&client, &uid).await.is_ok(),
                Err(_) => false,
            }
        } else {
            false
        };
        if !cleaned {
            mark_pending(&mec, &uid, ctx).await?;
            tracing::info!(cluster = %name, network = %network.name_any(), "member unreachable; cleanup recorded for when it returns");
        }
    }
    // HsnNodes carry an owner reference, but a hub without a garbage collector (or a
    // slow one) would leave them behind for a while: delete them now.
    let nodes: Api<hsn_api::HsnNode> =
        Api::namespaced(ctx.hub.clone(), &network.namespace().unwrap_or_default());
    let selector = format!("{}={uid}", crate::resources::NETWORK_UID_LABEL);
    nodes
        .delete_collection(
            &Default::default(),
            &kube::api::ListParams::default().labels(&selector),
        )
        .await
        .map_err(Error::Hub)?;
    Ok(Action::await_change())
}

async fn mark_pending(mec: &MecCluster, uid: &str, ctx: &Context) -> Result<(), Error> {
    let mut pending: Vec<&str> = mec
        .annotations()
        .get(PENDING_CLEANUP_ANNOTATION)
        .map(|p| p.split(',').filter(|u| !u.is_empty()).collect())
        .unwrap_or_default();
    if pending.contains(&uid) {
        return Ok(());
    }
    pending.push(uid);
    let api: Api<MecCluster> = Api::all(ctx.hub.clone());
    let patch =
        json!({"metadata": {"annotations": {PENDING_CLEANUP_ANNOTATION: pending.join(",")}}});
    api.patch(
        &mec.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map_err(|e| Error::PendingCleanup(mec.name_any(), e))?;
    ctx.metrics.hub_write(super::CONTROLLER);
    Ok(())
}
