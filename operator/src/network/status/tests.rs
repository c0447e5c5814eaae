//! Conditions never contradict their reasons, whatever the counts, problems and pause.

use std::collections::BTreeMap;

use hsn_api::network::ReplicaCounts;
use hsn_api::{ConditionType, HsnNetworkReason};

use super::super::apply::{MemberOutcome, Readiness};
use super::{Observed, conditions};
use crate::conditions::Cond;
use crate::plan::{ClusterPlan, EdgeId, NodeConflict, Plan};

fn counts(ready: i32, desired: i32) -> ReplicaCounts {
    ReplicaCounts { desired, ready }
}

/// Whether a counts message ("a/b super nodes and c/d edge nodes ready") shows every agent ready.
fn all_ready(message: &str) -> Option<bool> {
    let words: Vec<&str> = message.split(' ').collect();
    let ratio = |w: &str| {
        let (a, b) = w.split_once('/')?;
        Some(a.parse::<i32>().ok()? == b.parse::<i32>().ok()?)
    };
    match words.as_slice() {
        [s, "super", "nodes", "and", e, "edge", "nodes", "ready"] => Some(ratio(s)? && ratio(e)?),
        _ => None,
    }
}

/// Why `c` contradicts itself, if it does.
fn contradiction(c: &Cond) -> Option<String> {
    use HsnNetworkReason::*;
    let reason: HsnNetworkReason = c.reason.parse().ok()?;
    let ok = match (c.type_, reason) {
        (ConditionType::Ready, AllAgentsReady) => c.status && all_ready(&c.message) == Some(true),
        (ConditionType::Ready, AgentsNotReady) => !c.status && all_ready(&c.message) == Some(false),
        (ConditionType::Progressing, Converged) => !c.status && all_ready(&c.message) == Some(true),
        (ConditionType::Progressing, RollingOut) => {
            c.status && all_ready(&c.message) == Some(false)
        }
        (ConditionType::Degraded, Healthy) => !c.status,
        (ConditionType::Degraded, Paused) => false,
        (_, Paused) => !c.status && c.message.contains("paused"),
        (ConditionType::Degraded, _) => c.status && all_ready(&c.message).is_none(),
        (ConditionType::Ready, _) => !c.status && all_ready(&c.message).is_none(),
        _ => false,
    };
    (!ok).then(|| format!("{:?} {} {}: {}", c.type_, c.status, c.reason, c.message))
}

/// A plan with 4 super nodes and 16 edges on cluster `a`, and `problem` applied.
fn scenario(problem: usize) -> (Plan, BTreeMap<String, MemberOutcome>, usize) {
    let mut plan = Plan::default();
    plan.clusters.insert(
        "a".into(),
        ClusterPlan {
            super_replicas: 4,
            edge_pools: BTreeMap::from([(
                "p".to_string(),
                (0..16).map(|i| format!("n{i}")).collect(),
            )]),
        },
    );
    let mut readiness = Readiness {
        supers: 4,
        edges: 16,
        ..Default::default()
    };
    let mut outcomes = BTreeMap::new();
    let mut lost = 0;
    match problem {
        1 => plan.unplaced_supers = 2,
        2 => plan.edges_over_capacity = vec![EdgeId::new("a", "n16")],
        3 => plan.unassigned = vec![EdgeId::new("a", "n3")],
        4 => {
            plan.conflicts = vec![NodeConflict {
                edge: EdgeId::new("a", "n17"),
                holder: "other/older".into(),
            }]
        }
        5 => {
            readiness.stuck.unschedulable = vec![(
                "hsn-super-node-3".into(),
                "0/20 nodes are available: 20 node(s) didn't match pod anti-affinity rules".into(),
            )]
        }
        6 => {
            outcomes.insert("b".to_string(), MemberOutcome::Failed("boom".into()));
        }
        7 => lost = 1,
        8 => {
            readiness.stuck.failing = vec![(
                "hsn-edge-p-x".into(),
                "InvalidImageName: couldn't parse image name".into(),
            )]
        }
        _ => {}
    }
    outcomes.insert("a".to_string(), MemberOutcome::Applied(readiness));
    (plan, outcomes, lost)
}

/// What is observed with no Lease lost, not paused, no ledger report.
fn calm<'a>(
    plan: &'a Plan,
    outcomes: &'a BTreeMap<String, MemberOutcome>,
    plaintext_ledger: bool,
) -> Observed<'a> {
    Observed {
        plan,
        outcomes,
        lost_supers: 0,
        paused: false,
        ledger: None,
        plaintext_ledger,
    }
}

