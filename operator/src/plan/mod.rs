//! The pure heart of the operator: from a network's spec, the cluster inventory and the
//! agents' liveness, compute where super nodes go, which nodes are edge nodes, and which
//! super node guarantees each edge. No I/O; deterministic for the same input, whatever
//! the order of that input.

mod assignment;
mod membership;
mod placement;

use std::collections::{BTreeMap, BTreeSet};

use hsn_api::network::HsnNetworkSpec;
pub use hsn_core::{EdgeId, SuperId};

pub use assignment::Assignment;

/// Node label carrying the zone (Kubernetes well-known label).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Node label carrying the region (Kubernetes well-known label).
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";

/// A member cluster as the plan sees it: the MecCluster plus what its probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// MecCluster name.
    pub name: String,
    /// MecCluster labels, matched by cluster selectors.
    pub labels: BTreeMap<String, String>,
    /// Site region.
    pub region: String,
    /// Site zone; nodes without a zone label are here.
    pub zone: String,
    /// Whether the cluster is Ready (reachable within its grace period).
    pub ready: bool,
    /// A cordoned cluster receives no new super nodes or edges; edges already placed stay.
    pub cordoned: bool,
    /// Most super nodes the cluster may host, across all networks.
    pub max_super_nodes: Option<u32>,
    /// Most edge nodes the cluster may host, across all networks.
    pub max_edge_nodes: Option<u32>,
    /// Nodes last seen in the cluster (kept while it is unreachable: its data plane may
    /// still carry traffic even when its API server does not answer).
    pub nodes: Vec<NodeView>,
}

/// A Kubernetes node of a member cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Node labels, matched by edge pools' node selectors.
    pub labels: BTreeMap<String, String>,
    /// Whether the node's Ready condition is True.
    pub ready: bool,
}

/// Where a super node or edge node sits, for locality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locality {
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
}

/// What the plan needs besides the spec.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Every MecCluster with its probe results.
    pub clusters: Vec<ClusterView>,
    /// Super nodes whose Lease expired: placed, but not trusted with edges.
    pub lost_supers: BTreeSet<SuperId>,
    /// The plan currently in force, so that churn moves as few edges as possible.
    pub previous: Previous,
    /// Per cluster, what other networks hold there (see `network::others`: older networks'
    /// agents and the capacity they use, and the nodes of any network's super nodes).
    pub held: BTreeMap<String, Held>,
    /// Per cluster, the nodes this network's own super nodes run on (where the scheduler
    /// put them): they run no edge of it.
    pub super_hosts: BTreeMap<String, BTreeSet<String>>,
}

/// What other networks hold on one cluster. They keep it: this network plans around it
/// (capacity counts their agents; their nodes run no agent of this one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Their super nodes, counted in `maxSuperNodes`.
    pub supers: u32,
    /// Their edge nodes, counted in `maxEdgeNodes`.
    pub edges: u32,
    /// Nodes running one of their agents, each with the network holding it (`namespace/name`).
    pub nodes: BTreeMap<String, String>,
}

/// A node one of this network's pools selects, left out because another network holds it:
/// two agents on one node would fight over its host ports and XDP hook.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeConflict {
    /// The edge this network would have run there.
    pub edge: EdgeId,
    /// The network holding the node (`namespace/name`).
    pub holder: String,
}

/// What stays of the plan in force: its super nodes and assignment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Previous {
    /// The live super nodes the assignment was made over.
    pub supers: BTreeSet<SuperId>,
    /// Edge to super node.
    pub assignment: Assignment,
}

