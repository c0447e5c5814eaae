//! What the MecCluster controller removes from a member after a successful probe: the
//! namespaces of networks deleted while it was down (`hsn.io/pending-cleanup`), and those of
//! networks that no longer exist in the hub at all (orphans). Only ever namespaces this hub
//! wrote through this MecCluster.

use hsn_api::MecCluster;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::{CONTROLLER, Error};
use crate::context::Context;
use crate::member;

/// Event reason when orphaned namespaces were removed from a member.
pub const ORPHANS_REMOVED: &str = "OrphanedNamespacesRemoved";

/// Deletes the namespaces of networks deleted while this member was down.
pub(super) async fn finish_pending(mec: &MecCluster, ctx: &Context) -> Result<(), Error> {
    let Some(pending) = member::pending(mec) else {
        return Ok(());
    };
    let name = mec.name_any();
    let client = ctx.members.client(mec).await.map_err(Error::Member)?;
    let owner = ctx.owner(&name);
    for uid in pending {
        let removal = member::delete_owned_namespaces(&client, uid, &owner)
            .await
            .map_err(|e| Error::Cleanup(name.clone(), e))?;
        removal.warn_left(&name, uid);
        tracing::info!(cluster = %name, network_uid = uid, deleted = ?removal.deleted, "finished pending cleanup");
    }
    member::clear_pending(&ctx.hub, &name)
        .await
        .map_err(|e| Error::Status(name, e))?;
    ctx.metrics.hub_write(CONTROLLER);
    Ok(())
}

/// Deletes the member's namespaces of networks that no longer exist in the hub; an Event
/// on the MecCluster names them.
pub(super) async fn remove_orphans(mec: &MecCluster, ctx: &Context) -> Result<(), Error> {
    let name = mec.name_any();
    let client = ctx.members.client(mec).await.map_err(Error::Member)?;
    let removed = member::remove_orphans(&ctx.hub, &client, &ctx.owner(&name))
        .await
        .map_err(|e| Error::Orphans(name.clone(), e))?;
    if removed.is_empty() {
        return Ok(());
    }
    ctx.metrics
        .orphans_removed
        .get_or_create(&crate::metrics::ClusterLabels {
            cluster: name.clone(),
        })
        .inc_by(removed.len() as u64);
    let names: Vec<String> = removed
        .iter()
        .map(|o| format!("{} (network uid {})", o.namespace, o.network_uid))
        .collect();
    let event = Event {
        type_: EventType::Normal,
        reason: ORPHANS_REMOVED.into(),
        note: Some(
            format!(
                "removed {} namespace(s) of networks that no longer exist: {}",
                removed.len(),
                names.join(", ")
            )
            .chars()
            .take(1000)
            .collect(),
        ),
        action: "RemoveOrphans".into(),
        secondary: None,
    };
    ctx.recorder
        .publish(&event, &mec.object_ref(&()))
        .await
        .map_err(Error::Event)
}
