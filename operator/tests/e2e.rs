//! The operator end to end on real control planes: a hub (kube-apiserver + etcd) and two
//! MEC clusters (kwok: scheduler, controller-manager, fake kubelets), the operator as a
//! process. Every wait has a deadline; nothing sleeps.

mod support;

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use hsn_api::routes::{ROUTES_KEY, RoutesTable};
use hsn_api::{HsnNetwork, HsnNode, MecCluster};
use hsn_testenv::{ControlPlane, KwokCluster, wait_for};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::*;

const NS: &str = "edge-net";
const NET: &str = "metro";
const MEMBER_NS: &str = "hsn-metro";

fn network() -> Result<HsnNetwork> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": NET, "namespace": NS},
        "spec": {
            "superNodes": {"replicas": 4, "placement": {
                "clusterSelector": {"matchLabels": {"hsn.io/tier": "mec"}}, "spreadBy": "Region"}},
            "edgePools": [
                {"name": "broadband", "sliceType": "eMBB", "maxEdgesPerSuperNode": 8,
                 "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "embb"}}},
                {"name": "iot", "sliceType": "mMTC",
                 "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "mmtc"}}}
            ],
            "metering": {"tenants": [
                {"name": "acme", "id": 1, "prefixes": ["10.20.0.0/16", "2001:db8:20::/48"]},
                {"name": "globex", "id": 2, "prefixes": ["10.30.0.0/16"]}
            ]}
        }
    }))?)
}

async fn routes(member: &Client) -> Result<RoutesTable> {
    let cm = Api::<ConfigMap>::namespaced(member.clone(), MEMBER_NS)
        .get("hsn-routes")
        .await?;
    Ok(RoutesTable::parse(
        &cm.data.unwrap_or_default()[ROUTES_KEY],
    )?)
}

async fn super_replicas(member: &Client) -> Option<i32> {
    let sts = Api::<StatefulSet>::namespaced(member.clone(), MEMBER_NS)
        .get_opt("hsn-super-node")
        .await
        .ok()??;
    sts.spec?.replicas
}

/// Edge HsnNodes by (cluster, node) -> assigned super HsnNode.
async fn assignments(hub: &Client) -> Result<Vec<(String, String, String)>> {
    let nodes = Api::<HsnNode>::namespaced(hub.clone(), NS)
        .list(&ListParams::default())
        .await?;
    Ok(nodes
        .items
        .into_iter()
        .filter_map(|n| {
            Some((
                n.spec.cluster,
                n.spec.node_name?,
                n.spec.assigned_super_node?,
            ))
        })
        .collect())
}

/// Writes (or renews) the Lease of super node `super-0` in A: renewed `age` seconds ago,
/// valid for `duration` seconds.
async fn put_super_lease(member: &Client, age: i64, duration: i32) -> Result<()> {
    let renewed =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(age);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "super-0", "namespace": MEMBER_NS},
        "spec": {"holderIdentity": "node-x", "leaseDurationSeconds": duration,
                 "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}
    });
    let api: Api<Lease> = Api::namespaced(member.clone(), MEMBER_NS);
    api.patch(
        "super-0",
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&lease),
    )
    .await?;
    Ok(())
}

