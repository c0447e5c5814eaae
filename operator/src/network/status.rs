//! Status: derived from the plan and what the members report. The computation is pure;
//! the write happens only when something changed.

use std::collections::BTreeMap;

use hsn_api::condition::find;
use hsn_api::network::{
    ClusterPlacement, HsnNetworkStatus, LedgerHead, MAX_STATUS_CLUSTERS, ReplicaCounts,
};
use hsn_api::{ConditionType, HsnNetwork, HsnNetworkReason};
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Resource, ResourceExt};

use super::Error;
use super::apply::MemberOutcome;
use super::stuck::Stuck;
use crate::conditions::{self, Cond};
use crate::context::Context;
use crate::plan::Plan;

/// Everything status is computed from.
#[derive(Debug)]
pub struct Observed<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// Per-member apply outcome.
    pub outcomes: &'a BTreeMap<String, MemberOutcome>,
    /// Placed supers whose Lease expired.
    pub lost_supers: usize,
    /// Whether the network is paused.
    pub paused: bool,
    /// The chain as the most advanced live super node reports it; without one, the status
    /// keeps the last report.
    pub ledger: Option<LedgerHead>,
    /// `superNodes.ledgerTls` is off.
    pub plaintext_ledger: bool,
}

/// The status the network should have.
pub fn compute(network: &HsnNetwork, observed: &Observed<'_>, now: Timestamp) -> HsnNetworkStatus {
    let plan = observed.plan;
    let mut clusters = Vec::new();
    let (mut supers, mut edges) = (ReplicaCounts::default(), ReplicaCounts::default());
    for (name, part) in &plan.clusters {
        let desired_edges = i32::try_from(part.edge_pools.values().map(Vec::len).sum::<usize>())
            .unwrap_or(i32::MAX);
        let desired_supers = i32::try_from(part.super_replicas).unwrap_or(i32::MAX);
        if desired_edges == 0 && desired_supers == 0 {
            continue;
        }
        let ready = match observed.outcomes.get(name) {
            Some(MemberOutcome::Applied(r)) => r.clone(),
            _ => Default::default(),
        };
        let placement = ClusterPlacement {
            cluster: name.clone(),
            super_nodes: ReplicaCounts {
                desired: desired_supers,
                ready: ready.supers.min(desired_supers),
            },
            edge_nodes: ReplicaCounts {
                desired: desired_edges,
                ready: ready.edges.min(desired_edges),
            },
        };
        supers.desired += placement.super_nodes.desired;
        supers.ready += placement.super_nodes.ready;
        edges.desired += placement.edge_nodes.desired;
        edges.ready += placement.edge_nodes.ready;
        clusters.push(placement);
    }
    let old = network.status.clone().unwrap_or_default();
    let conds = conditions(observed, &supers, &edges);
    let cluster_count = i32::try_from(clusters.len()).unwrap_or(i32::MAX);
    clusters.truncate(MAX_STATUS_CLUSTERS);
    HsnNetworkStatus {
        observed_generation: network.meta().generation,
        conditions: conditions::merge(&old.conditions, &conds, network.meta().generation, now),
        cluster_count,
        super_nodes: supers,
        edge_nodes: edges,
        clusters,
        ledger: observed.ledger.clone().or(old.ledger),
    }
}

