//! Every path that deletes in a member, each next to namespaces labelled like the network's
//! but not ours (another hub's, another MecCluster's, unmarked): nothing planned any more,
//! orphans of a network whose finalizer was removed by hand, the finalizer, a pending
//! cleanup. Ours go; the decoys stay, with the same UIDs, through all of them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use hsn_api::HsnNetwork;
use hsn_operator::member::PENDING_CLEANUP_ANNOTATION;
use hsn_operator::resources::{HUB_LABEL, MEC_CLUSTER_ANNOTATION, NETWORK_UID_LABEL};
use hsn_testkit::operator::{DEADLINE, Operator};
use hsn_testkit::wait_for;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::duplicates::{A_AGAIN, HUB_ALIAS};
use crate::{NET, World, member_requests, rolled_out, uid_of, wait_gone};
use hsn_testkit::operator::with_process_log;

const OTHER_HUB: &str = "0a0a0a0a-other-hub";
const GONE: &str = "0b0b0b0b-no-such-network";

/// The decoys: (MecCluster, namespace) -> UID.
pub(crate) struct Decoys(BTreeMap<(String, String), String>);

/// Creates, in the hub, A and B, namespaces labelled with `net`'s UID (or a network that
/// never existed) that this hub did not write through that MecCluster.
pub(crate) async fn plant_decoys(w: &World, net: &HsnNetwork) -> Result<Decoys> {
    let uid = net.uid().context("network uid")?;
    let mut out = BTreeMap::new();
    for (cluster, client) in w.members() {
        let decoys = [
            ("decoy-other-hub", uid.as_str(), Some((OTHER_HUB, cluster))),
            ("decoy-other-mec", &uid, Some((w.hub_uid.as_str(), A_AGAIN))),
            ("decoy-unmarked", &uid, None),
            ("decoy-gone-other-hub", GONE, Some((OTHER_HUB, cluster))),
            ("decoy-gone-other-mec", GONE, Some((&w.hub_uid, HUB_ALIAS))),
            ("decoy-gone-unmarked", GONE, None),
        ];
        for (name, network_uid, marks) in decoys {
            let ns = plant(&client, name, network_uid, marks).await?;
            out.insert((cluster.to_string(), name.to_string()), ns);
        }
    }
    Ok(Decoys(out))
}

/// Creates namespace `name` labelled for `network_uid`, marked with (hub, MecCluster).
async fn plant(
    client: &Client,
    name: &str,
    network_uid: &str,
    marks: Option<(&str, &str)>,
) -> Result<String> {
    let mut ns = json!({"metadata": {"name": name, "labels": {NETWORK_UID_LABEL: network_uid}}});
    if let Some((hub, cluster)) = marks {
        ns["metadata"]["labels"][HUB_LABEL] = hub.into();
        ns["metadata"]["annotations"] = json!({MEC_CLUSTER_ANNOTATION: cluster});
    }
    let ns: Namespace = Api::all(client.clone())
        .create(&PostParams::default(), &serde_json::from_value(ns)?)
        .await?;
    ns.uid().context("namespace uid")
}

impl Decoys {
    /// Every decoy exists, with its UID, and is not being deleted.
    pub(crate) async fn untouched(&self, w: &World) -> Result<()> {
        for (cluster, client) in w.members() {
            let have = crate::namespaces(&client).await?;
            for ((c, name), uid) in &self.0 {
                if c == cluster {
                    ensure!(
                        have.get(name) == Some(&(uid.clone(), false)),
                        "decoy {name} in {cluster}: {:?}, was {uid}",
                        have.get(name)
                    );
                }
            }
        }
        Ok(())
    }
}

/// The four delete paths, in turn; returns the operator (restarted on the way).
pub(crate) async fn every_path(
    w: &World,
    op: Operator,
    dir: &Path,
    decoys: &Decoys,
) -> Result<Operator> {
    with_process_log(&op, nothing_planned(w)).await?;
    with_process_log(&op, decoys.untouched(w)).await?;
    let op = orphans(w, op, dir).await?;
    with_process_log(&op, decoys.untouched(w)).await?;
    with_process_log(&op, finalizer(w)).await?;
    with_process_log(&op, decoys.untouched(w)).await?;
    with_process_log(&op, pending(w)).await?;
    with_process_log(&op, async {
        for dup in [A_AGAIN, HUB_ALIAS] {
            let deletes = member_requests(&op, Some(dup), "DELETE").await?;
            ensure!(deletes == 0.0, "{dup} deleted {deletes} times");
        }
        Ok(())
    })
    .await?;
    Ok(op)
}

