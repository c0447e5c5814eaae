//! The figures and how they are printed.

use super::*;

/// The figures, printed at the end.
#[derive(Default)]
pub(crate) struct Figures {
    pub(crate) setup: Duration,
    pub(crate) edges: usize,
    pub(crate) supers: usize,
    pub(crate) objects: usize,
    pub(crate) to_ready: Duration,
    /// The members alone: a plain DaemonSet as large as the edge pools, created to ready.
    pub(crate) members_alone: Duration,
    /// Its pods, after the first DaemonSet's creation.
    pub(crate) members_alone_pods: PodTimeline,
    /// The same with one DaemonSet per edge pool, as the operator runs them.
    pub(crate) members_alone_pools: Duration,
    pub(crate) members_alone_pools_pods: PodTimeline,
    /// The same with the operator's pod shape.
    pub(crate) members_alone_shaped: Duration,
    /// [`hsn_testkit::machine`] when the bench began.
    pub(crate) machine_before: String,
    pub(crate) members_alone_shaped_pods: PodTimeline,
    /// The first, the first time in fresh members.
    pub(crate) members_alone_first: Duration,
    pub(crate) to_converged: Duration,
    /// The operator's pods in the members when the network turned Ready.
    pub(crate) pods: PodTimeline,
    /// Time the reconciles up to Ready spent in each stage, in stage order.
    pub(crate) stages_to_ready: Vec<(&'static str, Histogram)>,
    pub(crate) writes_at_ready: f64,
    pub(crate) writes_rollout: f64,
    pub(crate) writes_by_cluster: BTreeMap<String, f64>,
    pub(crate) hub_writes_rollout: f64,
    pub(crate) steady_reconciles: f64,
    pub(crate) steady_member_writes: f64,
    pub(crate) steady_hub_writes: f64,
    pub(crate) steady_member_reads: f64,
    pub(crate) rss: (f64, f64, f64),
    pub(crate) all: Histogram,
    pub(crate) steady: Histogram,
    pub(crate) lost: String,
    pub(crate) moved_live: usize,
    pub(crate) ideal_live: usize,
    pub(crate) moved_elsewhere: usize,
    pub(crate) failover_writes: f64,
    pub(crate) failover: Histogram,
    pub(crate) rehome: Duration,
    pub(crate) moved_pure: usize,
    pub(crate) ideal_pure: usize,
    pub(crate) pure_matches_live: bool,
}

/// Pods of a rollout, in seconds after it began (whole seconds: the API servers'
/// timestamps).
#[derive(Default)]
pub(crate) struct PodTimeline {
    pub(crate) pods: usize,
    pub(crate) ready: usize,
    pub(crate) first_created: f64,
    pub(crate) last_created: f64,
    pub(crate) last_ready: f64,
}

/// Issue "Performance"'s targets (the README's Performance section lists them beside what a
/// run printed): create → Ready at 5 clusters × 200 nodes, and the operator's RSS there.
const READY_TARGET_SECONDS: f64 = 10.0;
const RSS_TARGET_MIB: f64 = 30.0;
const FAILOVER_TARGET_SECONDS: f64 = 1.0;

fn met(ok: bool) -> &'static str {
    if ok { "MET" } else { "NOT MET" }
}

pub(crate) fn ms(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() => format!("<= {:.0} ms", s * 1000.0),
        Some(_) => "> 41 s".into(),
        None => "-".into(),
    }
}

