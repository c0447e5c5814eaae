//! The plan on clusters it shares: cordoned clusters, capacity counted across networks,
//! nodes older networks hold, and nodes its own super nodes run on.

use std::collections::{BTreeMap, BTreeSet};

use hsn_api::network::SpreadTopology;
use proptest::prelude::*;

use super::tests::{arb_inventory, cluster, inputs, pool, replicas, spec};
use super::*;

fn edges_on<'a>(p: &'a Plan, cluster: &str) -> Vec<&'a str> {
    let mut nodes: Vec<&str> = p
        .clusters
        .get(cluster)
        .into_iter()
        .flat_map(|c| c.edge_pools.values().flatten())
        .map(String::as_str)
        .collect();
    nodes.sort();
    nodes
}

fn held(supers: u32, edges: u32, nodes: &[&str]) -> Held {
    Held {
        supers,
        edges,
        nodes: nodes
            .iter()
            .map(|n| (n.to_string(), "other-ns/older".to_string()))
            .collect(),
    }
}

#[test]
fn a_cordoned_cluster_receives_no_new_edges_and_keeps_those_it_has() {
    // An empty node selector selects every node.
    let s = spec(1, SpreadTopology::Cluster, vec![pool("p", 64, &[])]);
    let a = cluster("a", "eu", &["eu-1"], 2);
    let mut b = cluster("b", "eu", &["eu-2"], 2);
    b.cordoned = true;
    let fresh = plan(&s, &inputs(vec![a.clone(), b.clone()]));
    assert_eq!(edges_on(&fresh, "b"), Vec::<&str>::new());
    assert_eq!(edges_on(&fresh, "a"), ["eu-1-n0", "eu-1-n1"]);

    // Placed before the cordon: they stay; a node added since gets no agent.
    b.cordoned = false;
    let before = plan(&s, &inputs(vec![a.clone(), b.clone()]));
    assert_eq!(edges_on(&before, "b"), ["eu-2-n0", "eu-2-n1"]);
    b.cordoned = true;
    let mut newcomer = b.nodes[0].clone();
    newcomer.name = "eu-2-new".into();
    b.nodes.push(newcomer);
    let after = plan(
        &s,
        &Inputs {
            clusters: vec![a, b],
            previous: before.previous(&BTreeSet::new()),
            ..Default::default()
        },
    );
    assert_eq!(edges_on(&after, "b"), ["eu-2-n0", "eu-2-n1"]);
    assert_eq!(replicas(&after), BTreeMap::from([("a", 1)]));
}

#[test]
fn no_edge_runs_where_a_super_node_of_the_network_runs() {
    let s = spec(1, SpreadTopology::Cluster, vec![pool("p", 64, &[])]);
    let a = cluster("a", "eu", &["eu-1"], 3);
    let before = plan(&s, &inputs(vec![a.clone()]));
    assert_eq!(edges_on(&before, "a"), ["eu-1-n0", "eu-1-n1", "eu-1-n2"]);
    // The scheduler put the super node on a node the pool selects: the edge there yields,
    // the others keep their assignment.
    let after = plan(
        &s,
        &Inputs {
            clusters: vec![a.clone()],
            previous: before.previous(&BTreeSet::new()),
            super_hosts: BTreeMap::from([("a".into(), BTreeSet::from(["eu-1-n1".into()]))]),
            ..Default::default()
        },
    );
    assert_eq!(edges_on(&after, "a"), ["eu-1-n0", "eu-1-n2"]);
    assert!(
        after.assignment.keys().all(|e| e.node != "eu-1-n1"),
        "an edge assigned on the super node's node"
    );
    assert!(after.conflicts.is_empty(), "not another network's node");
    for (edge, sup) in &after.assignment {
        assert_eq!(before.assignment.get(edge), Some(sup), "{edge} moved");
    }
    // Another cluster's super hosts say nothing about this one.
    let elsewhere = plan(
        &s,
        &Inputs {
            clusters: vec![a],
            super_hosts: BTreeMap::from([("b".into(), BTreeSet::from(["eu-1-n1".into()]))]),
            ..Default::default()
        },
    );
    assert_eq!(edges_on(&elsewhere, "a").len(), 3);
}

#[test]
fn max_super_nodes_counts_the_super_nodes_of_older_networks() {
    let s = spec(6, SpreadTopology::Cluster, vec![pool("p", 64, &[])]);
    let mut full = cluster("full", "eu", &["eu-1"], 1);
    full.max_super_nodes = Some(4);
    let mut roomy = cluster("roomy", "eu", &["eu-2"], 1);
    roomy.max_super_nodes = Some(4);
    let p = plan(
        &s,
        &Inputs {
            clusters: vec![full, roomy],
            held: BTreeMap::from([
                ("full".to_string(), held(4, 0, &[])),
                ("roomy".to_string(), held(1, 0, &[])),
            ]),
            ..Default::default()
        },
    );
    assert_eq!(replicas(&p), BTreeMap::from([("roomy", 3)]));
    assert_eq!(p.unplaced_supers, 3);
    assert_eq!(
        p.supers_held_elsewhere,
        BTreeMap::from([("full".to_string(), 4), ("roomy".to_string(), 1)])
    );
}