/// The network narrowed to A: the hub and B have nothing planned, their namespaces of it go.
async fn nothing_planned(w: &World) -> Result<()> {
    let member_ns = format!("hsn-{NET}");
    let a_uid = uid_of(&w.a.client(), &member_ns).await?;
    let label = json!({"metadata": {"labels": {"hsn.io/site": "a"}}});
    w.mecs()
        .patch(&w.a.name, &PatchParams::default(), &Patch::Merge(&label))
        .await?;
    let narrow = json!({"spec": {
        "superNodes": {"placement": {"clusterSelector": {"matchLabels":
            {"hsn.io/tier": "mec", "hsn.io/site": "a"}}}},
        "edgePools": [{"name": "edge", "sliceType": "eMBB", "nodeSelector": {"matchLabels":
            {"hsn.io/edge": "true", "topology.kubernetes.io/region": "eu-west"}}}]
    }});
    w.nets()
        .patch(NET, &PatchParams::default(), &Patch::Merge(&narrow))
        .await?;
    wait_gone(&w.hub(), crate::HUB_LOCAL, &member_ns).await?;
    wait_gone(&w.b.client(), &w.b.name, &member_ns).await?;
    ensure!(
        uid_of(&w.a.client(), &member_ns).await? == a_uid,
        "A's namespace was re-created"
    );
    Ok(())
}

/// A network whose finalizer is removed by hand (while the operator is down, so that it
/// cannot put it back) and then deleted: its namespaces go all the same, as orphans. While
/// the operator is down, an older operator's namespace (no owner markings) appears for a new
/// network: the restarted operator marks it, and does not re-create it.
async fn orphans(w: &World, op: Operator, dir: &Path) -> Result<Operator> {
    const ORPHANED: &str = "orphaned";
    const LEGACY: &str = "legacy";
    with_process_log(&op, rolled_out(w, ORPHANED)).await?;
    op.kill().await;
    let nets = w.nets();
    let unfinalized = json!({"metadata": {"finalizers": null}});
    nets.patch(
        ORPHANED,
        &PatchParams::default(),
        &Patch::Merge(&unfinalized),
    )
    .await?;
    nets.delete(ORPHANED, &DeleteParams::default()).await?;
    ensure!(
        nets.get_opt(ORPHANED).await?.is_none(),
        "the network is gone at once, without its finalizer"
    );
    let legacy = nets
        .create(&PostParams::default(), &crate::network(LEGACY)?)
        .await?;
    let legacy_uid = legacy.uid().context("network uid")?;
    let legacy_ns = format!("hsn-{LEGACY}");
    let planted = plant(&w.a.client(), &legacy_ns, &legacy_uid, None).await?;

    let op = Operator::start(w.hub.kubeconfig(), dir, &[], &[]).await?;
    with_process_log(&op, async {
        for (cluster, client) in w.members() {
            wait_gone(&client, cluster, &format!("hsn-{ORPHANED}")).await?;
        }
        let namespaces = Api::<Namespace>::all(w.a.client());
        let want = (legacy_uid.clone(), w.hub_uid.clone(), w.a.name.clone());
        wait_for(
            "the older operator's namespace marked",
            DEADLINE,
            || async {
                let ns = namespaces.get(&legacy_ns).await.ok()?;
                (crate::marking(&ns).as_ref() == Some(&want)).then_some(())
            },
        )
        .await?;
        ensure!(
            uid_of(&w.a.client(), &legacy_ns).await? == planted,
            "the older operator's namespace was re-created instead of marked"
        );
        let events = Api::<Event>::all(w.hub());
        wait_for("an OrphanedNamespacesRemoved Event", DEADLINE, || async {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| e.reason.as_deref() == Some("OrphanedNamespacesRemoved"))
                .then_some(())
        })
        .await?;
        Ok(())
    })
    .await?;
    Ok(op)
}

/// The network deleted: the finalizer removes A's namespace of it (and only that).
async fn finalizer(w: &World) -> Result<()> {
    let nets = w.nets();
    nets.delete(NET, &DeleteParams::default()).await?;
    wait_for("the network gone from the hub", DEADLINE, || async {
        nets.get_opt(NET).await.ok()?.is_none().then_some(())
    })
    .await?;
    wait_gone(&w.a.client(), &w.a.name, &format!("hsn-{NET}")).await
}

/// A cleanup recorded on B for a network: B's namespace of it goes, another hub's stays,
/// the note is cleared.
async fn pending(w: &World) -> Result<()> {
    const PENDING: &str = "0c0c0c0c-pending";
    let b = w.b.client();
    plant(&b, "pending-ours", PENDING, Some((&w.hub_uid, &w.b.name))).await?;
    let theirs = plant(&b, "pending-theirs", PENDING, Some((OTHER_HUB, &w.b.name))).await?;
    let note = json!({"metadata": {"annotations": {PENDING_CLEANUP_ANNOTATION: PENDING}}});
    w.mecs()
        .patch(&w.b.name, &PatchParams::default(), &Patch::Merge(&note))
        .await?;
    let mecs = w.mecs();
    wait_for("the pending cleanup of B done", DEADLINE, || async {
        let m = mecs.get(&w.b.name).await.ok()?;
        (!m.annotations().contains_key(PENDING_CLEANUP_ANNOTATION)).then_some(())
    })
    .await?;
    wait_gone(&b, &w.b.name, "pending-ours").await?;
    let have = crate::namespaces(&b).await?;
    ensure!(
        have.get("pending-theirs") == Some(&(theirs, false)),
        "another hub's namespace was touched: {:?}",
        have.get("pending-theirs")
    );
    Ok(())
}