/// What is wrong, most serious first: each with its reason and a message for people.
fn problems(observed: &Observed<'_>) -> Vec<(HsnNetworkReason, String)> {
    let plan = observed.plan;
    let mut problems: Vec<(HsnNetworkReason, String)> = Vec::new();
    for (cluster, outcome) in observed.outcomes {
        let hosts_part = plan
            .clusters
            .get(cluster)
            .is_some_and(|p| p.edge_pools.values().any(|n| !n.is_empty()));
        match outcome {
            MemberOutcome::Skipped if hosts_part => problems.push((
                HsnNetworkReason::ClusterNotReady,
                format!("cluster {cluster} is NotReady; its edges are guaranteed by super nodes in other clusters"),
            )),
            MemberOutcome::Failed(e) => problems.push((HsnNetworkReason::ApplyFailed, format!("cluster {cluster}: {e}"))),
            _ => {}
        }
    }
    if plan.unplaced_supers > 0 {
        let mut message = format!(
            "{} on no Ready, uncordoned, selected cluster with room",
            counted(
                plan.unplaced_supers as usize,
                "super node fits",
                "super nodes fit"
            )
        );
        if !plan.supers_held_elsewhere.is_empty() {
            let held = plan
                .supers_held_elsewhere
                .iter()
                .map(|(c, n)| format!("{n} on {c}"));
            message += &format!(
                " (capacity.maxSuperNodes counts the super nodes of other networks: {})",
                listed(held)
            );
        }
        problems.push((HsnNetworkReason::InsufficientCapacity, message));
    }
    if !plan.edges_over_capacity.is_empty() {
        problems.push((
            HsnNetworkReason::InsufficientCapacity,
            format!(
                "{} no edge: their cluster's capacity.maxEdgeNodes is reached, counting other networks' edges first: {}",
                counted(plan.edges_over_capacity.len(), "selected node runs", "selected nodes run"),
                listed(plan.edges_over_capacity.iter().map(ToString::to_string))
            ),
        ));
    }
    if !plan.unassigned.is_empty() {
        problems.push((
            HsnNetworkReason::InsufficientCapacity,
            format!(
                "{} no super node with room (maxEdgesPerSuperNode)",
                counted(plan.unassigned.len(), "edge has", "edges have")
            ),
        ));
    }
    if !plan.conflicts.is_empty() {
        problems.push((
            HsnNetworkReason::NodeConflict,
            format!(
                "{} another network's agent, so this network runs none there \
                 (one agent per node: host ports and the XDP hook): {}",
                counted(
                    plan.conflicts.len(),
                    "selected node runs",
                    "selected nodes run"
                ),
                listed(
                    plan.conflicts
                        .iter()
                        .map(|c| format!("{} (network {})", c.edge, c.holder))
                )
            ),
        ));
    }
    let stuck = |pick: fn(&Stuck) -> &Vec<(String, String)>| -> Vec<String> {
        observed
            .outcomes
            .iter()
            .filter_map(|(cluster, o)| match o {
                MemberOutcome::Applied(r) => Some((cluster, pick(&r.stuck))),
                _ => None,
            })
            .flat_map(|(cluster, pods)| {
                pods.iter()
                    .map(move |(pod, why)| format!("pod {pod} in cluster {cluster}: {why}"))
            })
            .collect()
    };
    for (reason, pods, what) in [
        (
            HsnNetworkReason::Unschedulable,
            stuck(|s| &s.unschedulable),
            "cannot be scheduled",
        ),
        (
            HsnNetworkReason::AgentsFailing,
            stuck(|s| &s.failing),
            "cannot start",
        ),
    ] {
        if !pods.is_empty() {
            problems.push((
                reason,
                format!(
                    "{} {what}: {}",
                    counted(pods.len(), "agent pod", "agent pods"),
                    listed(pods.into_iter())
                ),
            ));
        }
    }
    if observed.plaintext_ledger {
        problems.push((
            HsnNetworkReason::PlaintextLedger,
            "superNodes.ledgerTls is false: records and observations travel in plain text, \
             readable and alterable on the way, and agents cannot tell their ledger from an \
             impostor"
                .to_owned(),
        ));
    }
    if observed.lost_supers > 0 {
        problems.push((
            HsnNetworkReason::SuperNodesLost,
            format!(
                "{} renewing their Lease; their edges were re-homed",
                counted(
                    observed.lost_supers,
                    "super node stopped",
                    "super nodes stopped"
                )
            ),
        ));
    }
    problems
}

/// `1 <one>` or `<n> <many>`.
fn counted(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The first few items, then how many more.
fn listed(items: impl Iterator<Item = String>) -> String {
    const SHOWN: usize = 5;
    let items: Vec<String> = items.collect();
    let mut out = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        out += &format!(" and {} more", items.len() - SHOWN);
    }
    out
}