/// The desired state of one network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per cluster: super-node replicas and edge nodes by pool.
    pub clusters: BTreeMap<String, ClusterPlan>,
    /// Super replicas the spec wants but no eligible cluster could take.
    pub unplaced_supers: u32,
    /// Placed super nodes whose Lease has not expired, sorted.
    pub live_supers: Vec<SuperId>,
    /// Edge to super node.
    pub assignment: Assignment,
    /// Edges no super node could take (none alive, or all at their bound).
    pub unassigned: Vec<EdgeId>,
    /// Selected nodes left out because another network holds them, sorted.
    pub conflicts: Vec<NodeConflict>,
    /// Selected nodes left out because their cluster's `capacity.maxEdgeNodes` is reached
    /// (older networks' edges count first), sorted.
    pub edges_over_capacity: Vec<EdgeId>,
    /// Clusters with a `capacity.maxSuperNodes` that other networks' super nodes use, with
    /// how many they hold: why super nodes may be unplaced.
    pub supers_held_elsewhere: BTreeMap<String, u32>,
}

/// The part of a network on one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterPlan {
    /// Super-node StatefulSet replicas.
    pub super_replicas: u32,
    /// Edge pool name to the nodes running its edge agents, sorted.
    pub edge_pools: BTreeMap<String, Vec<String>>,
}

impl Plan {
    /// Every placed super node.
    pub fn supers(&self) -> impl Iterator<Item = SuperId> + '_ {
        self.clusters.iter().flat_map(|(cluster, p)| {
            (0..p.super_replicas).map(move |ordinal| SuperId {
                cluster: cluster.clone(),
                ordinal,
            })
        })
    }

    /// The part of this plan the next one must stay close to.
    pub fn previous(&self, lost_supers: &BTreeSet<SuperId>) -> Previous {
        Previous {
            supers: self.supers().filter(|s| !lost_supers.contains(s)).collect(),
            assignment: self.assignment.clone(),
        }
    }

    /// Number of edge nodes over all clusters and pools.
    pub fn edge_count(&self) -> usize {
        self.clusters
            .values()
            .flat_map(|c| c.edge_pools.values())
            .map(Vec::len)
            .sum()
    }
}

/// Computes the plan of a network.
pub fn plan(spec: &HsnNetworkSpec, inputs: &Inputs) -> Plan {
    let mut clusters: Vec<&ClusterView> = inputs.clusters.iter().collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));

    let replicas = placement::place_supers(&spec.super_nodes, &clusters, &inputs.held);
    let members = membership::edge_members(&spec.edge_pools, &clusters, inputs);
    let edges = members.edges;

    let mut plan = Plan {
        unplaced_supers: u32::try_from(spec.super_nodes.replicas)
            .unwrap_or(0)
            .saturating_sub(replicas.values().sum()),
        conflicts: members.conflicts,
        edges_over_capacity: members.over_capacity,
        supers_held_elsewhere: clusters
            .iter()
            .filter(|c| c.max_super_nodes.is_some())
            .filter_map(|c| Some((c.name.clone(), inputs.held.get(&c.name)?.supers)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        ..Plan::default()
    };
    for (cluster, n) in &replicas {
        plan.clusters
            .entry(cluster.clone())
            .or_default()
            .super_replicas = *n;
    }
    for edge in &edges {
        plan.clusters
            .entry(edge.id.cluster.clone())
            .or_default()
            .edge_pools
            .entry(edge.pool.to_string())
            .or_default()
            .push(edge.id.node.clone());
    }

    let locality_of = |cluster: &str| {
        clusters
            .iter()
            .find(|c| c.name == cluster)
            .map(|c| Locality {
                region: c.region.clone(),
                zone: c.zone.clone(),
            })
    };
    let alive: Vec<(SuperId, Locality)> = plan
        .supers()
        .filter(|s| !inputs.lost_supers.contains(s))
        .filter_map(|s| locality_of(&s.cluster).map(|l| (s, l)))
        .collect();
    plan.live_supers = alive.iter().map(|(s, _)| s.clone()).collect();
    let (assignment, unassigned) =
        assignment::assign(&edges, &alive, spec.routing.assignment, &inputs.previous);
    plan.assignment = assignment;
    plan.unassigned = unassigned;
    plan
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_shared;
