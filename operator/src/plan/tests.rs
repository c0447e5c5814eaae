//! Unit and property tests of the plan.

use std::collections::{BTreeMap, BTreeSet};

use hsn_api::network::{
    AssignmentPolicy, EdgePool, HsnNetworkSpec, Metering, Placement, Routing, SliceType,
    SpreadTopology, SuperNodes,
};
use hsn_api::selector::Selector;
use proptest::prelude::*;

use super::*;

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A Ready cluster with `per_zone` edge-capable nodes in each of `zones`.
pub(super) fn cluster(name: &str, region: &str, zones: &[&str], per_zone: usize) -> ClusterView {
    let nodes = zones
        .iter()
        .flat_map(|z| {
            (0..per_zone).map(move |i| NodeView {
                name: format!("{z}-n{i}"),
                labels: labels(&[("edge", "true"), (ZONE_LABEL, z), (REGION_LABEL, region)]),
                ready: true,
            })
        })
        .collect();
    ClusterView {
        name: name.into(),
        labels: labels(&[("tier", "mec")]),
        region: region.into(),
        zone: zones[0].into(),
        ready: true,
        cordoned: false,
        max_super_nodes: None,
        max_edge_nodes: None,
        nodes,
    }
}

pub(super) fn pool(name: &str, max_per_super: i32, selector: &[(&str, &str)]) -> EdgePool {
    EdgePool {
        name: name.into(),
        cluster_selector: Selector::default(),
        node_selector: Selector {
            match_labels: labels(selector),
            ..Default::default()
        },
        slice_type: SliceType::EMbb,
        max_edges_per_super_node: max_per_super,
        tolerations: vec![],
    }
}

pub(super) fn spec(replicas: i32, spread: SpreadTopology, pools: Vec<EdgePool>) -> HsnNetworkSpec {
    HsnNetworkSpec {
        super_nodes: SuperNodes {
            replicas,
            image: "agent".into(),
            ledger_image: "ledger".into(),
            ledger_tls: true,
            resources: None,
            placement: Placement {
                spread_by: spread,
                ..Default::default()
            },
            storage: None,
        },
        edge_pools: pools,
        routing: Routing::default(),
        metering: Metering::default(),
        paused: false,
    }
}

pub(super) fn inputs(clusters: Vec<ClusterView>) -> Inputs {
    Inputs {
        clusters,
        ..Default::default()
    }
}

pub(super) fn replicas(plan: &Plan) -> BTreeMap<&str, u32> {
    plan.clusters
        .iter()
        .filter(|(_, c)| c.super_replicas > 0)
        .map(|(n, c)| (n.as_str(), c.super_replicas))
        .collect()
}

#[test]
fn supers_spread_over_regions_then_clusters() {
    let s = spec(4, SpreadTopology::Region, vec![pool("p", 64, &[])]);
    let p = plan(
        &s,
        &inputs(vec![
            cluster("a1", "eu", &["eu-1"], 1),
            cluster("a2", "eu", &["eu-2"], 1),
            cluster("b1", "us", &["us-1"], 1),
        ]),
    );
    // Two per region; inside eu, one per cluster.
    assert_eq!(
        replicas(&p),
        BTreeMap::from([("a1", 1), ("a2", 1), ("b1", 2)])
    );
    assert_eq!(p.unplaced_supers, 0);
}

#[test]
fn placement_honours_bounds_and_reports_the_shortfall() {
    let mut s = spec(6, SpreadTopology::Cluster, vec![pool("p", 64, &[])]);
    s.super_nodes.placement.max_per_cluster = Some(2);
    let mut small = cluster("b", "eu", &["eu-2"], 1);
    small.max_super_nodes = Some(1);
    let p = plan(&s, &inputs(vec![cluster("a", "eu", &["eu-1"], 1), small]));
    assert_eq!(replicas(&p), BTreeMap::from([("a", 2), ("b", 1)]));
    assert_eq!(p.unplaced_supers, 3);
}

