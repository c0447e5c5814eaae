//! `hsnctl networks | nodes | routes` against a real kube-apiserver: the hub's objects as
//! tables and JSON, the routes of every member that answers, and a clear error for each way
//! it can go wrong (no kubeconfig, CRDs missing, network missing, hub or member unreachable).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hsn_api::{HsnNetwork, HsnNode, MecCluster};
use hsn_testkit::ControlPlane;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `hsnctl` with `args` and extra environment.
async fn hsnctl_env(args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hsnctl"));
    command.args(args).env_remove("KUBERNETES_SERVICE_HOST");
    for (k, v) in env {
        command.env(k, v);
    }
    Ok(command.output().await?)
}

/// Runs `hsnctl <args> --kubeconfig <kc>`.
async fn hsnctl(kc: &Path, args: &[&str]) -> Result<Output> {
    let kc = kc.to_str().context("kubeconfig path")?;
    hsnctl_env(&[args, &["--kubeconfig", kc]].concat(), &[]).await
}

/// Stdout of a run that must succeed.
async fn ok(kc: &Path, args: &[&str]) -> Result<String> {
    let out = hsnctl(kc, args).await?;
    if !out.status.success() {
        bail!(
            "hsnctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Stderr of a run that must fail with exit code 2.
fn failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    stderr
}

async fn install_crds(client: &Client) -> Result<()> {
    Ok(hsn_testkit::install_crds(client, &hsn_api::crdgen::crds(), DEADLINE).await?)
}

/// Creates `object` from JSON, then merges `status` into its status subresource.
async fn create<K>(api: &Api<K>, object: Value, status: Option<Value>) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object)?;
    let name = object.meta().name.clone().context("name")?;
    api.create(&PostParams::default(), &object).await?;
    if let Some(status) = status {
        let patch = Patch::Merge(json!({ "status": status }));
        api.patch_status(&name, &PatchParams::default(), &patch)
            .await?;
    }
    Ok(())
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_owned),
        ..ObjectMeta::default()
    }
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let namespace = Namespace {
        metadata: meta(name, None),
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    Ok(())
}

