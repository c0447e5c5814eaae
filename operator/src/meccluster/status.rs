//! A MecCluster's status: `Reachable`, `Ready` (with the grace period, or refused as a
//! duplicate), what the probe found, the identity of the cluster it reached; Events on
//! transitions.

use std::time::Duration;

use hsn_api::cluster::{ClusterIdentity, MecClusterStatus};
use hsn_api::condition::find;
use hsn_api::{ConditionType, MecCluster, MecClusterReason};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use super::{CONTROLLER, Error, Outcome};
use crate::conditions::{self, Cond};
use crate::context::Context;
use crate::member::MemberState;

/// The identity `mec`'s status last recorded.
pub(super) fn recorded_identity(mec: &MecCluster) -> Option<String> {
    let id = mec.status.as_ref()?.identity.as_ref()?;
    Some(id.kube_system_uid.clone()).filter(|u| !u.is_empty())
}

/// The reason of `mec`'s `Ready` condition as written.
pub(super) fn ready_reason(mec: &MecCluster) -> Option<&str> {
    let conditions = &mec.status.as_ref()?.conditions;
    Some(find(conditions, ConditionType::Ready)?.reason.as_str())
}

/// The MecCluster that holds the cluster `identity`, which `mec` reaches: of every
/// MecCluster that reaches it (by its probe since this operator started, else by the
/// identity its status recorded), the oldest, then by name.
pub(super) fn holder(mec: &MecCluster, identity: &str, ctx: &Context) -> String {
    let name = mec.name_any();
    let claims = ctx.clusters.state().into_iter().filter(|m| {
        let other = m.name_any();
        let reached = match ctx.inventory.get(&other) {
            _ if other == name => Some(identity.to_string()),
            Some(MemberState {
                identity: Some(id), ..
            }) => Some(id),
            _ => recorded_identity(m),
        };
        reached.as_deref() == Some(identity)
    });
    claims
        .map(|m| {
            let created = m.meta().creation_timestamp.as_ref().map(|t| t.0);
            (created.is_none(), created, m.name_any())
        })
        .min()
        .map_or(name, |(_, _, holder)| holder)
}

/// `Ready=False` of a MecCluster whose cluster `holder` holds.
pub(super) fn duplicate_condition(holder: &str, identity: &str) -> Cond {
    Cond::no(
        ConditionType::Ready,
        MecClusterReason::DuplicateCluster,
        format!(
            "this cluster (kube-system UID {identity}) is MecCluster {holder}'s, which is older; \
             this MecCluster is not used for planning, applying or cleanup: delete it, or point \
             it at another cluster"
        ),
    )
}

/// Ready: reachable with a ready node; an unreachable cluster that was Ready stays Ready
/// for the grace period, so one lost probe does not re-plan the world.
pub(super) fn ready_condition(
    outcome: &Outcome,
    before: Option<&MemberState>,
    failing_since: Option<Timestamp>,
    now: Timestamp,
    grace: Duration,
) -> Cond {
    if let Some(p) = &outcome.probe {
        return if p.counts.ready > 0 {
            Cond::yes(
                ConditionType::Ready,
                MecClusterReason::ClusterReady,
                format!("{} of {} nodes ready", p.counts.ready, p.counts.total),
            )
        } else {
            Cond::no(
                ConditionType::Ready,
                MecClusterReason::NoReadyNodes,
                "the cluster has no ready node",
            )
        };
    }
    let failing_for = failing_since.map_or(SignedDuration::ZERO, |t| now.duration_since(t));
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    if before.is_some_and(|m| m.view.ready) && failing_for < grace {
        return Cond::yes(
            ConditionType::Ready,
            MecClusterReason::ProbeFailing,
            format!(
                "probes failing for {}s (NotReady after {}s): {}",
                failing_for.as_secs(),
                grace.as_secs(),
                outcome.reachable.message
            ),
        );
    }
    Cond::no(
        ConditionType::Ready,
        outcome.reachable.reason,
        outcome.reachable.message.clone(),
    )
}

/// Writes the status when it changed.
pub(super) async fn write(
    mec: &MecCluster,
    ctx: &Context,
    outcome: &Outcome,
    ready: &Cond,
    now: Timestamp,
) -> Result<(), Error> {
    let old = mec.status.clone().unwrap_or_default();
    let conds = conditions::merge(
        &old.conditions,
        &[outcome.reachable.clone(), ready.clone()],
        mec.meta().generation,
        now,
    );
    let mut status = MecClusterStatus {
        observed_generation: mec.meta().generation,
        conditions: conds,
        ..old.clone()
    };
    if let Some(p) = &outcome.probe {
        status.kubernetes_version = Some(p.version.clone());
        status.nodes = Some(p.counts.clone());
        status.allocatable = p.allocatable.clone();
        status.identity = Some(ClusterIdentity {
            kube_system_uid: p.identity.clone(),
        });
        let latency = i64::try_from(p.latency.as_millis()).unwrap_or(i64::MAX);
        // Latency jitters on every probe; write it only when it moved a lot, so a steady
        // cluster's status stays unwritten.
        let moved = old
            .probe_latency_ms
            .is_none_or(|l| (latency - l).abs() > 20.max(l / 2));
        status.probe_latency_ms = if moved {
            Some(latency)
        } else {
            old.probe_latency_ms
        };
    }
    if status == old {
        return Ok(());
    }
    tracing::debug!(have = ?old, want = ?status, "writing MecCluster status");
    let api: Api<MecCluster> = Api::all(ctx.hub.clone());
    ctx.apply_status(CONTROLLER, &api, &mec.name_any(), &status)
        .await
        .map_err(|e| Error::Status(mec.name_any(), e))
}

/// One log line and one Event for a transition of `Ready`.
pub(super) async fn publish(ctx: &Context, mec: &MecCluster, ready: &Cond) -> Result<(), Error> {
    // Transitions only: one line when a member goes or comes back, not one per probe.
    if ready.status {
        tracing::info!(cluster = %mec.name_any(), reason = ready.reason, "member cluster Ready");
    } else {
        tracing::warn!(cluster = %mec.name_any(), reason = ready.reason, message = %ready.message, "member cluster NotReady");
    }
    let (type_, action) = if ready.status {
        (EventType::Normal, "ClusterReady")
    } else {
        (EventType::Warning, "ClusterNotReady")
    };
    let event = Event {
        type_,
        reason: ready.reason.to_string(),
        note: Some(ready.message.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    ctx.recorder
        .publish(&event, &mec.object_ref(&()))
        .await
        .map_err(Error::Event)
}
