//! Super nodes with `superNodes.storage`, on real control planes (a hub, a kwok member with
//! its scheduler, controller-manager and fake kubelets, the operator as a process): the
//! member's StatefulSet controller gives each super node its own claim from the operator's
//! claim template, of the class and size the network asks for, its volume binder binds them
//! to PersistentVolumes this test made (no provisioner runs here), and the super pods run
//! with them (the network turns Ready); edges keep the node's directory. Deleting the
//! network takes the claims with its namespace.

use anyhow::{Result, ensure};
use hsn_api::HsnNetwork;
use hsn_testkit::operator::*;
use hsn_testkit::wait_for;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const CLUSTER: &str = "mec-a";
const NAMESPACE: &str = "team-a";
const NAME: &str = "stored";
const CLASS: &str = "hsn-test-static";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_super_node_gets_a_claim_of_the_class_and_size_asked() -> Result<()> {
    let (hub, member_cluster) = hub_with_member(CLUSTER, "eu-west", 3).await?;
    let dir = tempfile::tempdir()?;
    let op = Operator::start(hub.kubeconfig(), dir.path(), &[], &[]).await?;
    with_process_log(&op, scenario(&hub.client(), &member_cluster.client())).await
}

/// Creates network `NAME` in a new namespace `NAMESPACE` of the hub with `super_nodes` and
/// one edge pool; returns the API of its namespace's networks.
async fn create_network(hub: &Client, super_nodes: serde_json::Value) -> Result<Api<HsnNetwork>> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(hub.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let nets = Api::<HsnNetwork>::namespaced(hub.clone(), NAMESPACE);
    let network: HsnNetwork = serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "superNodes": super_nodes,
            "edgePools": [{"name": "all", "sliceType": "eMBB"}]
        }
    }))?;
    nets.create(&PostParams::default(), &network).await?;
    Ok(nets)
}

/// A class the member does not have: the super pods cannot be scheduled (their claims
/// stay Pending), and the network's status says which claim asks for which missing class,
/// not only the scheduler's "unbound immediate PersistentVolumeClaims".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_class_the_member_lacks_is_named_in_the_status() -> Result<()> {
    let (hub, _member_cluster) = hub_with_member(CLUSTER, "eu-west", 3).await?;
    let dir = tempfile::tempdir()?;
    let op = Operator::start(hub.kubeconfig(), dir.path(), &[], &[]).await?;
    with_process_log(&op, missing_class(&hub.client())).await
}

async fn missing_class(hub: &Client) -> Result<()> {
    let nets = create_network(
        hub,
        json!({"replicas": 1, "storage": {"storageClassName": "hsn-absent"}}),
    )
    .await?;
    let want = "claim state-hsn-super-node-0 asks for StorageClass \"hsn-absent\", which the \
                cluster does not have";
    let degraded = wait_for("the missing class in the status", DEADLINE, || async {
        let n = nets.get(NAME).await.ok()?;
        let c = n
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Degraded" && c.message.contains(want))?;
        Some(format!("{} {}: {}", c.status, c.reason, c.message))
    })
    .await?;
    eprintln!("Degraded={degraded}");
    ensure!(
        degraded.starts_with("True Unschedulable") && degraded.contains("pod hsn-super-node-0"),
        "{degraded}"
    );
    Ok(())
}

async fn scenario(hub: &Client, member: &Client) -> Result<()> {
    // Two volumes of the class the network asks for, larger than it asks (a claim binds to
    // a volume at least its size). Fake kubelets mount nothing, so their paths stay unused.
    let volumes: Api<PersistentVolume> = Api::all(member.clone());
    for i in 0..2 {
        let pv: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": format!("hsn-test-state-{i}")},
            "spec": {
                "storageClassName": CLASS,
                "capacity": {"storage": "2Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": format!("/nonexistent/hsn-test-state-{i}")}
            }
        }))?;
        volumes.create(&PostParams::default(), &pv).await?;
    }

    let nets = create_network(
        hub,
        json!({"replicas": 2, "storage": {"storageClassName": CLASS, "size": "1Gi"}}),
    )
    .await?;
    wait_condition(&nets, NAME, "Ready", "True", Some("AllAgentsReady")).await?;

    let member_ns = format!("hsn-{NAME}");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(member.clone(), &member_ns);
    let list = claims.list(&ListParams::default()).await?;
    let mut seen: Vec<(String, String, String, String)> = list
        .items
        .iter()
        .map(|c| {
            let spec = c.spec.clone().unwrap_or_default();
            let size = spec
                .resources
                .and_then(|r| r.requests)
                .and_then(|r| r.get("storage").map(|q| q.0.clone()))
                .unwrap_or_default();
            let phase = c.status.clone().and_then(|s| s.phase).unwrap_or_default();
            (
                c.name_any(),
                spec.storage_class_name.unwrap_or_default(),
                size,
                phase,
            )
        })
        .collect();
    seen.sort();
    let want: Vec<(String, String, String, String)> = (0..2)
        .map(|i| {
            (
                format!("state-hsn-super-node-{i}"),
                CLASS.into(),
                "1Gi".into(),
                "Bound".into(),
            )
        })
        .collect();
    ensure!(seen == want, "the super nodes' claims: {seen:?}");
    eprintln!("claims: {seen:?}");
    let sts = Api::<StatefulSet>::namespaced(member.clone(), &member_ns)
        .get("hsn-super-node")
        .await?;
    let pod = sts.spec.and_then(|s| s.template.spec).unwrap_or_default();
    ensure!(
        !pod.volumes
            .unwrap_or_default()
            .iter()
            .any(|v| v.name == "state"),
        "the super pods' state is their claim, not a pod volume"
    );

    // Deleting the network deletes its member namespace, and the claims with it.
    nets.delete(NAME, &DeleteParams::default()).await?;
    let namespaces: Api<Namespace> = Api::all(member.clone());
    wait_for("the member namespace gone", DEADLINE, || async {
        matches!(namespaces.get_opt(&member_ns).await, Ok(None)).then_some(())
    })
    .await?;
    let left = claims.list(&ListParams::default()).await?.items.len();
    ensure!(left == 0, "{left} claims left after the network's deletion");
    Ok(())
}
