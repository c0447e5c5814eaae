//! What losing one super node does to a plan, counted the same way wherever it is measured:
//! the edges the loss moved, next to the ideal (exactly the lost super's edges).

use std::collections::BTreeSet;

use hsn_operator::plan::{ClusterView, Inputs, Plan, SuperId};

/// The inputs of the reconcile after `lost` stopped renewing its Lease, with `first` in force.
pub fn after_loss(clusters: &[ClusterView], first: &Plan, lost: &SuperId) -> Inputs {
    Inputs {
        clusters: clusters.to_vec(),
        previous: first.previous(&BTreeSet::new()),
        lost_supers: BTreeSet::from([lost.clone()]),
        ..Inputs::default()
    }
}

/// (edges `second` assigns to another super node than `first` does, edges `first` assigns
/// to `lost`: the fewest a loss of `lost` can move).
pub fn moved_and_ideal(first: &Plan, second: &Plan, lost: &SuperId) -> (usize, usize) {
    let moved = first
        .assignment
        .iter()
        .filter(|(e, s)| second.assignment.get(*e) != Some(*s))
        .count();
    let ideal = first.assignment.values().filter(|s| *s == lost).count();
    (moved, ideal)
}
