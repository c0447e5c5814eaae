//! The CRDs on a real kube-apiserver: they establish, the examples apply, every
//! validation rule refuses a bad object with its own message, and `kubectl explain`
//! shows the docs.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use hsn_testkit::{ControlPlane, wait_for};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

/// Creates the CRDs and waits until the API server serves them.
async fn install_crds(cp: &ControlPlane) -> Result<()> {
    Ok(hsn_testkit::install_crds(&cp.client(), &hsn_api::crdgen::crds(), DEADLINE).await?)
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> Result<std::process::Output> {
    Ok(cp.kubectl().args(args).output()?)
}

fn api(cp: &ControlPlane, kind: &str, namespaced: bool) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(hsn_api::GROUP, hsn_api::VERSION, kind);
    let plural = format!("{}s", kind.to_lowercase());
    let resource = ApiResource::from_gvk_with_plural(&gvk, &plural);
    if namespaced {
        Api::namespaced_with(cp.client(), "default", &resource)
    } else {
        Api::all_with(cp.client(), &resource)
    }
}

fn valid_cluster(name: &str) -> Value {
    json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "MecCluster",
        "metadata": {"name": name},
        "spec": {"local": true, "region": "eu-west", "zone": "eu-west-1a"}
    })
}

fn valid_network(name: &str) -> Value {
    json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "superNodes": {"replicas": 2},
            "edgePools": [{"name": "a", "sliceType": "eMBB"}],
            "metering": {"tenants": [
                {"name": "t1", "id": 1, "prefixes": ["10.20.0.0/16", "2001:db8:20::/48"]}
            ]}
        }
    })
}

fn valid_node(name: &str) -> Value {
    json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNode",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"network": "n", "role": "Edge", "cluster": "c", "nodeName": "node-1",
                 "assignedSuperNode": "n-super-c-0"}
    })
}

/// Sets the value at a JSON pointer, creating objects on the way.
fn set(v: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let mut target = v;
    for part in parent.split('/').skip(1) {
        target = match part.parse::<usize>() {
            Ok(i) => &mut target[i],
            Err(_) => &mut target[part],
        };
    }
    match key.parse::<usize>() {
        Ok(i) if i == target.as_array().map_or(0, Vec::len) => {
            target.as_array_mut().unwrap().push(value)
        }
        Ok(i) => target[i] = value,
        Err(_) => {
            target
                .as_object_mut()
                .unwrap()
                .insert(key.to_string(), value);
        }
    }
}