async fn lease_lapse(hub: &Client, a: &Client, nets: &Api<HsnNetwork>) -> Result<()> {
    let lost = "metro.mec-a.super-0";
    // Valid for an hour: the later steps must not see it lapse.
    put_super_lease(a, 0, 3600).await?;
    let before = assignments(hub).await?;
    ensure!(
        before.iter().any(|(_, _, s)| s == lost),
        "super-0 of A guarantees edges: {before:?}"
    );
    put_super_lease(a, 120, 15).await?;
    wait_condition(nets, NET, "Degraded", "True", Some("SuperNodesLost")).await?;
    let after = wait_for("the lost super's edges re-homed", DEADLINE, || async {
        let now = assignments(hub).await.ok()?;
        (now.len() == before.len() && now.iter().all(|(_, _, s)| s != lost)).then_some(now)
    })
    .await?;
    for (old, new) in before.iter().zip(&after) {
        ensure!(
            old.0 == new.0 && old.1 == new.1,
            "same edges in the same order"
        );
        ensure!(
            old.2 == lost || old.2 == new.2,
            "{}/{} moved from {} to {} though its super lives",
            old.0,
            old.1,
            old.2,
            new.2
        );
    }
    let routes_a = routes(a).await?;
    ensure!(
        routes_a.supers.iter().all(|s| s.id != "mec-a/super-0"),
        "routes list only live supers"
    );
    // Renewed, it is live again and takes back the edges it wins.
    put_super_lease(a, 0, 3600).await?;
    wait_condition(nets, NET, "Degraded", "False", None).await?;
    wait_for("super-0 of A guarantees edges again", DEADLINE, || async {
        assignments(hub)
            .await
            .ok()?
            .iter()
            .any(|(_, _, s)| s == lost)
            .then_some(())
    })
    .await?;
    Ok(())
}

