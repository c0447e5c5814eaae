//! Edge membership: which nodes run an edge agent, and for which pool.

use hsn_api::network::EdgePool;

use super::{ClusterView, EdgeId, Locality, REGION_LABEL, ZONE_LABEL};

/// An edge node with what assignment needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Edge<'a> {
    pub id: EdgeId,
    pub pool: &'a str,
    pub max_per_super: u32,
    pub locality: Locality,
}

/// The ready nodes matching each pool's selectors, in clusters matching its cluster
/// selector, sorted by id. A node matching several pools belongs to the first of them, so
/// that one node never runs two edge agents.
pub(super) fn edge_members<'a>(pools: &'a [EdgePool], clusters: &[&ClusterView]) -> Vec<Edge<'a>> {
    let mut edges = Vec::new();
    for cluster in clusters {
        for node in cluster.nodes.iter().filter(|n| n.ready) {
            let pool = pools.iter().find(|p| {
                p.cluster_selector.matches(&cluster.labels) && p.node_selector.matches(&node.labels)
            });
            let Some(pool) = pool else { continue };
            let label = |key: &str, default: &str| {
                node.labels
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| default.to_string())
            };
            edges.push(Edge {
                id: EdgeId {
                    cluster: cluster.name.clone(),
                    node: node.name.clone(),
                },
                pool: &pool.name,
                max_per_super: u32::try_from(pool.max_edges_per_super_node).unwrap_or(1),
                locality: Locality {
                    region: label(REGION_LABEL, &cluster.region),
                    zone: label(ZONE_LABEL, &cluster.zone),
                },
            });
        }
    }
    edges.sort_by(|a, b| a.id.cmp(&b.id));
    edges
}
