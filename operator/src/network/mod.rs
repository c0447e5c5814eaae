//! The HsnNetwork controller: fetch -> validate -> plan -> apply -> status, with a
//! finalizer that removes the network from every member.

mod apply;
mod chain;
mod cleanup;
mod failover;
mod fetch;
mod head;
mod nodes;
mod others;
mod registry;
mod status;
mod stuck;
mod tls;
mod trust;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt, TryFutureExt};
use hsn_api::{ConditionType, HsnNetwork, HsnNetworkReason};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};

use crate::context::Context;
use crate::plan::{self, Inputs};

pub use apply::CATEGORIES as APPLY_FAILURE_CATEGORIES;
use failover::Failovers;
pub use nodes::{edge_node_name, super_node_name};

/// Controller name in metrics and logs.
pub const CONTROLLER: &str = "hsnnetwork";
/// Finalizer that holds a network until every member is clean.
pub const FINALIZER: &str = "hsn.io/cleanup";

/// Errors of one network reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hub API call failed.
    #[error("hub API: {0}")]
    Hub(#[source] kube::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The MecCluster cache stopped (the operator is shutting down).
    #[error("the MecCluster cache stopped")]
    CacheStopped,
    /// A member could not be cleaned and its MecCluster could not be marked for later.
    #[error("recording pending cleanup on MecCluster {0}: {1}")]
    PendingCleanup(String, #[source] kube::Error),
    /// The chain's keys or genesis could not be made.
    #[error("chain: {0}")]
    Chain(String),
}

impl Error {
    /// Every label [`Error::metric_label`] gives.
    pub const CATEGORIES: &[&'static str] = &[
        "hub-api",
        "finalizer",
        "pending-cleanup",
        "cache-stopped",
        "chain",
    ];

    /// Short label for metrics: the failing step's, also through the finalizer wrapper,
    /// which is only `finalizer` when adding or removing the finalizer itself failed.
    pub fn metric_label(&self) -> &'static str {
        use kube::runtime::finalizer::Error as Finalizer;
        match self {
            Self::Hub(_) => "hub-api",
            Self::Finalizer(e) => match e.as_ref() {
                Finalizer::ApplyFailed(inner) | Finalizer::CleanupFailed(inner) => {
                    inner.metric_label()
                }
                _ => "finalizer",
            },
            Self::PendingCleanup(..) => "pending-cleanup",
            Self::CacheStopped => "cache-stopped",
            Self::Chain(_) => "chain",
        }
    }
}

/// Runs the controller until `shutdown` resolves. `changed` fires when the cluster
/// inventory changes, which re-plans every network.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    concurrency: u16,
    changed: impl Stream<Item = ()> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<HsnNetwork> = match &namespace {
        Some(ns) => Api::namespaced(ctx.hub.clone(), ns),
        None => Api::all(ctx.hub.clone()),
    };
    ctx.metrics.init_controller(CONTROLLER, Error::CATEGORIES);
    // The failover clock is this controller's alone.
    let failovers = Arc::new(Failovers::default());
    Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .reconcile_all_on(changed)
        .graceful_shutdown_on(shutdown)
        .run(
            move |network, ctx| reconcile(network, ctx, failovers.clone()),
            error_policy,
            ctx,
        )
        .for_each(|_| {
            // A reconcile reads and renders the network's objects, then drops them: what
            // the heap kept of that goes back before the next.
            hsn_runtime::heap::release();
            futures::future::ready(())
        })
        .await;
}

async fn reconcile(
    network: Arc<HsnNetwork>,
    ctx: Arc<Context>,
    failovers: Arc<Failovers>,
) -> Result<Action, Error> {
    let ns = network.namespace().unwrap_or_default();
    let api: Api<HsnNetwork> = Api::namespaced(ctx.hub.clone(), &ns);
    let reconcile = finalizer(&api, FINALIZER, network, |event| async {
        match event {
            Event::Apply(n) => reconcile_apply(&n, &ctx, &failovers).await,
            Event::Cleanup(n) => cleanup::cleanup(&n, &ctx).await,
        }
    })
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics
        .reconcile(CONTROLLER, Error::metric_label, reconcile)
        .await
}