#[test]
fn placement_skips_unready_cordoned_and_unselected_clusters() {
    let mut s = spec(3, SpreadTopology::Cluster, vec![pool("p", 64, &[])]);
    s.super_nodes.placement.cluster_selector = Selector {
        match_labels: labels(&[("tier", "mec")]),
        ..Default::default()
    };
    let mut down = cluster("down", "eu", &["eu-1"], 1);
    down.ready = false;
    let mut cordoned = cluster("cordoned", "eu", &["eu-1"], 1);
    cordoned.cordoned = true;
    let mut hub = cluster("hub", "eu", &["eu-1"], 1);
    hub.labels = labels(&[("tier", "hub")]);
    let p = plan(
        &s,
        &inputs(vec![down, cordoned, hub, cluster("ok", "eu", &["eu-1"], 1)]),
    );
    assert_eq!(replicas(&p), BTreeMap::from([("ok", 3)]));
}

#[test]
fn a_node_matching_two_pools_runs_one_agent_and_unready_nodes_none() {
    let s = spec(
        1,
        SpreadTopology::Zone,
        vec![
            pool("first", 64, &[("edge", "true")]),
            pool("second", 64, &[]),
        ],
    );
    let mut c = cluster("a", "eu", &["eu-1"], 2);
    c.nodes[1].ready = false;
    c.nodes.push(NodeView {
        name: "plain".into(),
        labels: BTreeMap::new(),
        ready: true,
    });
    let p = plan(&s, &inputs(vec![c]));
    let pools = &p.clusters["a"].edge_pools;
    assert_eq!(pools["first"], vec!["eu-1-n0".to_string()]);
    assert_eq!(pools["second"], vec!["plain".to_string()]);
    assert_eq!(p.edge_count(), 2);
}

#[test]
fn edges_prefer_their_zone_then_their_region() {
    // One super in eu-1 (cluster a); none in eu-2; one in us.
    let mut s = spec(
        2,
        SpreadTopology::Region,
        vec![pool("p", 64, &[("edge", "true")])],
    );
    s.super_nodes.placement.max_per_cluster = Some(1);
    let mut b = cluster("b", "eu", &["eu-2"], 2);
    b.max_super_nodes = Some(0);
    let p = plan(
        &s,
        &inputs(vec![
            cluster("a", "eu", &["eu-1"], 2),
            b,
            cluster("c", "us", &["us-1"], 2),
        ]),
    );
    for (edge, sup) in &p.assignment {
        let want = if edge.cluster == "c" { "c" } else { "a" };
        assert_eq!(sup.cluster, want, "{edge} went to {sup}");
    }
    assert_eq!(p.assignment.len(), 6);
}

#[test]
fn the_bound_per_super_node_overflows_to_the_next_tier_then_leaves_edges_unassigned() {
    let mut s = spec(
        2,
        SpreadTopology::Region,
        vec![pool("p", 3, &[("edge", "true")])],
    );
    s.super_nodes.placement.max_per_cluster = Some(1);
    let p = plan(
        &s,
        &inputs(vec![
            cluster("a", "eu", &["eu-1"], 5),
            cluster("c", "us", &["us-1"], 2),
        ]),
    );
    let on = |c: &str| p.assignment.values().filter(|s| s.cluster == c).count();
    assert_eq!(on("a"), 3);
    assert_eq!(on("c"), 3, "two local edges plus one overflow from eu");
    assert_eq!(p.unassigned.len(), 1);
}

#[test]
fn a_lost_cluster_moves_its_supers_and_rehomes_its_edges() {
    let s = spec(
        2,
        SpreadTopology::Cluster,
        vec![pool("p", 64, &[("edge", "true")])],
    );
    let a = cluster("a", "eu", &["eu-1"], 3);
    let b = cluster("b", "us", &["us-1"], 3);
    let before = plan(&s, &inputs(vec![a.clone(), b.clone()]));
    assert_eq!(replicas(&before), BTreeMap::from([("a", 1), ("b", 1)]));
    assert!(
        before
            .assignment
            .iter()
            .all(|(e, s)| e.cluster == s.cluster)
    );

    let mut b_down = b;
    b_down.ready = false;
    let after = plan(
        &s,
        &Inputs {
            clusters: vec![a, b_down],
            previous: before.previous(&BTreeSet::new()),
            ..Default::default()
        },
    );
    assert_eq!(replicas(&after), BTreeMap::from([("a", 2)]));
    // b's edges still exist (its data plane may work) and are now guaranteed from a.
    assert_eq!(after.assignment.len(), 6);
    assert!(after.assignment.values().all(|s| s.cluster == "a"));
    // a's edges stay, or move to the replica re-placed from b.
    for (e, s) in &before.assignment {
        if e.cluster == "a" {
            assert!([s.clone(), SuperId::new("a", 1)].contains(&after.assignment[e]));
        }
    }
}

