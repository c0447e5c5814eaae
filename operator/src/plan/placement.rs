//! Super-node placement: spread replicas over eligible clusters by region, zone or
//! cluster, within per-cluster bounds.

use std::collections::BTreeMap;

use hsn_api::network::{SpreadTopology, SuperNodes};

use super::{ClusterView, Held};

/// Replicas per cluster name. Eligible clusters are Ready, uncordoned and selected; each
/// replica goes to the topology domain with the fewest so far, and inside it to the
/// cluster with the fewest (ties by name), so counts per domain differ by at most one
/// unless a bound stops it. A cluster's `maxSuperNodes` counts the super nodes older
/// networks hold there.
pub(super) fn place_supers(
    spec: &SuperNodes,
    clusters: &[&ClusterView],
    held: &BTreeMap<String, Held>,
) -> BTreeMap<String, u32> {
    let placement = &spec.placement;
    let per_cluster_max = placement
        .max_per_cluster
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(u32::MAX);
    let eligible: Vec<(&ClusterView, u32)> = clusters
        .iter()
        .filter(|c| c.ready && !c.cordoned && placement.cluster_selector.matches(&c.labels))
        .map(|c| {
            let taken = held.get(&c.name).map_or(0, |h| h.supers);
            let room = c
                .max_super_nodes
                .map_or(u32::MAX, |m| m.saturating_sub(taken));
            (*c, per_cluster_max.min(room))
        })
        .filter(|(_, cap)| *cap > 0)
        .collect();

    let domain = |c: &ClusterView| match placement.spread_by {
        SpreadTopology::Region => c.region.clone(),
        SpreadTopology::Zone => format!("{}/{}", c.region, c.zone),
        SpreadTopology::Cluster => c.name.clone(),
    };

    let mut per_cluster: BTreeMap<String, u32> = BTreeMap::new();
    let mut per_domain: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..u32::try_from(spec.replicas).unwrap_or(0) {
        let best = eligible
            .iter()
            .filter(|(c, cap)| per_cluster.get(&c.name).copied().unwrap_or(0) < *cap)
            .min_by_key(|(c, _)| {
                let d = domain(c);
                (
                    per_domain.get(&d).copied().unwrap_or(0),
                    d,
                    per_cluster.get(&c.name).copied().unwrap_or(0),
                    c.name.clone(),
                )
            });
        let Some((cluster, _)) = best else { break };
        *per_cluster.entry(cluster.name.clone()).or_default() += 1;
        *per_domain.entry(domain(cluster)).or_default() += 1;
    }
    per_cluster
}