fn error_policy(network: Arc<HsnNetwork>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(network = %network.name_any(), %error, "network reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Publishes a Warning Event on the network, its note cut to what the events API takes.
async fn warn(
    network: &HsnNetwork,
    ctx: &Context,
    reason: HsnNetworkReason,
    message: &str,
    action: &str,
) -> Result<(), Error> {
    let event = KubeEvent {
        type_: EventType::Warning,
        reason: reason.to_string(),
        note: Some(crate::conditions::event_note(message)),
        action: action.into(),
        secondary: None,
    };
    ctx.recorder
        .publish(&event, &network.object_ref(&()))
        .await
        .map_err(Error::Hub)
}

/// The pipeline. Only fetch, apply and the writes take a client.
#[tracing::instrument(skip_all, fields(network = %network.name_any()))]
async fn reconcile_apply(
    network: &HsnNetwork,
    ctx: &Context,
    failovers: &Failovers,
) -> Result<Action, Error> {
    let now = Timestamp::now();
    let unprobed = fetch::unprobed(ctx).await;
    if !unprobed.is_empty() {
        tracing::debug!(?unprobed, "waiting for the first probe of every cluster");
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let mut clock = Stages::start(ctx);
    let fetched = fetch::fetch(network, ctx).await?;
    let held = others::held(network, ctx).await?;
    clock.lap("fetch");

    if let Err(invalid) = validate::validate(&network.name_any(), &network.spec) {
        let message = invalid.to_string();
        warn(
            network,
            ctx,
            HsnNetworkReason::InvalidSpec,
            &message,
            "Validate",
        )
        .await?;
        status::write(network, ctx, status::invalid(network, message, now)).await?;
        // Nothing to retry: the next spec change triggers a reconcile.
        return Ok(Action::await_change());
    }

    let lost = fetched.lost_supers(now);
    let previous = fetched.previous();
    let inputs = Inputs {
        clusters: fetched
            .members
            .iter()
            .map(|(_, m)| m.view.clone())
            .collect(),
        lost_supers: lost.clone(),
        previous: previous.clone(),
        held,
        super_hosts: fetched.super_hosts(),
    };
    let plan = plan::plan(&network.spec, &inputs);
    let paused = network.spec.paused;

    let chain = chain::prepare(network, ctx, &plan, &fetched).await?;
    clock.lap("chain");
    // The members and the hub's HsnNodes are written at the same time: neither reads what
    // the other writes, and they are different API servers.
    let members = async {
        let started = std::time::Instant::now();
        let outcomes = apply::apply_all(network, ctx, &plan, &fetched, &chain, paused).await;
        if !paused {
            // Routes are in the members now: the failover clock stops here.
            failovers.observe(network, &previous, &plan, &fetched, &outcomes, &ctx.metrics);
        }
        ctx.metrics.stage("apply", started.elapsed());
        outcomes
    };
    let hub = async {
        let started = std::time::Instant::now();
        if !paused {
            nodes::remove_forged(network, ctx, &fetched.forged).await?;
            let want = nodes::desired(network, &plan, &fetched, now);
            let keep: std::collections::BTreeSet<String> = want.keys().cloned().collect();
            nodes::sync(network, ctx, &fetched.nodes, want, now).await?;
            nodes::prune(network, ctx, &fetched.nodes, |n| keep.contains(n)).await?;
        }
        ctx.metrics.stage("nodes", started.elapsed());
        Ok::<_, Error>(())
    };
    let (outcomes, hub) = tokio::join!(members, hub);
    hub?;
    clock.skip();
    let observed = status::Observed {
        plan: &plan,
        outcomes: &outcomes,
        lost_supers: lost
            .iter()
            .filter(|s| plan.supers().any(|p| p == **s))
            .count(),
        paused,
        ledger: head::ledger_head(&fetched, &network.name_any(), now),
        plaintext_ledger: !network.spec.super_nodes.ledger_tls,
    };
    let new_status = status::compute(network, &observed, now);
    if let Some((reason, message)) = status::newly_degraded(network.status.as_ref(), &new_status) {
        warn(network, ctx, reason, &message, "Reconcile").await?;
    }
    let converged =
        !hsn_api::condition::is_true(&new_status.conditions, ConditionType::Progressing);
    status::write(network, ctx, new_status).await?;
    clock.lap("status");
    // Leases expire and pods become ready without any hub event: look again soon while
    // rolling out, and on the resync interval once converged; and right after the next
    // super node's Lease lapses (unless renewed by then), so a lost super node is failed
    // over when its Lease ends, not at the next resync.
    let next = if converged {
        ctx.settings.resync
    } else {
        Duration::from_secs(2)
    };
    Ok(Action::requeue(until_expiry(
        next,
        fetched.next_super_expiry(now),
        Timestamp::now(),
    )))
}

/// Times the stages of one reconcile into the stage histogram; a stage that failed is not
/// recorded (the reconcile's own duration and error count it).
struct Stages<'a> {
    ctx: &'a Context,
    last: std::time::Instant,
}

impl<'a> Stages<'a> {
    fn start(ctx: &'a Context) -> Self {
        Self {
            ctx,
            last: std::time::Instant::now(),
        }
    }

    /// Starts the next lap now, recording nothing (stages timed on their own).
    fn skip(&mut self) {
        self.last = std::time::Instant::now();
    }

    /// Records the time since the previous lap as `stage`.
    fn lap(&mut self, stage: &'static str) {
        let now = std::time::Instant::now();
        self.ctx.metrics.stage(stage, now - self.last);
        self.last = now;
    }
}

/// How long a Lease is checked after it should have lapsed: clocks of the operator and the
/// API server differ a little, and a Lease is lapsed only after its end.
const EXPIRY_MARGIN: Duration = Duration::from_millis(100);

/// The requeue delay: `regular`, or sooner when a Lease lapses before it.
fn until_expiry(regular: Duration, expiry: Option<Timestamp>, now: Timestamp) -> Duration {
    let Some(expiry) = expiry else {
        return regular;
    };
    let left = Duration::try_from(expiry.duration_since(now)).unwrap_or(Duration::ZERO);
    regular.min(left + EXPIRY_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::Error;
    use super::{Duration, Timestamp, until_expiry};

    #[test]
    fn the_next_lease_expiry_brings_the_reconcile_forward() {
        let now: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let soon: Timestamp = "2026-12-03T10:00:03Z".parse().unwrap();
        let late: Timestamp = "2026-12-03T10:01:00Z".parse().unwrap();
        let past: Timestamp = "2026-12-03T09:59:00Z".parse().unwrap();
        let resync = Duration::from_secs(10);
        assert_eq!(until_expiry(resync, None, now), resync);
        assert_eq!(
            until_expiry(resync, Some(soon), now),
            Duration::from_millis(3100)
        );
        assert_eq!(until_expiry(resync, Some(late), now), resync);
        assert_eq!(
            until_expiry(resync, Some(past), now),
            Duration::from_millis(100)
        );
    }
    use kube::runtime::finalizer::Error as Finalizer;

    fn api() -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status::failure("x", "X")))
    }

    #[test]
    fn every_error_label_is_created_at_zero_and_the_finalizer_names_the_step() {
        let errors = [
            Error::Hub(api()),
            Error::CacheStopped,
            Error::PendingCleanup("a".into(), api()),
            Error::Chain("x".into()),
            Error::Finalizer(Box::new(Finalizer::AddFinalizer(api()))),
            Error::Finalizer(Box::new(Finalizer::ApplyFailed(Error::Hub(api())))),
        ];
        for e in &errors {
            // No wildcard: a new variant must be added above to compile.
            match e {
                Error::Hub(_)
                | Error::CacheStopped
                | Error::PendingCleanup(..)
                | Error::Chain(_)
                | Error::Finalizer(_) => {}
            }
            assert!(Error::CATEGORIES.contains(&e.metric_label()), "{e}");
        }
        assert_eq!(errors[5].metric_label(), "hub-api");
        assert_eq!(errors[4].metric_label(), "finalizer");
    }
}
