//! `plan()` at scale (part of `make bench-operator`): 10 clusters x 1,000 edge nodes and
//! 100 super nodes, from scratch, in steady state (the plan in force as `previous`, what
//! every resync computes), and after losing one super node. Before timing, prints how many
//! edges the loss moved next to the ideal (exactly the lost super's edges).
//!
//! Run: `cargo bench -p hsn-operator --bench plan` (criterion; `-- --measurement-time 5`).

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hsn_api::network::HsnNetworkSpec;
use hsn_operator::plan::{self, ClusterView, Inputs, NodeView, REGION_LABEL, ZONE_LABEL};
use hsn_testkit::operator::{after_loss, moved_and_ideal};

const CLUSTERS: usize = 10;
const NODES_PER_CLUSTER: usize = 1000;
const SUPERS: usize = 100;

/// Two clusters per region, one zone each (a MEC site); nodes carry their site's zone.
fn inventory() -> Vec<ClusterView> {
    (0..CLUSTERS)
        .map(|c| {
            let region = format!("region-{}", c / 2);
            let zone = format!("{region}-z{}", c % 2);
            let nodes = (0..NODES_PER_CLUSTER)
                .map(|i| NodeView {
                    name: format!("node-{i:04}"),
                    labels: BTreeMap::from([
                        ("hsn.io/edge".to_string(), "true".to_string()),
                        (
                            "hsn.io/slice".to_string(),
                            if i % 2 == 0 { "embb" } else { "mmtc" }.to_string(),
                        ),
                        (ZONE_LABEL.to_string(), zone.clone()),
                        (REGION_LABEL.to_string(), region.clone()),
                    ]),
                    ready: true,
                })
                .collect();
            ClusterView {
                name: format!("mec-{c:02}"),
                labels: BTreeMap::from([("hsn.io/tier".to_string(), "mec".to_string())]),
                region,
                zone,
                ready: true,
                cordoned: false,
                max_super_nodes: None,
                max_edge_nodes: None,
                nodes,
            }
        })
        .collect()
}

/// 100 super nodes spread by zone; two pools, one bounded near its average load.
fn spec() -> HsnNetworkSpec {
    serde_json::from_value(serde_json::json!({
        "superNodes": {"replicas": SUPERS, "placement": {
            "clusterSelector": {"matchLabels": {"hsn.io/tier": "mec"}}, "spreadBy": "Zone"}},
        "edgePools": [
            {"name": "broadband", "sliceType": "eMBB", "maxEdgesPerSuperNode": 64,
             "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "embb"}}},
            {"name": "iot", "sliceType": "mMTC",
             "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "mmtc"}}}
        ]
    }))
    .expect("a valid HsnNetworkSpec")
}

fn report_churn(spec: &HsnNetworkSpec, clusters: &[ClusterView]) {
    let cold = Inputs {
        clusters: clusters.to_vec(),
        ..Inputs::default()
    };
    let first = plan::plan(spec, &cold);
    let lost = first.live_supers[0].clone();
    let second = plan::plan(spec, &after_loss(clusters, &first, &lost));
    let (moved, ideal) = moved_and_ideal(&first, &second, &lost);
    println!(
        "plan: {} edges, {} super nodes placed ({} unplaced), {} unassigned; losing {lost} \
         moved {moved} edges, ideal {ideal} (its edges)",
        first.edge_count(),
        first.live_supers.len(),
        first.unplaced_supers,
        first.unassigned.len(),
    );
}

fn bench_plan(c: &mut Criterion) {
    let spec = spec();
    let clusters = inventory();
    report_churn(&spec, &clusters);

    let cold = Inputs {
        clusters: clusters.clone(),
        ..Inputs::default()
    };
    let first = plan::plan(&spec, &cold);
    let steady = Inputs {
        clusters: clusters.clone(),
        previous: first.previous(&BTreeSet::new()),
        ..Inputs::default()
    };
    let churn = after_loss(&clusters, &first, &first.live_supers[0]);

    let mut group = c.benchmark_group("plan 10000 edges x 100 supers");
    group.sample_size(20);
    group.bench_function("from scratch", |b| {
        b.iter(|| plan::plan(black_box(&spec), black_box(&cold)))
    });
    group.bench_function("steady state (previous set)", |b| {
        b.iter(|| plan::plan(black_box(&spec), black_box(&steady)))
    });
    group.bench_function("one super lost (previous set)", |b| {
        b.iter(|| plan::plan(black_box(&spec), black_box(&churn)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    targets = bench_plan
}
criterion_main!(benches);
