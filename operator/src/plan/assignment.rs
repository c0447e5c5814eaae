//! Edge-to-super assignment: locality tiers, a bound per super node and pool, and
//! stability under churn.
//!
//! Each edge ranks the live super nodes by locality tier (same zone, same region,
//! anywhere) and, within a tier, by rendezvous (highest-random-weight) hash of the pair.
//! An edge keeps its current super node while that node is alive, under its bound, and not
//! out-ranked by a super node that has just appeared (a closer newcomer always out-ranks a
//! farther node, so locality improves as super nodes come back). So:
//! - losing a super node moves exactly its edges;
//! - adding one moves only the edges whose rendezvous favourite it is (about 1/n of the
//!   edges that share its tier), and each of them to the new node;
//! - the same input always gives the same output.
//!
//! An edge that overflowed to a farther tier because its near super nodes were full stays
//! there until its super node goes away or a closer one appears: moving it back as soon as
//! room frees up would trade stability for locality on every small change.

use std::collections::{BTreeMap, HashMap};

use hsn_api::network::AssignmentPolicy;
use xxhash_rust::xxh3::xxh3_64;

use super::membership::Edge;
use super::{EdgeId, Locality, Previous, SuperId};

/// Edge to super node.
pub type Assignment = BTreeMap<EdgeId, SuperId>;

/// Locality tier of a super node for an edge: lower is closer.
fn tier(policy: AssignmentPolicy, edge: &Locality, sup: &Locality) -> u8 {
    match policy {
        AssignmentPolicy::Uniform => 0,
        AssignmentPolicy::LocalityFirst if edge.region != sup.region => 2,
        AssignmentPolicy::LocalityFirst if edge.zone != sup.zone => 1,
        AssignmentPolicy::LocalityFirst => 0,
    }
}

/// Rendezvous weight of the (edge, super) pair; stable across releases and machines.
fn weight(edge: &EdgeId, sup: &SuperId) -> u64 {
    let key = format!(
        "{}\0{}\0{}\0{}",
        edge.cluster, edge.node, sup.cluster, sup.ordinal
    );
    xxh3_64(key.as_bytes())
}

/// Assigns every edge to a live super node; returns the assignment and the edges left over.
pub(super) fn assign(
    edges: &[Edge<'_>],
    supers: &[(SuperId, Locality)],
    policy: AssignmentPolicy,
    previous: &Previous,
) -> (Assignment, Vec<EdgeId>) {
    let known = &previous.supers;
    let mut load: HashMap<(&SuperId, &str), u32> = HashMap::new();
    let mut assignment = Assignment::new();
    let mut pending = Vec::new();

    // Each edge's super nodes, best first.
    let ranked = |edge: &Edge<'_>| -> Vec<(u8, &SuperId)> {
        let mut r: Vec<(u8, u64, &SuperId)> = supers
            .iter()
            .map(|(s, loc)| (tier(policy, &edge.locality, loc), weight(&edge.id, s), s))
            .collect();
        r.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
        r.into_iter().map(|(t, _, s)| (t, s)).collect()
    };

    // Pass 1: keep what may stay.
    for edge in edges {
        let ranking = ranked(edge);
        let keep = previous.assignment.get(&edge.id).and_then(|current| {
            let (_, favourite) = *ranking.first()?;
            let (_, current) = *ranking.iter().find(|(_, s)| *s == current)?;
            let newcomer_wins = favourite != current && !known.contains(favourite);
            let room = load.get(&(current, edge.pool)).copied().unwrap_or(0) < edge.max_per_super;
            (!newcomer_wins && room).then_some(current)
        });
        match keep {
            Some(s) => {
                *load.entry((s, edge.pool)).or_default() += 1;
                assignment.insert(edge.id.clone(), s.clone());
            }
            None => pending.push((edge, ranking)),
        }
    }

    // Pass 2: the rest go to their best super node with room.
    let mut unassigned = Vec::new();
    for (edge, ranking) in pending {
        let choice = ranking
            .into_iter()
            .map(|(_, s)| s)
            .find(|s| load.get(&(*s, edge.pool)).copied().unwrap_or(0) < edge.max_per_super);
        match choice {
            Some(s) => {
                *load.entry((s, edge.pool)).or_default() += 1;
                assignment.insert(edge.id.clone(), s.clone());
            }
            None => unassigned.push(edge.id.clone()),
        }
    }
    (assignment, unassigned)
}