struct Case {
    name: &'static str,
    kind: &'static str,
    /// (pointer, value) edits applied to a valid object on create.
    edits: Vec<(&'static str, Value)>,
    /// Edits applied in an update after a valid create, for transition rules.
    update: Vec<(&'static str, Value)>,
    want: &'static str,
}

fn case(
    name: &'static str,
    kind: &'static str,
    edits: Vec<(&'static str, Value)>,
    want: &'static str,
) -> Case {
    Case {
        name,
        kind,
        edits,
        update: vec![],
        want,
    }
}

fn update_case(
    name: &'static str,
    kind: &'static str,
    update: Vec<(&'static str, Value)>,
    want: &'static str,
) -> Case {
    Case {
        name,
        kind,
        edits: vec![],
        update,
        want,
    }
}

fn cases() -> Vec<Case> {
    let exactly_one =
        "set exactly one of spec.local: true (the hub cluster itself) and spec.kubeconfigSecretRef";
    vec![
        // MecCluster
        case(
            "mec-both",
            "MecCluster",
            vec![("/spec/kubeconfigSecretRef", json!({"name": "s"}))],
            exactly_one,
        ),
        case(
            "mec-neither",
            "MecCluster",
            vec![("/spec/local", json!(false))],
            exactly_one,
        ),
        case(
            "mec-region-pattern",
            "MecCluster",
            vec![("/spec/region", json!("EU West"))],
            "spec.region: Invalid value",
        ),
        case(
            "mec-latitude",
            "MecCluster",
            vec![(
                "/spec/location",
                json!({"latitude": 91.0, "longitude": 0.0}),
            )],
            "spec.location.latitude: Invalid value: 91: spec.location.latitude in body should be less than or equal to 90",
        ),
        case(
            "mec-capacity",
            "MecCluster",
            vec![("/spec/capacity", json!({"maxSuperNodes": -1}))],
            "spec.capacity.maxSuperNodes in body should be greater than or equal to 0",
        ),
        update_case(
            "mec-region-immutable",
            "MecCluster",
            vec![("/spec/region", json!("us-east"))],
            "region is immutable: a cluster does not move",
        ),
        update_case(
            "mec-zone-immutable",
            "MecCluster",
            vec![("/spec/zone", json!("eu-west-1b"))],
            "zone is immutable: a cluster does not move",
        ),
        // HsnNetwork: cross-field CEL rules
        case(
            "net-dup-pools",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/1",
                json!({"name": "a", "sliceType": "URLLC"}),
            )],
            "edge pool names must be unique within a network",
        ),
        case(
            "net-dup-tenant-names",
            "HsnNetwork",
            vec![(
                "/spec/metering/tenants/1",
                json!({"name": "t1", "id": 2, "prefixes": ["10.21.0.0/16"]}),
            )],
            "tenant names must be unique within a network",
        ),
        case(
            "net-dup-tenant-ids",
            "HsnNetwork",
            vec![(
                "/spec/metering/tenants/1",
                json!({"name": "t2", "id": 1, "prefixes": ["10.21.0.0/16"]}),
            )],
            "tenant ids must be unique within a network",
        ),
        case(
            "net-bad-cidr",
            "HsnNetwork",
            vec![("/spec/metering/tenants/0/prefixes/0", json!("10.20.0.0/33"))],
            "must be an IPv4 or IPv6 prefix in CIDR notation",
        ),
        case(
            "net-not-cidr",
            "HsnNetwork",
            vec![("/spec/metering/tenants/0/prefixes/0", json!("acme-video"))],
            "must be an IPv4 or IPv6 prefix in CIDR notation",
        ),
        case(
            "net-host-bits",
            "HsnNetwork",
            vec![(
                "/spec/metering/tenants/0/prefixes/1",
                json!("2001:db8:20::1/48"),
            )],
            "must be the network address with host bits zero",
        ),
        case(
            "net-heartbeat",
            "HsnNetwork",
            vec![(
                "/spec/routing",
                json!({"failover": {"heartbeatSeconds": 20, "leaseDurationSeconds": 15}}),
            )],
            "heartbeatSeconds must be shorter than leaseDurationSeconds",
        ),
        case(
            "net-selector-in-empty",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/nodeSelector",
                json!({"matchExpressions": [{"key": "k", "operator": "In"}]}),
            )],
            "operators In and NotIn need at least one value",
        ),
        case(
            "net-selector-exists-values",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/clusterSelector",
                json!({"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["x"]}]}),
            )],
            "Exists and DoesNotExist take no values",
        ),
        case(
            "net-name-too-long-for-member-namespaces",
            "HsnNetwork",
            vec![],
            "network name must be at most 40 characters",
        ),
        update_case(
            "net-epoch-immutable",
            "HsnNetwork",
            vec![("/spec/metering/epochSeconds", json!(120))],
            "epochSeconds is immutable",
        ),
        // HsnNetwork: enums and bounds
        case(
            "net-slice-enum",
            "HsnNetwork",
            vec![("/spec/edgePools/0/sliceType", json!("5G"))],
            "spec.edgePools[0].sliceType: Unsupported value: \"5G\": supported values: \"eMBB\", \"mMTC\", \"URLLC\"",
        ),
        case(
            "net-spread-enum",
            "HsnNetwork",
            vec![("/spec/superNodes/placement", json!({"spreadBy": "Planet"}))],
            "spec.superNodes.placement.spreadBy: Unsupported value: \"Planet\"",
        ),
        case(
            "net-datapath-enum",
            "HsnNetwork",
            vec![("/spec/routing", json!({"datapath": "DPDK"}))],
            "spec.routing.datapath: Unsupported value: \"DPDK\"",
        ),
        case(
            "net-operator-enum",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/nodeSelector",
                json!({"matchExpressions": [{"key": "k", "operator": "Like", "values": ["x"]}]}),
            )],
            "operator: Unsupported value: \"Like\"",
        ),
        case(
            "net-replicas-min",
            "HsnNetwork",
            vec![("/spec/superNodes/replicas", json!(0))],
            "spec.superNodes.replicas in body should be greater than or equal to 1",
        ),
        case(
            "net-replicas-max",
            "HsnNetwork",
            vec![("/spec/superNodes/replicas", json!(65))],
            "spec.superNodes.replicas in body should be less than or equal to 64",
        ),
        case(
            "net-max-per-cluster",
            "HsnNetwork",
            vec![("/spec/superNodes/placement", json!({"maxPerCluster": 0}))],
            "spec.superNodes.placement.maxPerCluster in body should be greater than or equal to 1",
        ),
        case(
            "net-epoch-min",
            "HsnNetwork",
            vec![("/spec/metering/epochSeconds", json!(5))],
            "spec.metering.epochSeconds in body should be greater than or equal to 10",
        ),
        case(
            "net-edges-per-super",
            "HsnNetwork",
            vec![("/spec/edgePools/0/maxEdgesPerSuperNode", json!(0))],
            "spec.edgePools[0].maxEdgesPerSuperNode in body should be greater than or equal to 1",
        ),
        case(
            "net-tolerance-bp",
            "HsnNetwork",
            vec![(
                "/spec/metering/ledger",
                json!({"toleranceBasisPoints": 10001}),
            )],
            "spec.metering.ledger.toleranceBasisPoints in body should be less than or equal to 10000",
        ),
        case(
            "net-tolerance-bytes",
            "HsnNetwork",
            vec![("/spec/metering/ledger", json!({"toleranceBytes": -1}))],
            "spec.metering.ledger.toleranceBytes in body should be greater than or equal to 0",
        ),
        case(
            "net-no-pools",
            "HsnNetwork",
            vec![("/spec/edgePools", json!([]))],
            "spec.edgePools in body should have at least 1 items",
        ),
        case(
            "net-pool-name",
            "HsnNetwork",
            vec![("/spec/edgePools/0/name", json!("Pool_1"))],
            "spec.edgePools[0].name in body should match",
        ),
        case(
            "net-tenant-id",
            "HsnNetwork",
            vec![("/spec/metering/tenants/0/id", json!(0))],
            "spec.metering.tenants[0].id in body should be greater than or equal to 1",
        ),
        // HsnNode
        case(
            "node-super-assigned",
            "HsnNode",
            vec![("/spec/role", json!("Super"))],
            "only edge nodes have an assigned super node",
        ),
        case(
            "node-role-enum",
            "HsnNode",
            vec![("/spec/role", json!("Relay"))],
            "spec.role: Unsupported value: \"Relay\"",
        ),
        update_case(
            "node-role-immutable",
            "HsnNode",
            vec![
                ("/spec/role", json!("Super")),
                ("/spec/assignedSuperNode", Value::Null),
            ],
            "role is immutable",
        ),
        update_case(
            "node-cluster-immutable",
            "HsnNode",
            vec![("/spec/cluster", json!("other"))],
            "cluster is immutable",
        ),
        update_case(
            "node-name-immutable",
            "HsnNode",
            vec![("/spec/nodeName", json!("node-2"))],
            "nodeName is immutable",
        ),
        update_case(
            "node-network-immutable",
            "HsnNode",
            vec![("/spec/network", json!("other"))],
            "network is immutable",
        ),
    ]
}

