//! `make bench-operator`, the cluster half: a hub and N kwok member clusters with fake
//! nodes, the release `hsn-operator` as a process, one HsnNetwork with several pools.
//! Prints time from create to `Ready=True`, member writes during the rollout and per
//! steady-state reconcile (target 0), operator RSS, reconcile-time quantiles, and the edges
//! moved when one super node's Lease expires next to the ideal (exactly its edges), each
//! with its baseline where one exists. Asserts nothing about time.
//!
//! Run: `cargo bench -p hsn-operator --bench operator -- --clusters 5 --nodes 200`
//! (or `HSN_BENCH_CLUSTERS`, `HSN_BENCH_NODES`, `HSN_BENCH_SUPERS`).

mod baseline;
mod process;
mod report;

use baseline::{Baseline, members_alone, pod_timeline};
use hsn_testkit::operator::{self, Operator};
use process::{Histogram, Scrape, rss_mib, scrape, start_operator};
use report::{Figures, print};

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use hsn_api::{HsnNetwork, MecCluster};
use hsn_operator::plan::{self, ClusterView, Inputs, NodeView, REGION_LABEL, SuperId, ZONE_LABEL};
use hsn_testkit::{ControlPlane, FakeNode, KwokCluster};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const NS: &str = "bench";
const NET: &str = "metro";
const MEMBER_NS: &str = "hsn-metro";
/// `hsn.io/slice` values of the edge-capable nodes, one edge pool each.
const SLICES: [&str; 3] = ["embb", "mmtc", "urllc"];
/// Resync of a converged network: how often steady-state reconciles come.
const RESYNC_SECONDS: u64 = 5;
/// Duration of the lost super node's last Lease renewal in the failover step.
const LAPSE_SECONDS: i32 = RESYNC_SECONDS as i32 + 2;
/// Deadline of each wait: rollouts on 2 shared cores are slow.
const DEADLINE: Duration = Duration::from_secs(900);

#[derive(Debug, Parser)]
struct Args {
    /// Member (kwok) clusters.
    #[arg(long, env = "HSN_BENCH_CLUSTERS", default_value_t = 5)]
    clusters: usize,
    /// Fake nodes per member; 9 in 10 are edge-capable.
    #[arg(long, env = "HSN_BENCH_NODES", default_value_t = 200)]
    nodes: usize,
    /// Super-node replicas, spread by zone (one zone per member).
    #[arg(long, env = "HSN_BENCH_SUPERS", default_value_t = 20)]
    supers: usize,
    /// Steady-state reconciles to count writes over.
    #[arg(long, default_value_t = 6)]
    steady_reconciles: u32,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// A member: its name, region and zone, fake nodes, and the running kwok cluster.
struct Member {
    name: String,
    region: String,
    zone: String,
    nodes: Vec<FakeNode>,
    cluster: KwokCluster,
}

/// Two members per region, each its own zone (a MEC site); slices rotate over the pools.
fn member_nodes(k: usize, per_cluster: usize) -> (String, String, String, Vec<FakeNode>) {
    let name = format!("mec-{k}");
    let region = format!("region-{}", k / 2);
    let zone = format!("{region}-z{}", k % 2);
    let nodes = (0..per_cluster)
        .map(|i| {
            let n = FakeNode::new(&format!("{name}-node-{i:03}"), &region, &zone);
            if i % 10 == 9 {
                return n;
            }
            let slice = SLICES[i % 3];
            n.label("hsn.io/edge", "true").label("hsn.io/slice", slice)
        })
        .collect();
    (name, region, zone, nodes)
}

/// One pool bounded at 4/3 of its average load per super node, so the bound bites
/// where rendezvous hashing is uneven; the other two at the schema's maximum (unbounded
/// here: the default, 64, would not fit inventories past ~1,000 nodes per member).
fn network(supers: usize, nodes: usize, clusters: usize) -> Result<HsnNetwork> {
    let broadband = (0..nodes).filter(|i| i % 10 != 9 && i % 3 == 0).count() * clusters;
    let bound = (broadband * 4).div_ceil(3 * supers.max(1)).max(1);
    Ok(serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": NET, "namespace": NS},
        "spec": {
            "superNodes": {"replicas": supers, "placement": {
                "clusterSelector": {"matchLabels": {"hsn.io/tier": "mec"}}, "spreadBy": "Zone"}},
            "edgePools": [
                {"name": "broadband", "sliceType": "eMBB", "maxEdgesPerSuperNode": bound,
                 "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "embb"}}},
                {"name": "iot", "sliceType": "mMTC", "maxEdgesPerSuperNode": 10000,
                 "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "mmtc"}}},
                {"name": "critical", "sliceType": "URLLC", "maxEdgesPerSuperNode": 10000,
                 "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "urllc"}}}
            ],
            "metering": {"tenants": [{"name": "acme", "id": 1, "prefixes": ["10.20.0.0/16"]}]}
        }
    }))?)
}

async fn register(hub: &Client, m: &Member) -> Result<()> {
    operator::kubeconfig_secret(hub, &m.name, &m.cluster.self_contained_kubeconfig()?).await?;
    operator::mec_cluster_in(hub, &m.name, &m.region, &m.zone, &m.name).await
}

/// Edge (cluster, node) to the HsnNode name of its super node, as the hub records it.
async fn assignments(hub: &Client) -> Result<BTreeMap<(String, String), String>> {
    let edges = operator::edge_assignments(hub, NS).await?;
    Ok(edges
        .into_iter()
        .map(|(cluster, node, sup)| ((cluster, node), sup))
        .collect())
}

/// (status, reason) of the network's condition `type_`.
async fn condition(api: &Api<HsnNetwork>, type_: &str) -> Option<(String, String)> {
    let n = api.get(NET).await.ok()?;
    let c = n
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status, c.reason))
}