#[test]
fn no_condition_contradicts_its_reason() {
    let mut seen = Vec::new();
    for problem in 0..9 {
        let (plan, outcomes, lost_supers) = scenario(problem);
        for paused in [false, true] {
            for (supers, edges) in [
                (counts(4, 4), counts(16, 16)),
                (counts(3, 4), counts(16, 16)),
                (counts(4, 4), counts(0, 16)),
                (counts(0, 0), counts(0, 0)),
            ] {
                let observed = Observed {
                    plan: &plan,
                    outcomes: &outcomes,
                    lost_supers,
                    paused,
                    ledger: None,
                    plaintext_ledger: problem == 0,
                };
                let conds = conditions(&observed, &supers, &edges);
                for c in &conds {
                    if let Some(why) = contradiction(c) {
                        panic!("problem {problem}, paused {paused}, {supers:?} {edges:?}: {why}");
                    }
                }
                seen.push(conds[0].reason);
            }
        }
    }
    for reason in [
        "AllAgentsReady",
        "AgentsNotReady",
        "Paused",
        "InsufficientCapacity",
        "NodeConflict",
        "Unschedulable",
        "AgentsFailing",
    ] {
        assert!(
            seen.contains(&reason),
            "no scenario gave Ready reason {reason}"
        );
    }
}

#[test]
fn plaintext_ledgers_degrade_a_ready_network() {
    let (plan, outcomes, _) = scenario(0);
    let observed = calm(&plan, &outcomes, true);
    let conds = conditions(&observed, &counts(4, 4), &counts(16, 16));
    assert_eq!((conds[0].status, conds[0].reason), (true, "AllAgentsReady"));
    assert_eq!(
        (conds[2].status, conds[2].reason),
        (true, "PlaintextLedger")
    );
    assert!(
        conds[2].message.contains("plain text"),
        "{}",
        conds[2].message
    );
}

#[test]
fn all_agents_ready_with_too_few_super_nodes_is_not_reported_as_agents_not_ready() {
    // What the issue saw: "AgentsNotReady: 4/4 super nodes and 16/16 edge nodes ready".
    let (plan, outcomes, _) = scenario(1);
    let observed = calm(&plan, &outcomes, false);
    let conds = conditions(&observed, &counts(4, 4), &counts(16, 16));
    let ready = &conds[0];
    assert_eq!(
        (ready.status, ready.reason),
        (false, "InsufficientCapacity")
    );
    assert!(
        ready.message.starts_with("2 super nodes fit on no Ready"),
        "{}",
        ready.message
    );
    assert_eq!((conds[1].status, conds[1].reason), (false, "Converged"));
    assert_eq!(
        (conds[2].status, conds[2].reason),
        (true, "InsufficientCapacity")
    );
}

#[test]
fn pods_that_cannot_be_scheduled_are_never_healthy() {
    let (plan, outcomes, _) = scenario(5);
    let observed = calm(&plan, &outcomes, false);
    let conds = conditions(&observed, &counts(3, 4), &counts(16, 16));
    assert_eq!((conds[2].status, conds[2].reason), (true, "Unschedulable"));
    assert_eq!(
        conds[2].message,
        "1 agent pod cannot be scheduled: pod hsn-super-node-3 in cluster a: 0/20 nodes are \
         available: 20 node(s) didn't match pod anti-affinity rules"
    );
}

#[test]
fn an_event_follows_each_change_of_degraded_not_each_reconcile() {
    use hsn_api::network::HsnNetworkStatus;
    let status = |conds: &[Cond]| HsnNetworkStatus {
        conditions: crate::conditions::merge(
            &[],
            conds,
            None,
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ),
        ..Default::default()
    };
    let healthy = status(&[Cond::no(
        ConditionType::Degraded,
        HsnNetworkReason::Healthy,
        "no problem found",
    )]);
    let conflict = status(&[Cond::yes(
        ConditionType::Degraded,
        HsnNetworkReason::NodeConflict,
        "n1",
    )]);
    let more = status(&[Cond::yes(
        ConditionType::Degraded,
        HsnNetworkReason::NodeConflict,
        "n1, n2",
    )]);
    assert_eq!(super::newly_degraded(Some(&healthy), &healthy), None);
    assert_eq!(
        super::newly_degraded(Some(&healthy), &conflict),
        Some((HsnNetworkReason::NodeConflict, "n1".to_string()))
    );
    assert_eq!(
        super::newly_degraded(None, &conflict).map(|d| d.0),
        Some(HsnNetworkReason::NodeConflict)
    );
    assert_eq!(super::newly_degraded(Some(&conflict), &conflict), None);
    assert!(super::newly_degraded(Some(&conflict), &more).is_some());
    assert_eq!(super::newly_degraded(Some(&conflict), &healthy), None);
}