async fn run_case(cp: &ControlPlane, case: &Case) -> Result<()> {
    let (api, mut obj) = match case.kind {
        "MecCluster" => (api(cp, "MecCluster", false), valid_cluster(case.name)),
        "HsnNetwork" => (api(cp, "HsnNetwork", true), valid_network(case.name)),
        _ => (api(cp, "HsnNode", true), valid_node(case.name)),
    };
    if case.name.starts_with("net-name-too-long") {
        set(&mut obj, "/metadata/name", json!("n".repeat(41)));
    }
    for (pointer, value) in &case.edits {
        set(&mut obj, pointer, value.clone());
    }
    let pp = PostParams::default();
    let result = if case.update.is_empty() {
        api.create(&pp, &serde_json::from_value(obj)?)
            .await
            .map(|_| ())
    } else {
        let created = api
            .create(&pp, &serde_json::from_value(obj)?)
            .await
            .with_context(|| format!("{}: the valid object must be accepted", case.name))?;
        let mut changed = serde_json::to_value(created)?;
        for (pointer, value) in &case.update {
            set(&mut changed, pointer, value.clone());
        }
        api.replace(case.name, &pp, &serde_json::from_value(changed)?)
            .await
            .map(|_| ())
    };
    match result {
        Ok(()) => bail!(
            "{}: accepted, but must be refused with {:?}",
            case.name,
            case.want
        ),
        Err(kube::Error::Api(status)) if status.message.contains(case.want) => Ok(()),
        Err(kube::Error::Api(status)) => {
            bail!(
                "{}: refused with {:?}, want it to contain {:?}",
                case.name,
                status.message,
                case.want
            )
        }
        Err(other) => Err(other.into()),
    }
}