#[test]
fn uniform_policy_ignores_locality() {
    let mut s = spec(
        2,
        SpreadTopology::Cluster,
        vec![pool("p", 64, &[("edge", "true")])],
    );
    s.routing.assignment = AssignmentPolicy::Uniform;
    let p = plan(
        &s,
        &inputs(vec![
            cluster("a", "eu", &["eu-1"], 20),
            cluster("b", "us", &["us-1"], 20),
        ]),
    );
    let remote = p
        .assignment
        .iter()
        .filter(|(e, s)| e.cluster != s.cluster)
        .count();
    assert!(remote > 5, "only {remote} of 40 edges crossed regions");
}

#[test]
fn adding_a_super_moves_about_one_in_n_edges_all_to_it() {
    let n = 9;
    let s = |r| {
        spec(
            r,
            SpreadTopology::Zone,
            vec![pool("p", 10_000, &[("edge", "true")])],
        )
    };
    let clusters = vec![cluster("a", "eu", &["eu-1"], 1000)];
    let before = plan(&s(n), &inputs(clusters.clone()));
    let after = plan(
        &s(n + 1),
        &Inputs {
            clusters,
            previous: before.previous(&BTreeSet::new()),
            ..Default::default()
        },
    );
    let newcomer = SuperId::new("a", n as u32);
    let moved: Vec<_> = before
        .assignment
        .iter()
        .filter(|(e, s)| after.assignment[*e] != **s)
        .collect();
    assert!(moved.iter().all(|(e, _)| after.assignment[*e] == newcomer));
    // Expected 1000/10 = 100; binomial spread is about ±10.
    assert!(
        (60..=140).contains(&moved.len()),
        "{} edges moved",
        moved.len()
    );
}

// ---- properties ----

pub(super) fn arb_inventory() -> impl Strategy<Value = (HsnNetworkSpec, Vec<ClusterView>)> {
    let one = (
        0..3usize,
        0..2usize,
        0..12usize,
        any::<bool>(),
        proptest::option::of(0..4u32),
    );
    (
        1..12i32,
        prop_oneof![
            Just(SpreadTopology::Region),
            Just(SpreadTopology::Zone),
            Just(SpreadTopology::Cluster)
        ],
        prop_oneof![
            Just(AssignmentPolicy::LocalityFirst),
            Just(AssignmentPolicy::Uniform)
        ],
        1..20i32,
        proptest::collection::vec(one, 1..6),
    )
        .prop_map(|(replicas, spread, policy, bound, cs)| {
            let mut s = spec(
                replicas,
                spread,
                vec![pool("a", bound, &[("slice", "a")]), pool("b", bound, &[])],
            );
            s.routing.assignment = policy;
            let clusters = cs
                .into_iter()
                .enumerate()
                .map(|(i, (region, zone, nodes, ready, max))| {
                    let region = format!("r{region}");
                    let zones = [
                        format!("{region}-z{zone}"),
                        format!("{region}-z{}", zone + 1),
                    ];
                    let zones: Vec<&str> = zones.iter().map(String::as_str).collect();
                    let mut c = cluster(&format!("c{i}"), &region, &zones, nodes);
                    for (j, n) in c.nodes.iter_mut().enumerate() {
                        if j % 3 == 0 {
                            n.labels.insert("slice".into(), "a".into());
                        }
                    }
                    c.ready = ready || i == 0;
                    c.max_super_nodes = max;
                    c
                })
                .collect();
            (s, clusters)
        })
}

/// Edges per (super node, pool); checks every load is within its pool's bound.
fn loads<'a>(
    spec: &HsnNetworkSpec,
    p: &'a Plan,
) -> Result<BTreeMap<(&'a SuperId, &'a str), i32>, TestCaseError> {
    let mut load = BTreeMap::new();
    for (e, s) in &p.assignment {
        *load.entry((s, pool_of(p, e))).or_default() += 1;
    }
    for ((_, pool), n) in &load {
        let bound = spec
            .edge_pools
            .iter()
            .find(|p| p.name == *pool)
            .unwrap()
            .max_edges_per_super_node;
        prop_assert!(*n <= bound);
    }
    Ok(load)
}

