//! The MecCluster controller: probe each member on an interval, keep the inventory the
//! network controller plans from, report `Reachable` and `Ready`, refuse a second MecCluster
//! for a cluster another one already holds, and carry out cleanups that had to wait for a
//! member to come back or whose network is gone. What a member is (client, probe, inventory,
//! cleanup) is [`crate::member`]; this is the loop, the status and the cleanups' triggers.

mod cleanup;
mod status;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hsn_api::{ConditionType, MecCluster, MecClusterReason};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::conditions::Cond;
use crate::context::Context;
use crate::member::{self, MemberState};
use crate::plan::ClusterView;

/// Controller name in metrics and logs.
pub const CONTROLLER: &str = "meccluster";

/// Errors of one MecCluster reconcile; probe failures are not errors but status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the MecCluster's status failed.
    #[error("writing status of MecCluster {0}: {1}")]
    Status(String, #[source] kube::Error),
    /// Publishing an Event failed.
    #[error("publishing an event: {0}")]
    Event(#[source] kube::Error),
    /// Removing a deleted network's objects from the member failed.
    #[error("cleaning up member {0}: {1}")]
    Cleanup(String, #[source] kube::Error),
    /// Looking for or removing the namespaces of networks that no longer exist failed.
    #[error("removing orphaned namespaces from member {0}: {1}")]
    Orphans(String, #[source] kube::Error),
    /// No client for the member, right after a probe succeeded with one.
    #[error("member client: {0}")]
    Member(#[source] hsn_api::access::AccessError),
}

impl Error {
    /// Every label [`Error::metric_label`] gives.
    pub const CATEGORIES: &[&'static str] = &["status", "event", "member-cleanup", "orphans"];

    /// Short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Status(..) => "status",
            Self::Event(..) => "event",
            Self::Cleanup(..) | Self::Member(..) => "member-cleanup",
            Self::Orphans(..) => "orphans",
        }
    }
}

/// Outcome of probing one member.
struct Outcome {
    reachable: Cond,
    probe: Option<member::Probe>,
}

/// The controller, so that its cache can be shared before it runs.
pub fn controller(hub: Client) -> Controller<MecCluster> {
    Controller::new(Api::all(hub), watcher::Config::default().any_semantic())
}

/// Runs `controller` until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    controller: Controller<MecCluster>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    ctx.metrics.init_controller(CONTROLLER, Error::CATEGORIES);
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile_timed, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

async fn reconcile_timed(mec: Arc<MecCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let reconcile = reconcile(&mec, &ctx);
    ctx.metrics
        .reconcile(CONTROLLER, Error::metric_label, reconcile)
        .await
}

fn error_policy(mec: Arc<MecCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(cluster = %mec.name_any(), %error, "MecCluster reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

#[tracing::instrument(skip_all, fields(cluster = %mec.name_any()))]
async fn reconcile(mec: &MecCluster, ctx: &Context) -> Result<Action, Error> {
    let name = mec.name_any();
    let now = Timestamp::now();
    forget_deleted(&name, ctx);
    let before = ctx.inventory.get(&name);
    let outcome = probe_member(mec, ctx).await;
    // A member that does not answer keeps the cluster it last reached.
    let identity = outcome
        .probe
        .as_ref()
        .map(|p| p.identity.clone())
        .or_else(|| before.as_ref().and_then(|m| m.identity.clone()))
        .or_else(|| status::recorded_identity(mec));
    let duplicate_of = match (&outcome.probe, &identity) {
        (Some(_), Some(id)) => Some(status::holder(mec, id, ctx)).filter(|h| *h != name),
        _ => None,
    };

    let failing_since = match &outcome.probe {
        Some(_) => None,
        None => Some(before.as_ref().and_then(|m| m.failing_since).unwrap_or(now)),
    };
    let ready = match (&duplicate_of, &identity) {
        (Some(holder), Some(id)) => status::duplicate_condition(holder, id),
        _ => status::ready_condition(
            &outcome,
            before.as_ref(),
            failing_since,
            now,
            ctx.settings.cluster_grace,
        ),
    };
    let was_ready = before.as_ref().is_some_and(|m| m.view.ready);
    let nodes = match &outcome.probe {
        Some(p) => p.nodes.clone(),
        None => before
            .as_ref()
            .map(|m| m.view.nodes.clone())
            .unwrap_or_default(),
    };
    let not_ready_since = match (ready.status, before.as_ref()) {
        (true, _) => None,
        (false, Some(m)) if m.not_ready_since.is_some() => m.not_ready_since,
        (false, _) => Some(now),
    };
    ctx.inventory.update(MemberState {
        view: ClusterView {
            name: name.clone(),
            labels: mec.labels().clone(),
            region: mec.spec.region.clone(),
            zone: mec.spec.zone.clone(),
            ready: ready.status,
            cordoned: mec.spec.cordoned,
            max_super_nodes: mec
                .spec
                .capacity
                .as_ref()
                .and_then(|c| c.max_super_nodes)
                .and_then(|m| u32::try_from(m).ok()),
            max_edge_nodes: mec
                .spec
                .capacity
                .as_ref()
                .and_then(|c| c.max_edge_nodes)
                .and_then(|m| u32::try_from(m).ok()),
            nodes,
        },
        failing_since,
        not_ready_since,
        identity,
        created: mec.meta().creation_timestamp.as_ref().map(|t| t.0),
        duplicate_of: duplicate_of.clone(),
    });
    if before.is_none() {
        ctx.metrics
            .init_member(&name, crate::network::APPLY_FAILURE_CATEGORIES);
    }
    ctx.metrics
        .member_ready
        .get_or_create(&crate::metrics::ClusterLabels {
            cluster: name.clone(),
        })
        .set(i64::from(ready.status));

    let became_duplicate = ready.reason == MecClusterReason::DuplicateCluster.as_str()
        && status::ready_reason(mec) != Some(ready.reason);
    status::write(mec, ctx, &outcome, &ready, now).await?;
    if ready.status != was_ready && before.is_some()
        || before.is_none() && !ready.status
        || became_duplicate
    {
        status::publish(ctx, mec, &ready).await?;
    }
    // A duplicate wrote nothing in its member: it has nothing to clean there.
    if outcome.probe.is_some() && duplicate_of.is_none() {
        cleanup::finish_pending(mec, ctx).await?;
        cleanup::remove_orphans(mec, ctx).await?;
    }
    Ok(Action::requeue(ctx.settings.probe_interval))
}

/// Forgets the members of MecClusters that no longer exist, so that they hold no cluster.
fn forget_deleted(name: &str, ctx: &Context) {
    let existing: BTreeSet<String> = ctx.clusters.state().iter().map(|m| m.name_any()).collect();
    // The cache holds the MecCluster being reconciled once it is filled.
    if !existing.contains(name) {
        return;
    }
    for gone in ctx.inventory.retain(|n| existing.contains(n)) {
        ctx.members.forget(&gone);
        tracing::info!(cluster = %gone, "MecCluster deleted: forgotten");
    }
}

async fn probe_member(mec: &MecCluster, ctx: &Context) -> Outcome {
    let client = match ctx.members.client(mec).await {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                reachable: Cond::no(ConditionType::Reachable, e.reason(), e.to_string()),
                probe: None,
            };
        }
    };
    match tokio::time::timeout(ctx.settings.member_timeout, member::probe(&client)).await {
        Ok(Ok(p)) => Outcome {
            reachable: Cond::yes(
                ConditionType::Reachable,
                MecClusterReason::ProbeSucceeded,
                // No latency here: it changes every probe and would rewrite the status.
                format!("API server {} answers", p.version),
            ),
            probe: Some(p),
        },
        Ok(Err(e)) => Outcome {
            reachable: Cond::no(
                ConditionType::Reachable,
                MecClusterReason::ProbeFailed,
                format!("probe failed: {e}"),
            ),
            probe: None,
        },
        Err(_) => Outcome {
            reachable: Cond::no(
                ConditionType::Reachable,
                MecClusterReason::ProbeTimedOut,
                format!("no answer within {:?}", ctx.settings.member_timeout),
            ),
            probe: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn api() -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status::failure("x", "X")))
    }

    #[test]
    fn every_error_label_is_created_at_zero() {
        let errors = [
            Error::Status("a".into(), api()),
            Error::Event(api()),
            Error::Cleanup("a".into(), api()),
            Error::Orphans("a".into(), api()),
            Error::Member(hsn_api::access::AccessError::NoAccess),
        ];
        for e in &errors {
            // No wildcard: a new variant must be added above to compile.
            match e {
                Error::Status(..)
                | Error::Event(..)
                | Error::Cleanup(..)
                | Error::Orphans(..)
                | Error::Member(..) => {}
            }
            assert!(Error::CATEGORIES.contains(&e.metric_label()), "{e}");
        }
    }
}
