//! The CRDs on a real kube-apiserver: they establish, the examples apply, every
//! validation rule refuses a bad object with its own message, and `kubectl explain`
//! shows the docs.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use hsn_testkit::{ControlPlane, wait_for};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

mod cases;
mod limits;

use cases::{Case, cases};

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
    // Storage set at creation stays through updates that leave it alone.
    let nets = api(&cp, "HsnNetwork", true);
    let mut with_storage = valid_network("stored");
    set(
        &mut with_storage,
        "/spec/superNodes/storage",
        json!({"storageClassName": "fast-ssd", "size": "20Gi"}),
    );
    let created = nets
        .create(
            &PostParams::default(),
            &serde_json::from_value(with_storage)?,
        )
        .await
        .context("a network with super-node storage refused")?;
    let mut changed = serde_json::to_value(created)?;
    set(&mut changed, "/spec/superNodes/replicas", json!(3));
    nets.replace(
        "stored",
        &PostParams::default(),
        &serde_json::from_value(changed)?,
    )
    .await
    .context("an update that leaves superNodes.storage alone refused")?;
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