#[test]
fn a_node_an_older_network_holds_runs_no_agent_of_this_one() {
    let s = spec(1, SpreadTopology::Cluster, vec![pool("p", 64, &[])]);
    let a = cluster("a", "eu", &["eu-1"], 3);
    let before = plan(&s, &inputs(vec![a.clone()]));
    assert_eq!(before.assignment.len(), 3);
    // Even an edge this network placed first: the older network keeps the node.
    let p = plan(
        &s,
        &Inputs {
            clusters: vec![a],
            previous: before.previous(&BTreeSet::new()),
            held: BTreeMap::from([("a".to_string(), held(0, 1, &["eu-1-n1"]))]),
            ..Default::default()
        },
    );
    assert_eq!(edges_on(&p, "a"), ["eu-1-n0", "eu-1-n2"]);
    assert_eq!(
        p.conflicts,
        [NodeConflict {
            edge: EdgeId::new("a", "eu-1-n1"),
            holder: "other-ns/older".into()
        }]
    );
    assert!(!p.assignment.contains_key(&EdgeId::new("a", "eu-1-n1")));
}

#[test]
fn max_edge_nodes_counts_older_networks_and_keeps_placed_edges_first() {
    let s = spec(1, SpreadTopology::Cluster, vec![pool("p", 64, &[])]);
    let mut a = cluster("a", "eu", &["eu-1"], 5);
    a.max_edge_nodes = Some(4);
    let held = BTreeMap::from([("a".to_string(), held(0, 1, &[]))]);
    let p = plan(
        &s,
        &Inputs {
            clusters: vec![a.clone()],
            held: held.clone(),
            ..Default::default()
        },
    );
    assert_eq!(edges_on(&p, "a"), ["eu-1-n0", "eu-1-n1", "eu-1-n2"]);
    assert_eq!(
        p.edges_over_capacity,
        [EdgeId::new("a", "eu-1-n3"), EdgeId::new("a", "eu-1-n4")]
    );
    // Edges already assigned keep their place over newcomers that sort first.
    let mut previous = Previous::default();
    for n in ["eu-1-n2", "eu-1-n3", "eu-1-n4"] {
        previous
            .assignment
            .insert(EdgeId::new("a", n), SuperId::new("a", 0));
    }
    previous.supers.insert(SuperId::new("a", 0));
    let p = plan(
        &s,
        &Inputs {
            clusters: vec![a],
            held,
            previous,
            ..Default::default()
        },
    );
    assert_eq!(edges_on(&p, "a"), ["eu-1-n2", "eu-1-n3", "eu-1-n4"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_plan_stays_within_what_older_networks_leave(
        (s, clusters) in arb_inventory(),
        taken in proptest::collection::vec((0..4u32, 0..6u32, any::<u16>(), proptest::option::of(0..8u32)), 6),
    ) {
        let mut clusters = clusters;
        let mut held_map = BTreeMap::new();
        for (c, (supers, edges, mask, max_edges)) in clusters.iter_mut().zip(&taken) {
            c.max_edge_nodes = *max_edges;
            let nodes: Vec<&str> = c
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << (i % 16)) != 0)
                .map(|(_, n)| n.name.as_str())
                .collect();
            held_map.insert(c.name.clone(), held(*supers, *edges, &nodes));
        }
        let p = plan(&s, &Inputs { clusters: clusters.clone(), held: held_map.clone(), ..Default::default() });
        for c in &clusters {
            let h = &held_map[&c.name];
            let part = p.clusters.get(&c.name).cloned().unwrap_or_default();
            let edges: Vec<&String> = part.edge_pools.values().flatten().collect();
            prop_assert!(edges.iter().all(|n| !h.nodes.contains_key(*n)), "an edge on a held node of {}", c.name);
            if let Some(max) = c.max_super_nodes {
                prop_assert!(part.super_replicas <= max.saturating_sub(h.supers));
            }
            if let Some(max) = c.max_edge_nodes {
                prop_assert!(edges.len() as u32 <= max.saturating_sub(h.edges));
            }
        }
        // Every selected node is planned or accounted for.
        let selected: usize = clusters
            .iter()
            .map(|c| {
                let unbounded = ClusterView { max_edge_nodes: None, ..c.clone() };
                plan(&s, &inputs(vec![unbounded])).edge_count()
            })
            .sum();
        prop_assert_eq!(selected, p.edge_count() + p.conflicts.len() + p.edges_over_capacity.len());
    }
}