fn pool_of<'a>(p: &'a Plan, e: &EdgeId) -> &'a str {
    p.clusters[&e.cluster]
        .edge_pools
        .iter()
        .find(|(_, nodes)| nodes.contains(&e.node))
        .map(|(pool, _)| pool.as_str())
        .unwrap()
}

fn load_within_bounds(spec: &HsnNetworkSpec, p: &Plan) -> Result<(), TestCaseError> {
    loads(spec, p).map(|_| ())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_edge_is_assigned_to_a_placed_super_within_bounds((s, clusters) in arb_inventory()) {
        let p = plan(&s, &inputs(clusters));
        let supers: BTreeSet<SuperId> = p.supers().collect();
        prop_assert_eq!(p.assignment.len() + p.unassigned.len(), p.edge_count());
        prop_assert!(p.assignment.values().all(|sup| supers.contains(sup)));
        prop_assert_eq!(supers.len() as u32 + p.unplaced_supers, s.super_nodes.replicas as u32);
        let load = loads(&s, &p)?;
        // Nothing is left over while some super node still has room in its pool.
        for e in &p.unassigned {
            let pool = pool_of(&p, e);
            let bound = s.edge_pools.iter().find(|p| p.name == pool).unwrap().max_edges_per_super_node;
            for sup in &supers {
                prop_assert_eq!(load.get(&(sup, pool)).copied().unwrap_or(0), bound);
            }
        }
    }

    #[test]
    fn the_plan_ignores_input_order((s, clusters) in arb_inventory(), seed in any::<u64>()) {
        let p = plan(&s, &inputs(clusters.clone()));
        let mut shuffled = clusters;
        let len = shuffled.len();
        shuffled.rotate_left((seed as usize) % len);
        for c in &mut shuffled {
            let n = c.nodes.len().max(1);
            c.nodes.rotate_left((seed as usize) % n);
        }
        prop_assert_eq!(plan(&s, &inputs(shuffled)), p);
    }

    #[test]
    fn planning_again_from_the_plan_changes_nothing((s, clusters) in arb_inventory()) {
        let first = plan(&s, &inputs(clusters.clone()));
        let again = plan(&s, &Inputs {
            clusters,
            previous: first.previous(&BTreeSet::new()),
            ..Default::default()
        });
        prop_assert_eq!(again, first);
    }

    #[test]
    fn losing_a_super_moves_exactly_its_edges((s, clusters) in arb_inventory(), pick in any::<prop::sample::Index>()) {
        let before = plan(&s, &inputs(clusters.clone()));
        let supers: Vec<SuperId> = before.supers().collect();
        prop_assume!(!supers.is_empty());
        let lost = pick.get(&supers).clone();
        let after = plan(&s, &Inputs {
            clusters,
            lost_supers: BTreeSet::from([lost.clone()]),
            previous: before.previous(&BTreeSet::new()),
            ..Default::default()
        });
        for (e, sup) in &before.assignment {
            if *sup == lost {
                prop_assert_ne!(after.assignment.get(e), Some(&lost));
            } else {
                prop_assert_eq!(after.assignment.get(e), Some(sup), "{} moved", e);
            }
        }
        load_within_bounds(&s, &after)?;
    }

    #[test]
    fn adding_a_super_moves_edges_only_to_it((mut s, clusters) in arb_inventory()) {
        for p in &mut s.edge_pools {
            p.max_edges_per_super_node = 10_000;
        }
        s.super_nodes.placement.max_per_cluster = None;
        let clusters: Vec<_> = clusters.into_iter().map(|mut c| { c.max_super_nodes = None; c }).collect();
        let before = plan(&s, &inputs(clusters.clone()));
        let mut more = s.clone();
        more.super_nodes.replicas += 1;
        let after = plan(&more, &Inputs {
            clusters,
            previous: before.previous(&BTreeSet::new()),
            ..Default::default()
        });
        let old: BTreeSet<SuperId> = before.supers().collect();
        let new: Vec<SuperId> = after.supers().filter(|s| !old.contains(s)).collect();
        prop_assert!(new.len() <= 1);
        for (e, sup) in &before.assignment {
            let now = &after.assignment[e];
            prop_assert!(now == sup || new.contains(now), "{} moved from {} to {}", e, sup, now);
        }
    }
}