/// Ready=True; an error if the network converged without fitting (it would never be Ready).
async fn ready(api: &Api<HsnNetwork>) -> Result<bool> {
    let converged = condition(api, "Progressing")
        .await
        .is_some_and(|c| c.0 == "False");
    if let Some((s, reason)) = condition(api, "Degraded").await
        && converged
        && s == "True"
        && reason == hsn_api::HsnNetworkReason::InsufficientCapacity.as_str()
    {
        bail!("the network does not fit: Degraded {reason}");
    }
    Ok(condition(api, "Ready").await.is_some_and(|c| c.0 == "True"))
}

/// Polls every 100 ms (finer than the metrics it is compared with) until `f` holds.
async fn poll_until<F, Fut>(what: &str, f: F) -> Result<Duration>
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    poll_until_ok(what, || async { Ok(f().await) }).await
}

/// Like [`poll_until`], stopping at the first error.
async fn poll_until_ok<F, Fut>(what: &str, f: F) -> Result<Duration>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let start = Instant::now();
    while !f().await? {
        if start.elapsed() > DEADLINE {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(start.elapsed())
}

fn super_node_name(s: &SuperId) -> String {
    hsn_operator::network::super_node_name(NET, s)
}

/// The inventory the operator sees, rebuilt from what the bench created.
fn views(members: &[Member]) -> Vec<ClusterView> {
    members
        .iter()
        .map(|m| ClusterView {
            name: m.name.clone(),
            labels: BTreeMap::from([("hsn.io/tier".into(), "mec".into())]),
            region: m.region.clone(),
            zone: m.zone.clone(),
            ready: true,
            cordoned: false,
            max_super_nodes: None,
            max_edge_nodes: None,
            nodes: m
                .nodes
                .iter()
                .map(|n| {
                    let mut labels = n.labels.clone();
                    labels.insert(ZONE_LABEL.into(), n.zone.clone());
                    labels.insert(REGION_LABEL.into(), n.region.clone());
                    NodeView {
                        name: n.name.clone(),
                        labels,
                        ready: true,
                    }
                })
                .collect(),
        })
        .collect()
}

/// Edges moved by losing `lost`, computed by `plan()` on the bench's inventory: (moved,
/// ideal, whether the first plan equals the operator's live assignment).
fn pure_churn(
    members: &[Member],
    supers: usize,
    lost: &SuperId,
    live: &BTreeMap<(String, String), String>,
) -> Result<(usize, usize, bool)> {
    let spec = network(supers, members[0].nodes.len(), members.len())?.spec;
    let clusters = views(members);
    let first = plan::plan(
        &spec,
        &Inputs {
            clusters: clusters.clone(),
            ..Inputs::default()
        },
    );
    let second = plan::plan(&spec, &operator::after_loss(&clusters, &first, lost));
    let (moved, ideal) = operator::moved_and_ideal(&first, &second, lost);
    let same = first.assignment.len() == live.len()
        && first.assignment.iter().all(|(e, s)| {
            live.get(&(e.cluster.clone(), e.node.clone())) == Some(&super_node_name(s))
        });
    Ok((moved, ideal, same))
}

async fn run(args: Args) -> Result<()> {
    let machine_before = hsn_testkit::machine();
    let setup = Instant::now();
    let dir = tempfile::tempdir()?;
    let hub_cp = ControlPlane::start().await?;
    let hub = hub_cp.client();
    operator::install_crds(&hub).await?;
    let mut members = Vec::new();
    for k in 0..args.clusters {
        let (name, region, zone, nodes) = member_nodes(k, args.nodes);
        let t = Instant::now();
        let cluster = KwokCluster::create(&name).await?;
        cluster.add_nodes(&nodes).await?;
        let m = Member {
            name,
            region,
            zone,
            nodes,
            cluster,
        };
        register(&hub, &m).await?;
        eprintln!(
            "member {} up with {} nodes in {:.0?}",
            m.name,
            m.nodes.len(),
            t.elapsed()
        );
        members.push(m);
    }
    let op = start_operator(&hub_cp, dir.path()).await?;
    eprintln!("operator log: {}", op.log_path().display());
    let mecs: Api<MecCluster> = Api::all(hub.clone());
    poll_until("every MecCluster Ready", || async {
        let Ok(list) = mecs.list(&ListParams::default()).await else {
            return false;
        };
        list.items.len() == members.len()
            && list
                .items
                .iter()
                .all(|m| operator::mec_condition(m, "Ready").is_some_and(|c| c.0 == "True"))
    })
    .await?;
    let mut fig = Figures {
        setup: setup.elapsed(),
        machine_before,
        ..Figures::default()
    };
    // Twice: fresh members place their first pods slower than ever after (the operator's
    // rollout comes after this warm-up), so the second is the one compared.
    let supers = args.supers;
    fig.members_alone_first = members_alone(&members, Baseline::OnePerMember, supers)
        .await?
        .0;
    (fig.members_alone, fig.members_alone_pods) =
        members_alone(&members, Baseline::OnePerMember, supers).await?;
    (fig.members_alone_pools, fig.members_alone_pools_pods) =
        members_alone(&members, Baseline::OnePerPool, supers).await?;
    (fig.members_alone_shaped, fig.members_alone_shaped_pods) =
        members_alone(&members, Baseline::OperatorShaped, supers).await?;
    let result = measure(&hub, &members, &op, &args, &mut fig).await;
    if let Err(e) = result {
        let text = std::fs::read_to_string(op.log_path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{e:#}\n--- operator log tail ---\n{}", tail.join("\n"));
    }
    print(&args, &fig);
    let op = op;
    op.kill().await;
    Ok(())
}

async fn measure(
    hub: &Client,
    members: &[Member],
    op: &Operator,
    args: &Args,
    fig: &mut Figures,
) -> Result<()> {
    let nets: Api<HsnNetwork> = Api::namespaced(hub.clone(), NS);
    Api::<Namespace>::all(hub.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
        )
        .await?;

    // 1. Rollout: create to Ready=True, then to Progressing=False.
    let m0 = scrape(op).await?;
    let created = Instant::now();
    nets.create(
        &PostParams::default(),
        &network(args.supers, args.nodes, args.clusters)?,
    )
    .await?;
    poll_until_ok("Ready=True", || ready(&nets)).await?;
    fig.to_ready = created.elapsed();
    let born = nets.get(NET).await?.metadata.creation_timestamp;
    let born = born.context("no creationTimestamp")?.0;
    let lp = ListParams::default().labels(hsn_operator::resources::NETWORK_UID_LABEL);
    fig.pods = pod_timeline(members, MEMBER_NS, &lp, born).await?;
    let m1 = scrape(op).await?;
    fig.stages_to_ready = hsn_operator::metrics::Metrics::STAGES
        .iter()
        .map(|s| (*s, m1.stage(s).since(&m0.stage(s))))
        .collect();
    poll_until("Progressing=False", || async {
        condition(&nets, "Progressing")
            .await
            .is_some_and(|c| c.0 == "False")
    })
    .await?;
    fig.to_converged = created.elapsed();
    let status = nets.get(NET).await?.status.context("status")?;
    fig.edges = usize::try_from(status.edge_nodes.desired)?;
    fig.supers = usize::try_from(status.super_nodes.desired)?;

    // 2. Steady state: a few resyncs of a converged network.
    let m2 = scrape(op).await?;
    let target = m2.reconciles() + f64::from(args.steady_reconciles);
    poll_until("steady-state reconciles", || async {
        scrape(op).await.is_ok_and(|s| s.reconciles() >= target)
    })
    .await?;
    let m3 = scrape(op).await?;
    fig.rss = rss_mib(op)?;
    fig.writes_at_ready = m1.member_writes() - m0.member_writes();
    fig.writes_rollout = m2.member_writes() - m0.member_writes();
    fig.hub_writes_rollout = m2.hub_writes() - m0.hub_writes();
    fig.writes_by_cluster = writes_by_cluster(&m0, &m2);
    fig.steady_reconciles = m3.reconciles() - m2.reconciles();
    fig.steady_member_writes = m3.member_writes() - m2.member_writes();
    fig.steady_hub_writes = m3.hub_writes() - m2.hub_writes();
    fig.steady_member_reads = m3.member_reads() - m2.member_reads();
    fig.steady = m3.reconcile_durations().since(&m2.reconcile_durations());
    fig.objects = owned_objects(members).await?;

    // 3. One super node lost: its Lease expires; compare the hub's assignment before and
    //    after with the ideal (exactly its edges), and with plan() on the same inventory.
    let before = assignments(hub).await?;
    let lost = SuperId {
        cluster: members[0].name.clone(),
        ordinal: 0,
    };
    let lost_name = super_node_name(&lost);
    let m4 = scrape(op).await?;
    // Its agent renews once more, then stops: the Lease lapses on its own, LAPSE_SECONDS
    // later (longer than a resync, so the operator reads this last renewal first, as it
    // reads every renewal of a real agent). Nothing announces the lapse: the operator looks
    // again when the Lease it read ends.
    let member = members[0].cluster.client();
    operator::put_super_lease(&member, MEMBER_NS, lost.ordinal, 0, LAPSE_SECONDS).await?;
    let edges = before.len();
    fig.rehome = poll_until("the lost super's edges re-homed", || async {
        assignments(hub)
            .await
            .is_ok_and(|a| a.len() == edges && a.values().all(|s| *s != lost_name))
    })
    .await?;
    // Routes follow the HsnNodes in the same reconcile; wait for the failover metric.
    poll_until("failover recorded", || async {
        scrape(op)
            .await
            .is_ok_and(|s| s.failovers().count > m4.failovers().count)
    })
    .await?;
    let after = assignments(hub).await?;
    let m5 = scrape(op).await?;
    fig.failover_writes = m5.member_writes() - m4.member_writes();
    fig.failover = m5.failovers().since(&m4.failovers());
    fig.all = m5.reconcile_durations().since(&m0.reconcile_durations());
    fig.ideal_live = before.values().filter(|s| **s == lost_name).count();
    let moved: Vec<_> = before
        .iter()
        .filter(|(e, s)| after.get(*e) != Some(*s))
        .collect();
    fig.moved_live = moved.len();
    fig.moved_elsewhere = moved.iter().filter(|(_, s)| **s != lost_name).count();
    fig.lost = lost.to_string();
    (fig.moved_pure, fig.ideal_pure, fig.pure_matches_live) =
        pure_churn(members, args.supers, &lost, &before)?;
    let rss = rss_mib(op)?;
    fig.rss.1 = fig.rss.1.max(rss.1);
    Ok(())
}

fn writes_by_cluster(before: &Scrape, after: &Scrape) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (scrape, sign) in [(after, 1.0), (before, -1.0)] {
        for line in scrape.0.lines() {
            if !line.starts_with("hsn_operator_member_requests_total{")
                || line.contains("method=\"GET\"")
            {
                continue;
            }
            let cluster = line
                .split("cluster=\"")
                .nth(1)
                .and_then(|r| r.split('"').next());
            let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            if let (Some(c), Some(v)) = (cluster, value) {
                *out.entry(c.to_string()).or_insert(0.0) += sign * v;
            }
        }
    }
    out
}

/// Objects the operator owns in the members: the ideal rollout writes one apply each.
async fn owned_objects(members: &[Member]) -> Result<usize> {
    use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let lp = ListParams::default().labels(hsn_operator::resources::NETWORK_UID_LABEL);
    let mut n = 0;
    for m in members {
        let c = m.cluster.client();
        let ns = Api::<Namespace>::all(c.clone())
            .list(&lp)
            .await?
            .items
            .len();
        n += ns
            + count::<ServiceAccount>(&c, &lp).await?
            + count::<Role>(&c, &lp).await?
            + count::<RoleBinding>(&c, &lp).await?
            + count::<StatefulSet>(&c, &lp).await?
            + count::<Service>(&c, &lp).await?
            + count::<DaemonSet>(&c, &lp).await?
            + count::<ConfigMap>(&c, &lp).await?
            // The super nodes' identities and the ledger's TLS.
            + count::<Secret>(&c, &lp).await?
            // One per agent, created by the operator, renewed by the agent.
            + count::<Lease>(&c, &lp).await?;
    }
    Ok(n)
}

async fn count<K>(client: &Client, lp: &ListParams) -> Result<usize>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), MEMBER_NS);
    Ok(api.list(lp).await?.items.len())
}
