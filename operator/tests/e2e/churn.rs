//! Steps 3 to 7: pool changes, a lapsed Lease, Leases and HsnNodes not written by the placed
//! pods or the operator, a lost member, ledger TLS turned off, deletion, broken Secrets; and
//! tidying clusters that outlive the suite.

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use hsn_api::MecCluster;
use hsn_testkit::operator::{
    DEADLINE, OPERATOR_NS, OperatorUnderTest, kubeconfig_secret, mec_cluster, mec_condition,
    name_of, wait_condition,
};
use hsn_testkit::wait_for;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::lease::lease_lapse;
use crate::reads::{assignments, namespace_gone, routes, super_replicas};
use crate::trust::trust;
use crate::{NET, NS, Suite};

/// Steps 3 to 7: pool changes, a lapsed Lease, a lost member, deletion, broken Secrets.
/// `genesis` is the network's genesis as written: no step may rewrite it.
pub(crate) async fn churn(s: &Suite, op: &OperatorUnderTest, genesis: &str) -> Result<()> {
    let hub = s.hub();
    let (a, b) = (&s.a, &s.b);
    let (ac, bc) = (a.client(), b.client());
    let nets = s.nets();
    let edges = s.ta.edges() + s.tb.edges() + 2;

    // 3. Label two more nodes of A into the broadband pool: assignment and routes follow.
    let anodes: Api<Node> = Api::all(ac.clone());
    for node in &s.ta.spare {
        let patch =
            json!({"metadata": {"labels": {"hsn.io/edge": "true", "hsn.io/slice": "embb"}}});
        anodes
            .patch(node, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    let a_edges = s.ta.edges() + 2;
    wait_for(
        &format!("routes of A list {a_edges} edges"),
        DEADLINE,
        || async { (routes(&ac).await.ok()?.edges.len() == a_edges).then_some(()) },
    )
    .await?;
    wait_for(&format!("{edges} edges ready"), DEADLINE, || async {
        let st = nets.get(NET).await.ok()?.status?;
        let want = i32::try_from(edges).ok()?;
        (st.edge_nodes.desired == want && st.edge_nodes.ready == want).then_some(())
    })
    .await?;
    wait_condition(&nets, NET, "Ready", "True", Some("AllAgentsReady")).await?;
    wait_for(&format!("{edges} edge HsnNodes"), DEADLINE, || async {
        (assignments(&hub).await.ok()?.len() == edges).then_some(())
    })
    .await?;

    // 3b. A super node whose Lease lapses loses exactly its edges, and wins some back when
    // it renews.
    lease_lapse(s).await?;

    // 3c. Only the placed pod speaks for an agent: Leases written by other pods, or a
    // second key from the same pod, are ignored; HsnNodes made by hand are removed.
    trust(s).await?;

    // 4. B goes away (its API server stops): B turns NotReady, its edges are re-homed to A's
    // super nodes.
    b.go_away().await?;
    let mecs: Api<MecCluster> = Api::all(hub.clone());
    not_ready(&mecs, &b.name).await?;
    let degraded = wait_condition(&nets, NET, "Degraded", "True", Some("ClusterNotReady")).await?;
    let conditions = degraded.status.unwrap().conditions;
    let message = &conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    ensure!(message.contains(&b.name), "{message}");
    let on_a_prefix = format!("{NET}.{}.", a.name);
    wait_for(
        "B's edges re-homed to A's super nodes",
        DEADLINE,
        || async {
            let all = assignments(&hub).await.ok()?;
            let on_a = all
                .iter()
                .filter(|(_, _, sup)| sup.starts_with(&on_a_prefix))
                .count();
            (all.len() == edges && on_a == edges).then_some(())
        },
    )
    .await?;
    wait_for("A runs all four super nodes", DEADLINE, || async {
        (super_replicas(&ac).await? == 4).then_some(())
    })
    .await?;
    let table = routes(&ac).await?;
    ensure!(
        table.supers.iter().all(|sup| sup.id.cluster == a.name),
        "A's routes list only live super nodes: {table:?}"
    );
    let failovers = op.metric("hsn_operator_failover_seconds_count").await?;
    ensure!(failovers >= 1.0, "the failover time was recorded");

    // 5. B comes back: the network converges back.
    b.come_back().await?;
    wait_condition(&nets, NET, "Degraded", "False", None).await?;
    wait_condition(&nets, NET, "Ready", "True", Some("AllAgentsReady")).await?;
    wait_for("B hosts super nodes again", DEADLINE, || async {
        (super_replicas(&bc).await? == 2).then_some(())
    })
    .await?;
    // Failover, a lost member and its return: the chain's genesis stands as written.
    crate::chain::unchanged(s, genesis).await?;

    // 5b. Ledger TLS turned off: the CA and the TLS objects go.
    crate::chain::plaintext(s, genesis).await?;

    // 6. Delete the network while B is away: A is cleaned now, B when it returns.
    b.go_away().await?;
    not_ready(&mecs, &b.name).await?;
    let uid = nets.get(NET).await?.uid().unwrap_or_default();
    nets.delete(NET, &DeleteParams::default()).await?;
    wait_for("network gone from the hub", DEADLINE, || async {
        nets.get_opt(NET).await.ok()?.is_none().then_some(())
    })
    .await?;
    wait_for("A's namespace gone", DEADLINE, || namespace_gone(&ac)).await?;
    let marked = mecs.get(&b.name).await?;
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
    // Its chain's hub Secrets (genesis and administrator key, the ledger CA) go with it.
    let hub_secrets: Api<Secret> = Api::namespaced(hub.clone(), hsn_testkit::operator::OPERATOR_NS);
    let left = hub_secrets
        .list(&ListParams::default().labels(&format!("hsn.io/network-uid={uid}")))
        .await?
        .items;
    ensure!(
        left.is_empty(),
        "hub Secrets left: {:?}",
        left.iter().map(name_of).collect::<Vec<_>>()
    );
    b.come_back().await?;
    wait_for("B's namespace gone after it came back", DEADLINE, || {
        namespace_gone(&bc)
    })
    .await?;
    wait_for("pending cleanup cleared", DEADLINE, || async {
        let m = mecs.get(&b.name).await.ok()?;
        (!m.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("hsn.io/pending-cleanup"))
        .then_some(())
    })
    .await?;

    // 7. Broken kubeconfig Secrets: clear conditions, no crash.
    let registered = mecs.list(&ListParams::default()).await?.items.len();
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
    ensure!(names.len() == registered + 2, "{names:?}");
    Ok(())
}

/// Waits until MecCluster `name` is `Ready=False`.
async fn not_ready(mecs: &Api<MecCluster>, name: &str) -> Result<()> {
    let what = format!("MecCluster {name} Ready=False");
    wait_for(&what, DEADLINE, || async {
        let m = mecs.get(name).await.ok()?;
        (mec_condition(&m, "Ready")?.0 == "False").then_some(())
    })
    .await?;
    Ok(())
}

/// On clusters that outlive the suite: removes what it created and unlabels the nodes step 3
/// labelled, so that it can run again.
pub(crate) async fn tidy(s: &Suite) -> Result<()> {
    let (hub, dp) = (s.hub(), DeleteParams::default());
    let mecs: Api<MecCluster> = Api::all(hub.clone());
    for name in ["mec-broken", "mec-missing"] {
        mecs.delete(name, &dp).await?;
    }
    Api::<Secret>::namespaced(hub.clone(), OPERATOR_NS)
        .delete("garbage", &dp)
        .await?;
    Api::<Namespace>::all(hub).delete(NS, &dp).await?;
    let unlabel = json!({"metadata": {"labels": {"hsn.io/edge": null, "hsn.io/slice": null}}});
    for node in &s.ta.spare {
        Api::<Node>::all(s.a.client())
            .patch(node, &PatchParams::default(), &Patch::Merge(&unlabel))
            .await?;
    }
    Ok(())
}
