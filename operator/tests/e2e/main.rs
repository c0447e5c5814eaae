//! The operator end to end on a hub and two MEC clusters. By default on real control planes
//! started here: a hub (kube-apiserver + etcd) and two MEC clusters (kwok: scheduler,
//! controller-manager, fake kubelets), the operator as a process. The `HSN_E2E_*` variables
//! point the same suite at clusters that exist, e.g. kind with the chart installed and real
//! agents (kind/README.md); a step that must be done differently there says so when it runs.
//! Every wait has a deadline; nothing sleeps.
//!
//! One module per concern: `rollout` (steps 1 and 2), `chain` (1b, the chain's identities and genesis; 5b, ledger TLS turned off), `churn` (steps 3 to 7), `lease` (step
//! 3b, a super node's Lease lapsing), `trust` (step 3c, whose Leases and HsnNodes count), `writes` (what counts as a write), `reads` (what the
//! steps read from the hub and the members).

mod chain;
mod churn;
mod lease;
mod reads;
mod rollout;
mod trust;
mod writes;

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, ensure};
use hsn_api::HsnNetwork;
use hsn_api::cluster::EDGE_CAPABLE_LABEL;
use hsn_testkit::FakeNode;
use hsn_testkit::operator::*;
use hsn_testkit::wait_for;
use kube::{Api, Client};
use serde_json::json;

use reads::{assignments, hub_objects};
use writes::{nothing_rewritten, writes};

pub(crate) const NS: &str = "edge-net";
pub(crate) const NET: &str = "metro";
pub(crate) const MEMBER_NS: &str = "hsn-metro";

pub(crate) fn network() -> Result<HsnNetwork> {
    // Edge pools tolerate the taint of nodes set aside for edge agents; kwok's nodes have none.
    let tolerations = json!([{"key": AGENTS_TAINT, "operator": "Exists", "effect": "NoSchedule"}]);
    Ok(serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": NET, "namespace": NS},
        "spec": {
            "superNodes": {"replicas": 4, "placement": {
                "clusterSelector": {"matchLabels": {"hsn.io/tier": "mec"}}, "spreadBy": "Region"}},
            "edgePools": [
                {"name": "broadband", "sliceType": "eMBB", "maxEdgesPerSuperNode": 8,
                 "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "embb"}},
                 "tolerations": tolerations},
                {"name": "iot", "sliceType": "mMTC",
                 "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "mmtc"}},
                 "tolerations": tolerations}
            ],
            "metering": {"tenants": [
                {"name": "acme", "id": 1, "prefixes": ["10.20.0.0/16", "2001:db8:20::/48"]},
                {"name": "globex", "id": 2, "prefixes": ["10.30.0.0/16"]}
            ]}
        }
    }))?)
}

/// What every step works on.
pub(crate) struct Suite {
    pub(crate) env: E2eEnv,
    pub(crate) hub: Hub,
    pub(crate) a: Member,
    pub(crate) b: Member,
    pub(crate) ta: Topology,
    pub(crate) tb: Topology,
}

impl Suite {
    pub(crate) fn hub(&self) -> Client {
        self.hub.client()
    }

    pub(crate) fn nets(&self) -> Api<HsnNetwork> {
        Api::namespaced(self.hub(), NS)
    }

    /// Agents run for real: they renew their own Leases, and every reconcile mirrors the
    /// renewals into HsnNode status.
    pub(crate) fn live_agents(&self) -> bool {
        self.ta.real || self.tb.real
    }

    /// Name of the HsnNode of super node `ordinal` in `member`.
    pub(crate) fn super_node(member: &Member, ordinal: u32) -> String {
        hsn_operator::network::super_node_name(NET, &hsn_core::SuperId::new(&member.name, ordinal))
    }
}

/// `nodes(region, 6, 4)` and, per zone, a seventh node that is edge-capable for a slice no
/// pool of the suite's network selects.
fn zones_with_spares(region: &str) -> Vec<FakeNode> {
    let mut out = nodes(region, 6, 4);
    for zone in [format!("{region}-1a"), format!("{region}-1b")] {
        out.push(
            FakeNode::new(&format!("{zone}-node-7"), region, &zone)
                .label(EDGE_CAPABLE_LABEL, "true")
                .label("hsn.io/slice", "urllc"),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_places_fails_over_and_cleans_up() -> Result<()> {
    let env = E2eEnv::from_env()?;
    eprintln!("e2e against: {}", env.describe());
    let hub = Hub::start_or_connect(&env).await?;
    // Here: two regions x two zones x seven nodes; four edge-capable nodes per zone in the
    // pools, one edge-capable in none (a spare step 3 adds to a pool), two not edge-capable
    // (where super nodes go, they prefer those: a member runs all four when the other is
    // lost, one per node).
    let local = vec![
        ("mec-a", "eu-west", zones_with_spares("eu-west")),
        ("mec-b", "eu-north", zones_with_spares("eu-north")),
    ];
    let [a, b] = <[Member; 2]>::try_from(members(&env, &hub, local).await?)
        .map_err(|_| anyhow!("two members"))?;
    let dir = tempfile::tempdir()?;
    let op = OperatorUnderTest::start(&env, &hub, dir.path()).await?;
    let (ta, tb) = (Topology::of(&a).await?, Topology::of(&b).await?);
    eprintln!("{}: {ta:?}\n{}: {tb:?}", a.name, b.name);
    let s = Suite {
        env,
        hub,
        a,
        b,
        ta,
        tb,
    };
    with_log(&op, rollout::rollout(&s, &op)).await?;
    let genesis = with_log(&op, chain::chain(&s)).await?;
    // A restarted operator plans from what is there (HsnNodes, members): it must move no
    // edge and write nothing, even before its first probes complete.
    let before = assignments(&s.hub()).await?;
    let objects = hub_objects(&s.hub()).await?;
    let op = op.restart(&s.hub, dir.path()).await?;
    with_log(&op, restarted(&s, &op, before, objects)).await?;
    chain::unchanged(&s, &genesis).await?;
    with_log(&op, churn::churn(&s, &op, &genesis)).await?;
    if !s.hub.is_local() {
        churn::tidy(&s).await?;
    }
    Ok(())
}

async fn restarted(
    s: &Suite,
    op: &OperatorUnderTest,
    before: Vec<(String, String, String)>,
    objects: (Option<String>, BTreeMap<String, Option<i64>>),
) -> Result<()> {
    wait_for(
        "three network reconciles by the new operator",
        DEADLINE,
        || async {
            let n = op
                .metric("hsn_operator_reconciles_total{controller=\"hsnnetwork\"}")
                .await
                .ok()?;
            (n >= 3.0).then_some(())
        },
    )
    .await?;
    ensure!(
        assignments(&s.hub()).await? == before,
        "a restart moved edges"
    );
    nothing_rewritten(
        s,
        "a restarted operator",
        ((0.0, 0.0), writes(op).await?),
        (&objects, &hub_objects(&s.hub()).await?),
    )
}