#[tokio::test]
async fn every_rule_refuses_a_bad_object_with_its_message() -> Result<()> {
    let cp = ControlPlane::start().await?;
    install_crds(&cp).await?;
    // The valid bases must pass, or every refusal below proves nothing.
    for (kind, obj) in [
        ("MecCluster", valid_cluster("ok")),
        ("HsnNetwork", valid_network("ok")),
        ("HsnNode", valid_node("ok")),
    ] {
        api(&cp, kind, kind != "MecCluster")
            .create(&PostParams::default(), &serde_json::from_value(obj)?)
            .await
            .with_context(|| format!("valid {kind} refused"))?;
    }
    let mut failures = Vec::new();
    for case in cases() {
        if let Err(e) = run_case(&cp, &case).await {
            failures.push(format!("{e:#}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn examples_apply_and_show_in_kubectl() -> Result<()> {
    let cp = ControlPlane::start().await?;
    install_crds(&cp).await?;
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/examples");
    for file in ["minimal.yaml", "realistic.yaml"] {
        let out = kubectl(&cp, &["apply", "-f", &format!("{examples}/{file}")])?;
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = kubectl(&cp, &["get", "mec,hsn", "-A"])?;
    let table = String::from_utf8(out.stdout)?;
    for want in [
        "mec-eu-west",
        "mec-eu-north",
        "hub",
        "local",
        "metro",
        "minimal",
        "SUPER-DESIRED",
        "REGION",
    ] {
        assert!(
            table.contains(want),
            "`kubectl get mec,hsn -A` lacks {want}:\n{table}"
        );
    }
    // Defaults are applied by the API server, so every client sees the same object.
    let out = kubectl(
        &cp,
        &[
            "get",
            "hsn",
            "minimal",
            "-o",
            "jsonpath={.spec.metering.epochSeconds} {.spec.routing.datapath} {.spec.edgePools[0].maxEdgesPerSuperNode}",
        ],
    )?;
    assert_eq!(String::from_utf8(out.stdout)?, "60 XDP 64");
    Ok(())
}

#[tokio::test]
async fn kubectl_refuses_bad_network_and_explains_the_spec() -> Result<()> {
    let cp = ControlPlane::start().await?;
    install_crds(&cp).await?;
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.yaml");
    let mut obj = valid_network("bad");
    set(
        &mut obj,
        "/spec/edgePools/1",
        json!({"name": "a", "sliceType": "mMTC"}),
    );
    std::fs::write(&bad, serde_yaml_ng::to_string(&obj)?)?;
    let out = kubectl(&cp, &["apply", "-f", bad.to_str().unwrap()])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a duplicate edge pool was accepted");
    assert!(
        stderr.contains("edge pool names must be unique within a network"),
        "{stderr}"
    );

    // The OpenAPI document of a new CRD is published asynchronously: wait for it.
    let explained = wait_for("kubectl explain hsnnetwork.spec", DEADLINE, || async {
        let out = kubectl(&cp, &["explain", "hsnnetwork.spec"]).ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        text.contains("superNodes").then_some(text)
    })
    .await?;
    for want in [
        "The desired shape of one HSN network",
        "The super nodes: fewer, stronger agents",
        "edgePools",
        "paused",
    ] {
        assert!(
            explained.contains(want),
            "explain lacks {want:?}:\n{explained}"
        );
    }
    Ok(())
}
