//! Cleanup on deletion (the finalizer): remove the network from every member (only the
//! namespaces this hub wrote through that MecCluster); a member that is down is marked on
//! its MecCluster and cleaned by the MecCluster controller when it returns
//! ([`crate::member`] does both). A MecCluster that duplicates another wrote nothing: it is
//! skipped.

use hsn_api::{HsnNetwork, MecCluster};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::Error;
use crate::context::Context;
use crate::member;

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
        let state = ctx.inventory.get(&name);
        if let Some(holder) = state.as_ref().and_then(|m| m.duplicate_of.as_ref()) {
            tracing::debug!(cluster = %name, %holder, "duplicate MecCluster: nothing of ours to clean");
            continue;
        }
        let ready = state.is_some_and(|m| m.view.ready);
        let cleaned = if ready {
            match ctx.members.client(&mec).await {
                Ok(client) => {
                    let owner = ctx.owner(&name);
                    match member::delete_owned_namespaces(&client, &uid, &owner).await {
                        Ok(removal) => {
                            removal.warn_left(&name, &uid);
                            true
                        }
                        Err(_) => false,
                    }
                }
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
    // The chain goes with the network: its members' replicas went with their namespaces.
    super::chain::forget(network, ctx).await?;
    ctx.metrics.forget_network(
        &network.namespace().unwrap_or_default(),
        &network.name_any(),
    );
    Ok(Action::await_change())
}

async fn mark_pending(mec: &MecCluster, uid: &str, ctx: &Context) -> Result<(), Error> {
    let wrote = member::mark_pending(&ctx.hub, mec, uid)
        .await
        .map_err(|e| Error::PendingCleanup(mec.name_any(), e))?;
    if wrote {
        ctx.metrics.hub_write(super::CONTROLLER);
    }
    Ok(())
}
