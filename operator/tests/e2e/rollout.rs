//! Steps 1 and 2: the network rolls out, then steady state writes nothing.

use anyhow::{Context, Result, ensure};
use hsn_api::HsnNode;
use hsn_testkit::operator::{DEADLINE, OperatorUnderTest, wait_condition};
use hsn_testkit::wait_for;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

use crate::reads::{assignments, hub_objects, routes, super_replicas};
use crate::writes::{nothing_rewritten, writes};
use crate::{MEMBER_NS, NET, NS, Suite, network};

/// Steps 1 and 2: the network rolls out, then steady state writes nothing.
pub(crate) async fn rollout(s: &Suite, op: &OperatorUnderTest) -> Result<()> {
    let hub = s.hub();
    let (ac, bc) = (s.a.client(), s.b.client());
    let nets = s.nets();
    let ns: Api<Namespace> = Api::all(hub.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
    )
    .await?;
    nets.create(&PostParams::default(), &network()?).await?;

    // 1. Ready with the right counts and the right objects in each member.
    let edges = s.ta.edges() + s.tb.edges();
    let n = wait_condition(&nets, NET, "Ready", "True", Some("AllAgentsReady")).await?;
    let status = n.status.unwrap();
    ensure!(
        status.super_nodes.desired == 4 && status.super_nodes.ready == 4,
        "{status:?}"
    );
    ensure!(
        usize::try_from(status.edge_nodes.desired)? == edges
            && usize::try_from(status.edge_nodes.ready)? == edges,
        "{edges} edges: {status:?}"
    );
    ensure!(status.cluster_count == 2);
    for (member, topo, client) in [(&s.a, &s.ta, &ac), (&s.b, &s.tb, &bc)] {
        ensure!(
            super_replicas(client).await == Some(2),
            "two super nodes per region"
        );
        let ds = Api::<DaemonSet>::namespaced(client.clone(), MEMBER_NS);
        for (pool, want) in [
            ("hsn-edge-broadband", topo.broadband),
            ("hsn-edge-iot", topo.iot),
        ] {
            let d = ds
                .get(pool)
                .await
                .with_context(|| format!("DaemonSet {pool}"))?;
            ensure!(
                usize::try_from(d.status.unwrap().number_ready)? == want,
                "{pool}: {want} edge agents ready"
            );
        }
        let table = routes(client).await?;
        ensure!(
            table.edges.len() == topo.edges()
                && table.supers.len() == 4
                && table.tenants.len() == 2
        );
        // Locality: every edge goes to a super node of its own region.
        ensure!(
            table
                .edges
                .iter()
                .all(|e| e.super_id.cluster == member.name),
            "{table:?}"
        );
    }
    let edge_nodes = assignments(&hub).await?;
    ensure!(
        edge_nodes.len() == edges,
        "one HsnNode per edge agent: {edge_nodes:?}"
    );
    if s.live_agents() {
        // Real agents write their Leases once running; their addresses reach the routes.
        wait_for("every agent's Lease current", DEADLINE, || async {
            let nodes = Api::<HsnNode>::namespaced(hub.clone(), NS)
                .list(&ListParams::default())
                .await
                .ok()?
                .items;
            let current = |n: &HsnNode| {
                n.status.as_ref().is_some_and(|st| {
                    st.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            };
            (nodes.len() == edges + 4 && nodes.iter().all(current)).then_some(())
        })
        .await?;
    }

    // 2. Steady state writes nothing: several reconciles later, no new write anywhere.
    let before = writes(op).await?;
    let objects = hub_objects(&hub).await?;
    let reconciles = op
        .metric("hsn_operator_reconciles_total{controller=\"hsnnetwork\"}")
        .await?;
    wait_for("three more network reconciles", DEADLINE, || async {
        let now = op
            .metric("hsn_operator_reconciles_total{controller=\"hsnnetwork\"}")
            .await
            .ok()?;
        (now >= reconciles + 3.0).then_some(())
    })
    .await?;
    let after = writes(op).await?;
    nothing_rewritten(
        s,
        "steady-state reconciles",
        (before, after),
        (&objects, &hub_objects(&hub).await?),
    )
}
