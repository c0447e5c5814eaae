//! Member access and cluster identity on real API servers: a hub (kube-apiserver + etcd with
//! one hand-made Ready node, so it is a member too through a `local: true` MecCluster), two
//! kwok MEC clusters and the operator as a process. What an attacker tried, each in its own
//! module:
//!
//! - `duplicates`: a second MecCluster for a member (another Secret with its kubeconfig) and a
//!   non-local one pointing at the hub are refused as `DuplicateCluster` and delete nothing;
//! - `refused`: kubeconfigs with an exec plugin or a tokenFile are refused as
//!   `KubeconfigRefused`; the command never runs, the file is never opened, the server they
//!   name is never contacted;
//! - `cleanup`: every delete path (nothing planned, the finalizer, a pending cleanup, orphans
//!   of a network whose finalizer was removed by hand) removes the namespaces this hub wrote
//!   through that MecCluster and leaves alone those labelled like them but not ours; a
//!   namespace an older operator wrote (no markings) is marked by the next apply, not
//!   re-created.
//!
//! Every wait has a deadline; nothing sleeps.

mod cleanup;
mod duplicates;
mod refused;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use hsn_api::{HsnNetwork, MecCluster};
use hsn_operator::resources::{HUB_LABEL, MEC_CLUSTER_ANNOTATION, NETWORK_UID_LABEL};
use hsn_testkit::operator::*;
use hsn_testkit::wait_for;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

pub(crate) const NS: &str = "edge-net";
/// The network every step keeps.
pub(crate) const NET: &str = "metro";
/// The `local: true` MecCluster: the hub itself.
pub(crate) const HUB_LOCAL: &str = "hub-local";

/// What every step works on.
pub(crate) struct World {
    pub(crate) hub: Hub,
    pub(crate) a: Member,
    pub(crate) b: Member,
    /// The hub's `kube-system` UID: what marks what this operator writes.
    pub(crate) hub_uid: String,
    /// The kwok kubeconfig of member A, self-contained.
    pub(crate) a_kubeconfig: Vec<u8>,
}

impl World {
    pub(crate) fn hub(&self) -> Client {
        self.hub.client()
    }

    pub(crate) fn nets(&self) -> Api<HsnNetwork> {
        Api::namespaced(self.hub(), NS)
    }

    pub(crate) fn mecs(&self) -> Api<MecCluster> {
        Api::all(self.hub())
    }

    /// The clusters the network lives in: (MecCluster, client), the hub first.
    pub(crate) fn members(&self) -> [(&str, Client); 3] {
        [
            (HUB_LOCAL, self.hub()),
            (self.a.name.as_str(), self.a.client()),
            (self.b.name.as_str(), self.b.client()),
        ]
    }
}

/// A network with one super node per region among the `hsn.io/tier: mec` clusters and an
/// edge on every edge-capable node of every Ready cluster (the hub's too).
pub(crate) fn network(name: &str) -> Result<HsnNetwork> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "superNodes": {"replicas": 2, "placement": {
                "clusterSelector": {"matchLabels": {"hsn.io/tier": "mec"}}, "spreadBy": "Region"}},
            "edgePools": [{"name": "edge", "sliceType": "eMBB",
                "nodeSelector": {"matchLabels": {"hsn.io/edge": "true"}}}]
        }
    }))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_reached_only_as_themselves_and_only_our_namespaces_are_deleted() -> Result<()>
{
    let hub = Hub::start_or_connect(&E2eEnv::default()).await?;
    hsn_testkit::operator::hand_made_ready_node(&hub.client(), "hub-node-1").await?;
    let local: MecCluster = serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "MecCluster",
        "metadata": {"name": HUB_LOCAL},
        "spec": {"local": true, "region": "hub", "zone": "hub-1a"}
    }))?;
    Api::<MecCluster>::all(hub.client())
        .create(&PostParams::default(), &local)
        .await?;
    let regions = vec![
        // Per zone an edge-capable node and one that is not, where the super node goes.
        ("mec-a", "eu-west", nodes("eu-west", 2, 1)),
        ("mec-b", "eu-north", nodes("eu-north", 2, 1)),
    ];
    let [a, b] = <[Member; 2]>::try_from(members(&E2eEnv::default(), &hub, regions).await?)
        .map_err(|_| anyhow::anyhow!("two members"))?;
    let hub_uid = uid_of(&hub.client(), "kube-system").await?;
    let a_kubeconfig = secret_kubeconfig(&hub.client(), &a.name).await?;
    let world = World {
        hub,
        a,
        b,
        hub_uid,
        a_kubeconfig,
    };
    Api::<Namespace>::all(world.hub())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let op = Operator::start(world.hub.kubeconfig(), dir.path(), &[], &[]).await?;
    let net = with_process_log(&op, rolled_out(&world, NET)).await?;
    let decoys = with_process_log(&op, cleanup::plant_decoys(&world, &net)).await?;

    with_process_log(&op, duplicates::refused_and_harmless(&world, &op)).await?;
    let refused = with_process_log(&op, refused::run_nothing(&world, &op)).await?;
    let op = cleanup::every_path(&world, op, dir.path(), &decoys).await?;
    with_process_log(&op, refused.still_untouched()).await?;
    with_process_log(&op, decoys.untouched(&world)).await
}

