//! Edge membership: which nodes run an edge agent, and for which pool.

use hsn_api::network::EdgePool;

use super::{ClusterView, EdgeId, Held, Inputs, Locality, NodeConflict, REGION_LABEL, ZONE_LABEL};

/// An edge node with what assignment needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Edge<'a> {
    pub id: EdgeId,
    pub pool: &'a str,
    pub max_per_super: u32,
    pub locality: Locality,
}

/// The edges, and the selected nodes left out.
#[derive(Debug, Default)]
pub(super) struct Members<'a> {
    /// Sorted by id.
    pub edges: Vec<Edge<'a>>,
    /// Nodes another network holds, sorted.
    pub conflicts: Vec<NodeConflict>,
    /// Nodes over their cluster's `maxEdgeNodes`, sorted.
    pub over_capacity: Vec<EdgeId>,
}

/// The ready nodes matching each pool's selectors, in clusters matching its cluster
/// selector, sorted by id. A node matching several pools belongs to the first of them, so
/// that one node never runs two edge agents. Left out: nodes another network holds and
/// nodes this network's super nodes run on (one agent per node, whatever its network or
/// role: the scheduler places super nodes, so edges yield), new edges on a cordoned cluster (those already
/// assigned stay), and edges over the cluster's `maxEdgeNodes` after other networks' edges
/// (those already assigned are kept first).
pub(super) fn edge_members<'a>(
    pools: &'a [EdgePool],
    clusters: &[&ClusterView],
    inputs: &Inputs,
) -> Members<'a> {
    let mut out = Members::default();
    let none = Held::default();
    for cluster in clusters {
        let held = inputs.held.get(&cluster.name).unwrap_or(&none);
        let supers = inputs.super_hosts.get(&cluster.name);
        let placed = |id: &EdgeId| inputs.previous.assignment.contains_key(id);
        let mut candidates = Vec::new();
        for node in cluster.nodes.iter().filter(|n| n.ready) {
            let pool = pools.iter().find(|p| {
                p.cluster_selector.matches(&cluster.labels) && p.node_selector.matches(&node.labels)
            });
            let Some(pool) = pool else { continue };
            let id = EdgeId {
                cluster: cluster.name.clone(),
                node: node.name.clone(),
            };
            if let Some(holder) = held.nodes.get(&node.name) {
                out.conflicts.push(NodeConflict {
                    edge: id,
                    holder: holder.clone(),
                });
                continue;
            }
            if supers.is_some_and(|s| s.contains(&node.name)) {
                continue;
            }
            if cluster.cordoned && !placed(&id) {
                continue;
            }
            let label = |key: &str, default: &str| {
                node.labels
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| default.to_string())
            };
            candidates.push(Edge {
                id,
                pool: &pool.name,
                max_per_super: u32::try_from(pool.max_edges_per_super_node).unwrap_or(1),
                locality: Locality {
                    region: label(REGION_LABEL, &cluster.region),
                    zone: label(ZONE_LABEL, &cluster.zone),
                },
            });
        }
        if let Some(max) = cluster.max_edge_nodes {
            let room = usize::try_from(max.saturating_sub(held.edges)).unwrap_or(usize::MAX);
            // Edges already assigned first, so a full cluster never swaps one for another.
            candidates.sort_by(|a, b| (!placed(&a.id), &a.id).cmp(&(!placed(&b.id), &b.id)));
            if candidates.len() > room {
                out.over_capacity
                    .extend(candidates.drain(room..).map(|e| e.id));
            }
        }
        out.edges.extend(candidates);
    }
    out.edges.sort_by(|a, b| a.id.cmp(&b.id));
    out.conflicts.sort();
    out.over_capacity.sort();
    out
}