/// (writes to members, writes to the hub by the network controller) so far, from one
/// scrape. MecCluster status is left out: it records probe latency when that moves a lot.
async fn writes(op: &Operator) -> Result<(f64, f64)> {
    let text = op.get("/metrics").await?;
    let sum = |keep: &dyn Fn(&str) -> bool| -> f64 {
        text.lines()
            .filter(|l| keep(l))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let member = sum(&|l| {
        l.starts_with("hsn_operator_member_requests_total{") && !l.contains("method=\"GET\"")
    });
    let hub = sum(&|l| l.starts_with("hsn_operator_hub_writes_total{controller=\"hsnnetwork\"}"));
    Ok((member, hub))
}

async fn namespace_gone(member: &Client) -> Option<()> {
    let ns = Api::<Namespace>::all(member.clone());
    ns.get_opt(MEMBER_NS).await.ok()?.is_none().then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_places_fails_over_and_cleans_up() -> Result<()> {
    let hub_cp = ControlPlane::start().await?;
    let hub = hub_cp.client();
    install_crds(&hub).await?;
    // Two regions x two zones x five nodes; four edge-capable nodes per zone.
    let a = member(&hub, "mec-a", "eu-west", &nodes("eu-west", 5, 4)).await?;
    let b = member(&hub, "mec-b", "eu-north", &nodes("eu-north", 5, 4)).await?;
    let dir = tempfile::tempdir()?;
    let op = Operator::start(&hub_cp, dir.path(), &[]).await?;
    with_log(&op, rollout(&hub_cp, &a, &b, &op)).await?;
    // A restarted operator plans from what is there (HsnNodes, members): it must move no
    // edge and write nothing, even before its first probes complete.
    let before = assignments(&hub).await?;
    op.kill().await;
    let op = Operator::start(&hub_cp, dir.path(), &[]).await?;
    with_log(&op, restarted(&hub, &op, before)).await?;
    with_log(&op, churn(&hub_cp, &a, &b, &op)).await
}

async fn restarted(
    hub: &Client,
    op: &Operator,
    before: Vec<(String, String, String)>,
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
    ensure!(assignments(hub).await? == before, "a restart moved edges");
    ensure!(
        writes(op).await? == (0.0, 0.0),
        "a restarted operator rewrote what was already right"
    );
    Ok(())
}

/// Steps 1 and 2: the network rolls out, then steady state writes nothing.
async fn rollout(
    hub_cp: &ControlPlane,
    a: &KwokCluster,
    b: &KwokCluster,
    op: &Operator,
) -> Result<()> {
    let hub = hub_cp.client();
    let (ac, bc) = (a.client(), b.client());
    let nets: Api<HsnNetwork> = Api::namespaced(hub.clone(), NS);
    let ns: Api<Namespace> = Api::all(hub.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
    )
    .await?;
    nets.create(&PostParams::default(), &network()?).await?;

    // 1. Ready with the right counts and the right objects in each member.
    let n = wait_condition(&nets, NET, "Ready", "True", Some("AllAgentsReady")).await?;
    let status = n.status.unwrap();
    ensure!(
        status.super_nodes.desired == 4 && status.super_nodes.ready == 4,
        "{status:?}"
    );
    ensure!(
        status.edge_nodes.desired == 16 && status.edge_nodes.ready == 16,
        "{status:?}"
    );
    ensure!(status.cluster_count == 2);
    for (member, own) in [(&ac, "mec-a/"), (&bc, "mec-b/")] {
        ensure!(
            super_replicas(member).await == Some(2),
            "two super nodes per region"
        );
        let ds = Api::<DaemonSet>::namespaced(member.clone(), MEMBER_NS);
        for pool in ["hsn-edge-broadband", "hsn-edge-iot"] {
            let d = ds
                .get(pool)
                .await
                .with_context(|| format!("DaemonSet {pool}"))?;
            ensure!(
                d.status.unwrap().number_ready == 4,
                "{pool}: 4 edge agents ready"
            );
        }
        let table = routes(member).await?;
        ensure!(table.edges.len() == 8 && table.supers.len() == 4 && table.tenants.len() == 2);
        // Locality: every edge goes to a super node of its own region.
        ensure!(
            table.edges.iter().all(|e| e.super_id.starts_with(own)),
            "{table:?}"
        );
    }
    let edge_nodes = assignments(&hub).await?;
    ensure!(
        edge_nodes.len() == 16,
        "one HsnNode per edge agent: {edge_nodes:?}"
    );

    // 2. Steady state writes nothing: several reconciles later, no new write anywhere.
    let before = writes(op).await?;
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
    ensure!(
        before == after,
        "steady-state reconciles wrote: (member, hub) writes {before:?} -> {after:?}"
    );
    Ok(())
}

/// Steps 3 to 7: pool changes, a lapsed Lease, a lost member, deletion, broken Secrets.
async fn churn(
    hub_cp: &ControlPlane,
    a: &KwokCluster,
    b: &KwokCluster,
    op: &Operator,
) -> Result<()> {
    let hub = hub_cp.client();
    let (ac, bc) = (a.client(), b.client());
    let nets: Api<HsnNetwork> = Api::namespaced(hub.clone(), NS);

    // 3. Label two more nodes of A into the broadband pool: assignment and routes follow.
    let anodes: Api<Node> = Api::all(ac.clone());
    for node in ["eu-west-1a-node-5", "eu-west-1b-node-5"] {
        let patch =
            json!({"metadata": {"labels": {"hsn.io/edge": "true", "hsn.io/slice": "embb"}}});
        anodes
            .patch(node, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    wait_for("routes of A list 10 edges", DEADLINE, || async {
        (routes(&ac).await.ok()?.edges.len() == 10).then_some(())
    })
    .await?;
    wait_for("18 edges ready", DEADLINE, || async {
        let s = nets.get(NET).await.ok()?.status?;
        (s.edge_nodes.desired == 18 && s.edge_nodes.ready == 18).then_some(())
    })
    .await?;
    wait_condition(&nets, NET, "Ready", "True", Some("AllAgentsReady")).await?;
    wait_for("18 edge HsnNodes", DEADLINE, || async {
        (assignments(&hub).await.ok()?.len() == 18).then_some(())
    })
    .await?;

    // 3b. A super node whose Lease lapses loses exactly its edges, and wins some back when
    // it renews.
    lease_lapse(&hub, &ac, &nets).await?;

    // 4. Stop B's API server: B turns NotReady, its edges are re-homed to A's super nodes.
    b.stop_apiserver().await?;
    let mecs: Api<MecCluster> = Api::all(hub.clone());
    wait_for("MecCluster mec-b Ready=False", DEADLINE, || async {
        let m = mecs.get("mec-b").await.ok()?;
        (mec_condition(&m, "Ready")?.0 == "False").then_some(())
    })
    .await?;
    let degraded = wait_condition(&nets, NET, "Degraded", "True", Some("ClusterNotReady")).await?;
    let conditions = degraded.status.unwrap().conditions;
    let message = &conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    ensure!(message.contains("mec-b"), "{message}");
    wait_for(
        "B's edges re-homed to A's super nodes",
        DEADLINE,
        || async {
            let all = assignments(&hub).await.ok()?;
            let on_a = all
                .iter()
                .filter(|(_, _, s)| s.starts_with("metro.mec-a."))
                .count();
            (all.len() == 18 && on_a == 18).then_some(())
        },
    )
    .await?;
    wait_for("A runs all four super nodes", DEADLINE, || async {
        (super_replicas(&ac).await? == 4).then_some(())
    })
    .await?;
    let table = routes(&ac).await?;
    ensure!(
        table.supers.iter().all(|s| s.id.starts_with("mec-a/")),
        "A's routes list only live super nodes: {table:?}"
    );
    let failovers = op.metric("hsn_operator_failover_seconds_count").await?;
    ensure!(failovers >= 1.0, "the failover time was recorded");

    // 5. Start B again: the network converges back.
    b.start_apiserver().await?;
    wait_condition(&nets, NET, "Degraded", "False", None).await?;
    wait_condition(&nets, NET, "Ready", "True", Some("AllAgentsReady")).await?;
    wait_for("B hosts super nodes again", DEADLINE, || async {
        (super_replicas(&bc).await? == 2).then_some(())
    })
    .await?;

    // 6. Delete the network while B is down: A is cleaned now, B when it returns.
    b.stop_apiserver().await?;
    wait_for("MecCluster mec-b Ready=False", DEADLINE, || async {
        let m = mecs.get("mec-b").await.ok()?;
        (mec_condition(&m, "Ready")?.0 == "False").then_some(())
    })
    .await?;
    nets.delete(NET, &DeleteParams::default()).await?;
    wait_for("network gone from the hub", DEADLINE, || async {
        nets.get_opt(NET).await.ok()?.is_none().then_some(())
    })
    .await?;
    wait_for("A's namespace gone", DEADLINE, || namespace_gone(&ac)).await?;
    let marked = mecs.get("mec-b").await?;
    ensure!(
        marked
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("hsn.io/pending-cleanup")
    );
    ensure!(
        assignments(&hub).await?.is_empty(),
        "HsnNodes are removed with the network"
    );
    b.start_apiserver().await?;
    wait_for("B's namespace gone after it came back", DEADLINE, || {
        namespace_gone(&bc)
    })
    .await?;
    wait_for("pending cleanup cleared", DEADLINE, || async {
        let m = mecs.get("mec-b").await.ok()?;
        (!m.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("hsn.io/pending-cleanup"))
        .then_some(())
    })
    .await?;

    // 7. Broken kubeconfig Secrets: clear conditions, no crash.
    kubeconfig_secret(&hub, "garbage", b"this is not a kubeconfig").await?;
    mec_cluster(&hub, "mec-broken", "eu-south", "garbage").await?;
    mec_cluster(&hub, "mec-missing", "eu-east", "no-such-secret").await?;
    for (name, reason) in [
        ("mec-broken", "KubeconfigInvalid"),
        ("mec-missing", "SecretNotFound"),
    ] {
        let m = wait_for(
            &format!("{name} Reachable=False {reason}"),
            DEADLINE,
            || async {
                let m = mecs.get(name).await.ok()?;
                let (status, r, _) = mec_condition(&m, "Reachable")?;
                (status == "False" && r == reason).then_some(m)
            },
        )
        .await?;
        let (ready, _, message) = mec_condition(&m, "Ready").context("Ready condition")?;
        ensure!(ready == "False" && !message.is_empty(), "{name}: {message}");
    }
    let names: BTreeSet<String> = mecs
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(name_of)
        .collect();
    ensure!(names.len() == 4);
    Ok(())
}