pub(crate) fn print(args: &Args, f: &Figures) {
    let per = |x: f64| x / f.steady_reconciles.max(1.0);
    println!();
    println!(
        "operator bench: {} kwok clusters x {} fake nodes; {} super nodes, {} edge nodes in 3 \
         pools; hub + members ready and registered in {:.0?}; at the start: {}; at the end: {}",
        args.clusters,
        args.nodes,
        f.supers,
        f.edges,
        f.setup,
        f.machine_before,
        hsn_testkit::machine()
    );
    println!("| figure | ours | baseline or target |");
    println!("|---|---|---|");
    println!(
        "| create -> Ready=True | {:.1} s (Progressing=False at {:.1} s) | target ≤ {READY_TARGET_SECONDS} s: {} |",
        f.to_ready.as_secs_f64(),
        f.to_converged.as_secs_f64(),
        met(f.to_ready.as_secs_f64() <= READY_TARGET_SECONDS)
    );
    println!(
        "| the operator's {} agent pods in the members (API timestamps, whole seconds after the network's creation) | first created +{:.0} s, last created +{:.0} s, last of {} Ready +{:.0} s | Ready=True read {:.1} s after the last pod's Ready (±1 s) |",
        f.pods.pods,
        f.pods.first_created,
        f.pods.last_created,
        f.pods.ready,
        f.pods.last_ready,
        f.to_ready.as_secs_f64() - f.pods.last_ready
    );
    let stages: Vec<String> = f
        .stages_to_ready
        .iter()
        .map(|(s, h)| format!("{s} {:.1} s", h.sum))
        .collect();
    println!(
        "| the members alone: one plain DaemonSet per member on the same edge-capable nodes, all at once, created -> ready | {:.1} s (pods last created +{:.0} s, last Ready +{:.0} s; the first time, in fresh members: {:.1} s) | create -> Ready includes this; {:.1} s more with the operator |",
        f.members_alone.as_secs_f64(),
        f.members_alone_pods.last_created,
        f.members_alone_pods.last_ready,
        f.members_alone_first.as_secs_f64(),
        f.to_ready.as_secs_f64() - f.members_alone.as_secs_f64()
    );
    println!(
        "| the same with one DaemonSet per edge pool (3 per member, as the operator runs them) | {:.1} s (pods last created +{:.0} s, last Ready +{:.0} s) | {:.1} s more with the operator |",
        f.members_alone_pools.as_secs_f64(),
        f.members_alone_pools_pods.last_created,
        f.members_alone_pools_pods.last_ready,
        f.to_ready.as_secs_f64() - f.members_alone_pools.as_secs_f64()
    );
    println!(
        "| the operator's own edge DaemonSets, as it renders them for this network, in a namespace of their own (pods pinned to their nodes by name, required anti-affinity to other networks' agents, host network, ports, volumes) | {:.1} s (pods last created +{:.0} s, last Ready +{:.0} s) | {:.1} s more with the operator |",
        f.members_alone_shaped.as_secs_f64(),
        f.members_alone_shaped_pods.last_created,
        f.members_alone_shaped_pods.last_ready,
        f.to_ready.as_secs_f64() - f.members_alone_shaped.as_secs_f64()
    );
    println!(
        "| reconciles up to Ready, by stage | {} reconciles: {} | - |",
        f.stages_to_ready.first().map_or(0.0, |(_, h)| h.count),
        stages.join(", ")
    );
    println!(
        "| member writes, rollout | {} to Ready, {} to converged ({} per cluster: {:?}) | {} (one apply per owned object) |",
        f.writes_at_ready,
        f.writes_rollout,
        f.writes_rollout / args.clusters.max(1) as f64,
        f.writes_by_cluster.values().collect::<Vec<_>>(),
        f.objects
    );
    println!(
        "| hub writes (network controller), rollout | {} | - |",
        f.hub_writes_rollout
    );
    println!(
        "| member writes per steady-state reconcile | {} ({} over {} reconciles; member GETs in that window, probes included: {:.1} per reconcile) | 0 |",
        per(f.steady_member_writes),
        f.steady_member_writes,
        f.steady_reconciles,
        per(f.steady_member_reads)
    );
    println!(
        "| hub writes per steady-state reconcile | {} | 0 |",
        per(f.steady_hub_writes)
    );
    println!(
        "| operator RSS | {:.1} MiB steady ({:.1} MiB of it the mapped executable and libraries), {:.1} MiB peak (VmHWM) | target steady ≤ {RSS_TARGET_MIB} MiB: {} |",
        f.rss.0,
        f.rss.2,
        f.rss.1,
        met(f.rss.0 <= RSS_TARGET_MIB)
    );
    println!(
        "| reconcile time, all {} reconciles | p50 {}, p99 {}, mean {:.0} ms | - |",
        f.all.count,
        ms(f.all.quantile(0.5)),
        ms(f.all.quantile(0.99)),
        f.all.mean() * 1000.0
    );
    println!(
        "| reconcile time, steady state | p50 {}, p99 {}, mean {:.0} ms | - |",
        ms(f.steady.quantile(0.5)),
        ms(f.steady.quantile(0.99)),
        f.steady.mean() * 1000.0
    );
    println!(
        "| edges moved, super {} lost (live, HsnNodes before/after) | {} ({} of them not its own) | {} (exactly its edges) |",
        f.lost, f.moved_live, f.moved_elsewhere, f.ideal_live
    );
    println!(
        "| edges moved, same loss, plan() on the same inventory | {} | {} (plan matches the live assignment: {}) |",
        f.moved_pure, f.ideal_pure, f.pure_matches_live
    );
    println!(
        "| failover: Lease expiry -> routes updated | {:.1} s (hub HsnNodes re-homed {:.1} s after the last renewal, a {LAPSE_SECONDS} s Lease) | target ≤ {FAILOVER_TARGET_SECONDS} s: {} |",
        f.failover.mean(),
        f.rehome.as_secs_f64(),
        met(f.failover.mean() <= FAILOVER_TARGET_SECONDS)
    );
    println!(
        "| member writes for the failover | {} | {} (one routes ConfigMap per member) |",
        f.failover_writes, args.clusters
    );
}
