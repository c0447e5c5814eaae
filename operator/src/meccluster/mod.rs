//! The MecCluster controller: probe each member on an interval, keep the inventory the
//! network controller plans from, report `Reachable` and `Ready`, and carry out cleanups
//! that had to wait for a member to come back. What a member is (client, probe, inventory,
//! cleanup) is [`crate::member`]; this is the loop and the status.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hsn_api::cluster::MecClusterStatus;
use hsn_api::{ConditionType, MecCluster, MecClusterReason};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::conditions::{self, Cond};
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
    /// No client for the member, right after a probe succeeded with one.
    #[error("member client: {0}")]
    Member(#[source] hsn_api::access::AccessError),
}

impl Error {
    /// Every label [`Error::metric_label`] gives.
    pub const CATEGORIES: &[&'static str] = &["status", "event", "member-cleanup"];

    /// Short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Status(..) => "status",
            Self::Event(..) => "event",
            Self::Cleanup(..) | Self::Member(..) => "member-cleanup",
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
    let before = ctx.inventory.get(&name);
    let outcome = probe_member(mec, ctx).await;

    let failing_since = match &outcome.probe {
        Some(_) => None,
        None => Some(before.as_ref().and_then(|m| m.failing_since).unwrap_or(now)),
    };
    let ready = ready_condition(
        &outcome,
        before.as_ref(),
        failing_since,
        now,
        ctx.settings.cluster_grace,
    );
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

    write_status(mec, ctx, &outcome, &ready, now).await?;
    if ready.status != was_ready && before.is_some() || before.is_none() && !ready.status {
        publish(ctx, mec, &ready).await?;
    }
    if outcome.probe.is_some() {
        finish_pending_cleanup(mec, ctx).await?;
    }
    Ok(Action::requeue(ctx.settings.probe_interval))
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

/// Ready: reachable with a ready node; an unreachable cluster that was Ready stays Ready
/// for the grace period, so one lost probe does not re-plan the world.
fn ready_condition(
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

async fn write_status(
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

async fn publish(ctx: &Context, mec: &MecCluster, ready: &Cond) -> Result<(), Error> {
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

/// Deletes the namespaces of networks deleted while this member was down.
async fn finish_pending_cleanup(mec: &MecCluster, ctx: &Context) -> Result<(), Error> {
    let Some(pending) = member::pending(mec) else {
        return Ok(());
    };
    let name = mec.name_any();
    let client = ctx.members.client(mec).await.map_err(Error::Member)?;
    for uid in pending {
        member::delete_network_namespaces(&client, uid)
            .await
            .map_err(|e| Error::Cleanup(name.clone(), e))?;
        tracing::info!(cluster = %name, network_uid = uid, "finished pending cleanup");
    }
    member::clear_pending(&ctx.hub, &name)
        .await
        .map_err(|e| Error::Status(name, e))?;
    ctx.metrics.hub_write(CONTROLLER);
    Ok(())
}