/// `Ready`, `Progressing` and `Degraded`. Each reason says one thing and its message
/// never contradicts it: counts under `AllAgentsReady`/`Converged` are all ready, counts
/// under `AgentsNotReady`/`RollingOut` are not; agents all ready with a problem make
/// `Ready=False` with the problem's reason and message.
fn conditions(observed: &Observed<'_>, supers: &ReplicaCounts, edges: &ReplicaCounts) -> Vec<Cond> {
    let problems = problems(observed);
    let converged = supers.ready == supers.desired && edges.ready == edges.desired;
    let summary = problems
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let counts = format!(
        "{}/{} super nodes and {}/{} edge nodes ready",
        supers.ready, supers.desired, edges.ready, edges.desired
    );
    let degraded = match problems.first() {
        Some((reason, _)) => Cond::yes(ConditionType::Degraded, *reason, summary.clone()),
        None => Cond::no(
            ConditionType::Degraded,
            HsnNetworkReason::Healthy,
            "no problem found",
        ),
    };
    let paused = "spec.paused is true: members are not written";
    // A warning (plain text by the user's choice) degrades the network but readies it.
    let blocking: Vec<&(HsnNetworkReason, String)> = problems
        .iter()
        .filter(|(r, _)| *r != HsnNetworkReason::PlaintextLedger)
        .collect();
    let blocking_summary = blocking
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let ready = match blocking.first() {
        _ if observed.paused => Cond::no(ConditionType::Ready, HsnNetworkReason::Paused, paused),
        _ if !converged => Cond::no(
            ConditionType::Ready,
            HsnNetworkReason::AgentsNotReady,
            counts.clone(),
        ),
        Some((reason, _)) => Cond::no(ConditionType::Ready, *reason, blocking_summary),
        None => Cond::yes(
            ConditionType::Ready,
            HsnNetworkReason::AllAgentsReady,
            counts.clone(),
        ),
    };
    let progressing = if observed.paused {
        Cond::no(ConditionType::Progressing, HsnNetworkReason::Paused, paused)
    } else if converged {
        Cond::no(
            ConditionType::Progressing,
            HsnNetworkReason::Converged,
            counts,
        )
    } else {
        Cond::yes(
            ConditionType::Progressing,
            HsnNetworkReason::RollingOut,
            counts,
        )
    };
    vec![ready, progressing, degraded]
}

/// The reason and message of `Degraded` when it turned True or says something new: what
/// an Event reports, once per change rather than once per reconcile.
pub fn newly_degraded(
    old: Option<&HsnNetworkStatus>,
    new: &HsnNetworkStatus,
) -> Option<(HsnNetworkReason, String)> {
    let now = find(&new.conditions, ConditionType::Degraded).filter(|c| c.status == "True")?;
    let before = old.and_then(|o| find(&o.conditions, ConditionType::Degraded));
    let same = before.is_some_and(|b| {
        b.status == now.status && b.reason == now.reason && b.message == now.message
    });
    let reason = now.reason.parse().ok()?;
    (!same).then(|| (reason, now.message.clone()))
}

/// The status of a spec the operator refuses.
pub fn invalid(network: &HsnNetwork, message: String, now: Timestamp) -> HsnNetworkStatus {
    let old = network.status.clone().unwrap_or_default();
    let conds = [
        Cond::no(
            ConditionType::Ready,
            HsnNetworkReason::InvalidSpec,
            message.clone(),
        ),
        Cond::no(
            ConditionType::Progressing,
            HsnNetworkReason::InvalidSpec,
            "waiting for the spec to be fixed",
        ),
        Cond::yes(
            ConditionType::Degraded,
            HsnNetworkReason::InvalidSpec,
            message,
        ),
    ];
    HsnNetworkStatus {
        observed_generation: network.meta().generation,
        conditions: conditions::merge(&old.conditions, &conds, network.meta().generation, now),
        ..old
    }
}

/// Writes `status` unless it equals the current one.
pub async fn write(
    network: &HsnNetwork,
    ctx: &Context,
    status: HsnNetworkStatus,
) -> Result<(), Error> {
    let namespace = network.namespace().unwrap_or_default();
    ctx.metrics
        .network_conditions(&namespace, &network.name_any(), &status.conditions);
    if network.status.as_ref() == Some(&status) {
        return Ok(());
    }
    tracing::debug!(have = ?network.status, want = ?status, "writing HsnNetwork status");
    let api: Api<HsnNetwork> =
        Api::namespaced(ctx.hub.clone(), &network.namespace().unwrap_or_default());
    ctx.apply_status(super::CONTROLLER, &api, &network.name_any(), &status)
        .await
        .map_err(Error::Hub)
}

#[cfg(test)]
mod tests;