/// Stores `kubeconfig` in Secret `namespace/name`, as a MecCluster's access names it.
async fn create_kubeconfig_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    kubeconfig: &str,
) -> Result<()> {
    let secret = Secret {
        metadata: meta(name, Some(namespace)),
        data: Some(BTreeMap::from([(
            "kubeconfig".to_owned(),
            ByteString(kubeconfig.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

fn ago(seconds: i64) -> String {
    (Timestamp::now() - SignedDuration::from_secs(seconds)).to_string()
}

fn ready(status: &str, reason: &str) -> Value {
    json!([{"type": "Ready", "status": status, "reason": reason, "message": "",
            "lastTransitionTime": ago(60)}])
}

/// The hub: MecClusters `hub` (local), `gone` (its Secret is missing) and `down` (its
/// API server does not listen); network `metro` on all three with three agents; routes
/// in the hub's `hsn-metro`.
async fn populate(client: &Client, down_kubeconfig: &str) -> Result<Value> {
    let clusters: Api<MecCluster> = Api::all(client.clone());
    for (name, access) in [
        ("hub", json!({"local": true})),
        (
            "gone",
            json!({"kubeconfigSecretRef": {"name": "gone-kubeconfig"}}),
        ),
        (
            "down",
            json!({"kubeconfigSecretRef": {"name": "down-kubeconfig", "namespace": "mec"}}),
        ),
    ] {
        let mut spec = json!({"region": "eu-west", "zone": "eu-west-1a"});
        spec.as_object_mut()
            .context("spec")?
            .extend(access.as_object().context("access")?.clone());
        let object = json!({"apiVersion": "hsn.io/v1alpha1", "kind": "MecCluster",
                            "metadata": {"name": name}, "spec": spec});
        create(&clusters, object, None).await?;
    }
    for ns in ["mec", "hsn-metro", "edge-lab"] {
        create_namespace(client, ns).await?;
    }
    create_kubeconfig_secret(client, "mec", "down-kubeconfig", down_kubeconfig).await?;

    let counts = |d: i32, r: i32| json!({"desired": d, "ready": r});
    for (namespace, name) in [("default", "metro"), ("edge-lab", "lab")] {
        let network = json!({
            "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"superNodes": {"replicas": 1},
                     "edgePools": [{"name": "a", "sliceType": "eMBB"}],
                     "metering": {"epochSeconds": 30}}
        });
        let status = json!({
            "conditions": ready("False", "AgentsNotReady"),
            "superNodes": counts(1, 1), "edgeNodes": counts(2, 1), "clusterCount": 3,
            "clusters": [
                {"cluster": "down", "superNodes": counts(0, 0), "edgeNodes": counts(0, 0)},
                {"cluster": "gone", "superNodes": counts(0, 0), "edgeNodes": counts(0, 0)},
                {"cluster": "hub", "superNodes": counts(1, 1), "edgeNodes": counts(2, 1)}
            ]
        });
        let api: Api<HsnNetwork> = Api::namespaced(client.clone(), namespace);
        create(&api, network, Some(status)).await?;
    }

    // The operator's HsnNodes: controlled by their network.
    let metro = Api::<HsnNetwork>::namespaced(client.clone(), "default")
        .get("metro")
        .await?;
    let owner = json!([{"apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork", "name": "metro",
        "uid": metro.metadata.uid, "controller": true, "blockOwnerDeletion": true}]);
    let nodes: Api<HsnNode> = Api::namespaced(client.clone(), "default");
    let node = |name: &str, spec: Value| {
        json!({"apiVersion": "hsn.io/v1alpha1", "kind": "HsnNode",
               "metadata": {"name": name, "namespace": "default", "ownerReferences": owner},
               "spec": spec})
    };
    let super_spec = json!({"network": "metro", "role": "Super", "cluster": "hub", "ordinal": 0});
    let super_status = json!({"conditions": ready("True", "LeaseCurrent"),
        "publicKey": "5a".repeat(32), "nodeName": "hub-node-1",
        "lastHeartbeat": ago(3), "lastEpoch": 58_666_666});
    create(
        &nodes,
        node("metro-super-hub-0", super_spec),
        Some(super_status),
    )
    .await?;
    let edge_spec = json!({"network": "metro", "role": "Edge", "cluster": "hub",
        "nodeName": "n1", "assignedSuperNode": "metro-super-hub-0"});
    let edge_status = json!({"conditions": ready("True", "LeaseCurrent"),
        "publicKey": "e1".repeat(32), "lastHeartbeat": ago(4), "lastEpoch": 58_666_665});
    create(
        &nodes,
        node("metro-edge-hub-n1", edge_spec),
        Some(edge_status),
    )
    .await?;
    let lost_spec = json!({"network": "metro", "role": "Edge", "cluster": "hub", "nodeName": "n2"});
    let lost_status =
        json!({"conditions": ready("False", "LeaseExpired"), "lastHeartbeat": ago(7_300)});
    create(
        &nodes,
        node("metro-edge-hub-n2", lost_spec),
        Some(lost_status),
    )
    .await?;

    let routes = json!({
        "version": 1, "network": "metro", "cluster": "hub", "epochSeconds": 30,
        "supers": [{"id": "hub/super-0", "address": "10.0.0.5"}],
        "edges": [
            {"node": "n1", "superId": "hub/super-0", "address": "10.1.0.1",
             "publicKey": "e1".repeat(32)},
            {"node": "n7", "cluster": "down", "superId": "hub/super-0", "address": "10.2.0.7"}
        ],
        "tenants": [{"name": "acme", "id": 1, "prefixes": ["10.20.0.0/16"]}]
    });
    let configmap = ConfigMap {
        metadata: meta("hsn-routes", Some("hsn-metro")),
        data: Some(BTreeMap::from([(
            "routes.json".to_owned(),
            routes.to_string(),
        )])),
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), "hsn-metro")
        .create(&PostParams::default(), &configmap)
        .await?;
    Ok(routes)
}

/// The line of a table that starts with `first`.
fn row<'a>(table: &'a str, first: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in\n{table}"))
}

fn cells(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[tokio::test]
async fn hsnctl_shows_networks_nodes_and_routes() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let client = cp.client();
    let kc = cp.kubeconfig();
    let dir = tempfile::tempdir()?;
    let kubeconfig = std::fs::read_to_string(kc)?;
    let down = kubeconfig.replace(cp.server_url(), "https://127.0.0.1:1");
    assert_ne!(down, kubeconfig, "server URL not found in the kubeconfig");
    let down_path = dir.path().join("down.kubeconfig");
    std::fs::write(&down_path, &down)?;

    // Before the CRDs are installed, every view says so.
    for args in [
        &["networks"][..],
        &["nodes"],
        &["routes", "--network", "metro"],
    ] {
        let err = failed(&hsnctl(kc, args).await?);
        assert!(err.contains("the HSN CRDs are not installed"), "{err}");
        assert!(err.contains("hsnnetworks.hsn.io"), "{err}");
    }
    install_crds(&client).await?;
    assert_eq!(
        ok(kc, &["networks"]).await?,
        "no HsnNetworks in namespace default\n"
    );
    let routes = populate(&client, &down).await?;

    // networks: this namespace, then all.
    let table = ok(kc, &["networks"]).await?;
    assert!(table.starts_with("NAMESPACE  NAME   READY"), "{table}");
    assert_eq!(
        cells(row(&table, "default")),
        [
            "default",
            "metro",
            "False",
            "(AgentsNotReady)",
            "1/1",
            "1/2",
            "1/2",
            "3",
            "58666666",
            cells(row(&table, "default"))[9]
        ]
    );
    assert_eq!(table.lines().count(), 2, "{table}");
    let all = ok(kc, &["networks", "-A"]).await?;
    assert_eq!(cells(row(&all, "edge-lab"))[1], "lab", "{all}");
    let json: Value = serde_json::from_str(&ok(kc, &["networks", "-o", "json"]).await?)?;
    assert_eq!(json[0]["name"], "metro");
    assert_eq!(json[0]["edges_assigned"], 1);
    assert_eq!(json[0]["clusters"], json!(["down", "gone", "hub"]));
    assert_eq!(json[0]["epoch_seconds"], 30);
    let json: Value =
        serde_json::from_str(&ok(kc, &["networks", "-n", "edge-lab", "-o", "json"]).await?)?;
    assert_eq!(json.as_array().map(Vec::len), Some(1));
    assert_eq!(json[0]["name"], "lab");

    // nodes: super nodes first, heartbeat ages, key prefixes.
    let table = ok(kc, &["nodes", "--network", "metro"]).await?;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        cells(lines[0]),
        [
            "NAME",
            "NETWORK",
            "ROLE",
            "CLUSTER",
            "NODE",
            "SUPER",
            "READY",
            "HEARTBEAT",
            "EPOCH",
            "KEY"
        ]
    );
    let sup = cells(lines[1]);
    // "#0 hub-node-1" is one cell of two words.
    assert_eq!(
        sup,
        [
            "metro-super-hub-0",
            "metro",
            "super",
            "hub",
            "#0",
            "hub-node-1",
            "-",
            "True",
            sup[8],
            "58666666",
            "5a5a5a5a5a5a5a5a"
        ]
    );
    assert!(sup[8].ends_with('s'), "heartbeat seconds ago: {table}");
    let edge = cells(lines[2]);
    assert_eq!(
        edge,
        [
            "metro-edge-hub-n1",
            "metro",
            "edge",
            "hub",
            "n1",
            "metro-super-hub-0",
            "True",
            edge[7],
            "58666665",
            "e1e1e1e1e1e1e1e1"
        ]
    );
    let lost = cells(lines[3]);
    assert_eq!(
        lost[4..],
        ["n2", "-", "False", "(LeaseExpired)", "2h", "-", "-"]
    );
    let all = ok(kc, &["nodes", "-A"]).await?;
    assert!(all.starts_with("NAMESPACE  NAME"), "{all}");
    assert_eq!(all.lines().count(), 4, "{all}");
    let json: Value = serde_json::from_str(&ok(kc, &["nodes", "-o", "json"]).await?)?;
    assert_eq!(json[0]["public_key"], "5a".repeat(32));
    assert_eq!(json[1]["assigned_super_node"], "metro-super-hub-0");
    let err = failed(&hsnctl(kc, &["nodes", "--network", "nope"]).await?);
    assert!(err.contains("HsnNetwork default/nope not found"), "{err}");
    let none = ok(kc, &["nodes", "--network", "lab", "-n", "edge-lab"]).await?;
    assert_eq!(none, "no HsnNodes of network lab in namespace edge-lab\n");

    // keys: the registry file of the published keys; the agent without one is named. An
    // HsnNode made by hand, claiming the network with a key in its status, is not listed.
    let forged = json!({"apiVersion": "hsn.io/v1alpha1", "kind": "HsnNode",
        "metadata": {"name": "metro-super-hub-9", "namespace": "default",
                     "labels": {"hsn.io/network": "metro"}},
        "spec": {"network": "metro", "role": "Super", "cluster": "hub", "ordinal": 9}});
    let forged_status = json!({"conditions": ready("True", "LeaseCurrent"),
        "publicKey": "f0".repeat(32)});
    create(
        &Api::<HsnNode>::namespaced(client.clone(), "default"),
        forged,
        Some(forged_status),
    )
    .await?;
    let out = hsnctl(kc, &["keys", "--network", "metro"]).await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let registry: hsn_ledger_api::keys::RegistryFile = serde_json::from_slice(&out.stdout)?;
    let entries: Vec<(String, String, String)> = registry
        .nodes
        .iter()
        .map(|k| (k.role.to_string(), k.key.to_hex(), k.name.clone()))
        .collect();
    assert_eq!(
        entries,
        [
            ("edge".into(), "e1".repeat(32), "metro-edge-hub-n1".into()),
            ("super".into(), "5a".repeat(32), "metro-super-hub-0".into()),
        ]
    );
    let stderr = String::from_utf8(out.stderr)?;
    assert!(
        stderr.contains("1 of 3 agents have not published a key yet: metro-edge-hub-n2"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "ignoring 1 HsnNodes not created by the operator for this network: metro-super-hub-9"
        ),
        "{stderr}"
    );
    let err = failed(&hsnctl(kc, &["keys", "--network", "nope"]).await?);
    assert!(err.contains("HsnNetwork default/nope not found"), "{err}");

    // routes: the hub's table is printed, the two failing members are named.
    let out = hsnctl(kc, &["routes", "--network", "metro"]).await?;
    let err = failed(&out);
    assert!(
        err.contains("2 of 3 clusters could not be read: down, gone"),
        "{err}"
    );
    let table = String::from_utf8(out.stdout)?;
    assert!(
        table.starts_with("network default/metro: routes ConfigMap hsn-metro/hsn-routes\n"),
        "{table}"
    );
    assert!(
        table.contains("\ncluster hub: super nodes 1, edges 2, tenants 1, epoch 30s\n"),
        "{table}"
    );
    assert_eq!(
        cells(row(&table, "hub/super-0")),
        ["hub/super-0", "10.0.0.5"]
    );
    assert_eq!(
        cells(row(&table, "n1")),
        ["n1", "hub", "hub/super-0", "10.1.0.1", "e1e1e1e1e1e1e1e1"]
    );
    assert_eq!(
        cells(row(&table, "n7")),
        ["n7", "down", "hub/super-0", "10.2.0.7", "-"]
    );
    assert!(
        table.contains(
            "cluster gone: not read: kubeconfig Secret hsn-system/gone-kubeconfig not found"
        ),
        "{table}"
    );
    assert!(
        table.contains("cluster down: not read: unreachable: "),
        "{table}"
    );
    let out = hsnctl(kc, &["routes", "--network", "metro", "-o", "json"]).await?;
    failed(&out);
    let json: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["member_namespace"], "hsn-metro");
    assert_eq!(json["clusters"][0]["cluster"], "hub");
    assert_eq!(json["clusters"][0]["routes"], routes);
    let failures: Vec<&str> = json["failed"]
        .as_array()
        .context("failed")?
        .iter()
        .filter_map(|f| f["cluster"].as_str())
        .collect();
    assert_eq!(failures, ["down", "gone"]);
    // The Secret turns up: only `down` still fails.
    create_namespace(&client, "hsn-system").await?;
    create_kubeconfig_secret(&client, "hsn-system", "gone-kubeconfig", &kubeconfig).await?;
    let out = hsnctl(kc, &["routes", "--network", "metro"]).await?;
    let err = failed(&out);
    assert!(
        err.contains("1 of 3 clusters could not be read: down"),
        "{err}"
    );
    let table = String::from_utf8(out.stdout)?;
    // `gone` is the same API server here, so it shows the same table.
    assert!(table.contains("\ncluster gone: super nodes 1"), "{table}");
    let err = failed(&hsnctl(kc, &["routes", "--network", "nope"]).await?);
    assert!(err.contains("HsnNetwork default/nope not found"), "{err}");

    // The kubeconfig from KUBECONFIG, a missing context, an unreachable hub.
    let kc_str = kc.to_str().context("path")?;
    let out = hsnctl_env(&["networks"], &[("KUBECONFIG", kc_str)]).await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = failed(&hsnctl(kc, &["networks", "--context", "nope"]).await?);
    assert!(err.starts_with("hsnctl: kubeconfig: "), "{err}");
    let err = failed(&hsnctl(&down_path, &["networks", "--request-timeout", "3"]).await?);
    assert!(
        err.contains("the hub cluster at https://127.0.0.1:1/ is unreachable"),
        "{err}"
    );
    cp.stop().await;
    Ok(())
}

#[tokio::test]
async fn no_kubeconfig_is_a_clear_error() -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path().to_str().context("path")?;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hsnctl"));
    let out = command
        .arg("networks")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", home)
        .output()
        .await?;
    let err = failed(&out);
    assert_eq!(
        err,
        "hsnctl: no kubeconfig for the hub cluster: pass --kubeconfig, set KUBECONFIG or create ~/.kube/config\n"
    );
    let missing = format!("{home}/missing");
    let out = hsnctl_env(&["nodes", "--kubeconfig", &missing], &[]).await?;
    let err = failed(&out);
    assert!(
        err.starts_with(&format!("hsnctl: cannot read kubeconfig {missing}: ")),
        "{err}"
    );
    Ok(())
}