/// Creates network `name` and waits until each of its namespaces (hub, A, B) exists, marked
/// as this hub's through that MecCluster; returns the network.
pub(crate) async fn rolled_out(w: &World, name: &str) -> Result<HsnNetwork> {
    let net = w
        .nets()
        .create(&PostParams::default(), &network(name)?)
        .await?;
    let uid = net.uid().context("network uid")?;
    for (cluster, client) in w.members() {
        let what = format!("namespace hsn-{name} in {cluster}, marked as ours");
        wait_for(&what, DEADLINE, || async {
            let ns = Api::<Namespace>::all(client.clone())
                .get_opt(&format!("hsn-{name}"))
                .await
                .ok()??;
            (marking(&ns) == Some((uid.clone(), w.hub_uid.clone(), cluster.to_string())))
                .then_some(())
        })
        .await?;
    }
    Ok(net)
}

/// (network uid, hub, MecCluster) a namespace is marked with, when it carries all three.
pub(crate) fn marking(ns: &Namespace) -> Option<(String, String, String)> {
    Some((
        ns.labels().get(NETWORK_UID_LABEL)?.clone(),
        ns.labels().get(HUB_LABEL)?.clone(),
        ns.annotations().get(MEC_CLUSTER_ANNOTATION)?.clone(),
    ))
}

/// Namespaces by name: (uid, being deleted) of each that exists.
pub(crate) async fn namespaces(client: &Client) -> Result<BTreeMap<String, (String, bool)>> {
    Ok(Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|ns| {
            let gone = ns.metadata.deletion_timestamp.is_some();
            (ns.name_any(), (ns.uid().unwrap_or_default(), gone))
        })
        .collect())
}

/// Waits until the namespace `name` is deleted in `client`'s cluster: gone, or (in the hub,
/// which runs no namespace controller to finish the deletion) being deleted.
pub(crate) async fn wait_gone(client: &Client, cluster: &str, name: &str) -> Result<()> {
    let api = Api::<Namespace>::all(client.clone());
    let what = format!("namespace {name} deleted in {cluster}");
    wait_for(&what, DEADLINE, || async {
        match api.get_opt(name).await.ok()? {
            None => Some(()),
            Some(ns) if cluster == HUB_LOCAL => ns.metadata.deletion_timestamp.map(drop),
            Some(_) => None,
        }
    })
    .await?;
    Ok(())
}

/// Waits until MecCluster `name`'s condition `type_` is `status` with `reason`; returns its
/// message.
pub(crate) async fn wait_mec(
    w: &World,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> Result<String> {
    let what = format!("MecCluster {name} {type_}={status} {reason}");
    let mecs = w.mecs();
    Ok(wait_for(&what, DEADLINE, || async {
        let m = mecs.get(name).await.ok()?;
        let (s, r, message) = mec_condition(&m, type_)?;
        (s == status && r == reason).then_some(message)
    })
    .await?)
}

/// Waits until the operator has reconciled `controller` `more` times after `from`.
pub(crate) async fn rounds(op: &Operator, controller: &str, more: f64) -> Result<()> {
    let metric = format!("hsn_operator_reconciles_total{{controller=\"{controller}\"}}");
    let from = op.metric(&metric).await?;
    wait_for(
        &format!("{more} more {controller} reconciles"),
        DEADLINE,
        || async { (op.metric(&metric).await.ok()? >= from + more).then_some(()) },
    )
    .await?;
    Ok(())
}

/// Requests with `method` the operator sent to members (all of them, or `cluster`'s).
pub(crate) async fn member_requests(
    op: &Operator,
    cluster: Option<&str>,
    method: &str,
) -> Result<f64> {
    let text = op.get("/metrics").await?;
    let method = format!("method=\"{method}\"");
    let cluster = cluster.map(|c| format!("cluster=\"{c}\""));
    Ok(text
        .lines()
        .filter(|l| l.starts_with("hsn_operator_member_requests_total{") && l.contains(&method))
        .filter(|l| cluster.as_ref().is_none_or(|c| l.contains(c)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

pub(crate) async fn uid_of(client: &Client, namespace: &str) -> Result<String> {
    Api::<Namespace>::all(client.clone())
        .get(namespace)
        .await?
        .uid()
        .context("no uid")
}

/// The kubeconfig in Secret `name` of the operator namespace.
async fn secret_kubeconfig(hub: &Client, name: &str) -> Result<Vec<u8>> {
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(hub.clone(), OPERATOR_NS)
        .get(name)
        .await?;
    let data = secret.data.unwrap_or_default();
    let kubeconfig = data
        .get("kubeconfig")
        .context("no kubeconfig key")?
        .0
        .clone();
    // What testkit registers must itself be acceptable.
    let parsed = kube::config::Kubeconfig::from_yaml(std::str::from_utf8(&kubeconfig)?)?;
    let refusals = hsn_api::access::refusals(&parsed);
    ensure!(
        refusals.is_empty(),
        "testkit's kubeconfig is refused: {refusals:?}"
    );
    Ok(kubeconfig)
}

/// Path of a file in `dir`, as a string for a kubeconfig.
pub(crate) fn path_in(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}
