//! What the bounds mean on a real API server: an object of about 1 MB is refused whatever
//! its shape, in spec and in status, with a message naming the field; valid values at the
//! edges of the rules (every prefix family, image reference forms, names) are accepted.

use anyhow::{Context, Result, bail};
use hsn_testkit::ControlPlane;
use kube::api::PostParams;
use serde_json::{Value, json};

use super::{api, install_crds, set, valid_cluster, valid_network, valid_node};

const MB: usize = 1 << 20;

/// A refused write: its message must name the field and say what is wrong with it.
fn refused(what: &str, result: Result<(), kube::Error>, want: &[&str]) -> Result<()> {
    match result {
        Ok(()) => bail!("{what}: accepted, must be refused"),
        Err(kube::Error::Api(s)) if s.code == 422 && want.iter().all(|w| s.message.contains(w)) => {
            Ok(())
        }
        Err(kube::Error::Api(s)) => {
            let head: String = s.message.chars().take(600).collect();
            bail!(
                "{what}: refused with {} {head:?}, want it to contain {want:?}",
                s.code
            )
        }
        Err(e) => Err(e).context(what.to_string()),
    }
}

/// Spec shapes of about 1 MB: one long string, many list items, one long map key.
fn megabyte_specs() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    Value,
    Vec<&'static str>,
)> {
    let tenants: Vec<Value> = (1..=12_000)
        .map(|i| json!({"name": format!("tenant-{i}"), "id": i, "prefixes": ["10.0.0.0/8"]}))
        .collect();
    let tolerations = vec![json!({"key": "k".repeat(60), "operator": "Exists"}); 12_000];
    vec![
        (
            "HsnNetwork",
            "image",
            "/spec/superNodes/image",
            json!("a".repeat(MB)),
            vec!["spec.superNodes.image: Too long"],
        ),
        (
            "HsnNetwork",
            "tenants",
            "/spec/metering/tenants",
            json!(tenants),
            vec!["spec.metering.tenants: Too many: 12000: must have at most 64 items"],
        ),
        (
            "HsnNetwork",
            "tolerations",
            "/spec/edgePools/0/tolerations",
            json!(tolerations),
            vec!["spec.edgePools[0].tolerations: Too many"],
        ),
        (
            "HsnNetwork",
            "label-key",
            "/spec/edgePools/0/clusterSelector",
            json!({"matchLabels": {"k".repeat(MB): "v"}}),
            vec!["keys must be at most 317 characters"],
        ),
        (
            "HsnNetwork",
            "toleration-value",
            "/spec/edgePools/0/tolerations",
            json!([{"key": "k", "operator": "Equal", "value": "v".repeat(MB)}]),
            vec!["spec.edgePools[0].tolerations[0].value: Too long"],
        ),
        (
            "MecCluster",
            "secret-name",
            "/spec/kubeconfigSecretRef",
            json!({"name": "s".repeat(MB)}),
            vec!["spec.kubeconfigSecretRef.name: Too long"],
        ),
        (
            "HsnNode",
            "node-name",
            "/spec/nodeName",
            json!("n".repeat(MB)),
            vec!["spec.nodeName: Too long"],
        ),
    ]
}

fn object(kind: &str, name: &str) -> Value {
    match kind {
        "MecCluster" => valid_cluster(name),
        "HsnNetwork" => valid_network(name),
        _ => valid_node(name),
    }
}

#[tokio::test]
async fn an_object_of_a_megabyte_is_refused_whatever_its_shape() -> Result<()> {
    let cp = ControlPlane::start().await?;
    install_crds(&cp).await?;
    let pp = PostParams::default();
    let mut failures = Vec::new();
    for (kind, shape, pointer, value, want) in megabyte_specs() {
        let name = format!("mb-{}", shape);
        let mut obj = object(kind, &name);
        if kind == "MecCluster" {
            obj["spec"].as_object_mut().unwrap().remove("local");
        }
        set(&mut obj, pointer, value);
        let size = serde_json::to_vec(&obj)?.len();
        assert!(size >= MB / 2, "{kind} {shape}: only {size} bytes");
        let result = api(&cp, kind, kind != "MecCluster")
            .create(&pp, &serde_json::from_value(obj)?)
            .await
            .map(|_| ());
        if let Err(e) = refused(&format!("{kind} {shape} ({size} bytes)"), result, &want) {
            failures.push(format!("{e:#}"));
        }
    }

    // Status is bounded too: a writer can never store a status that makes the object
    // unwritable.
    for kind in ["MecCluster", "HsnNetwork", "HsnNode"] {
        let api = api(&cp, kind, kind != "MecCluster");
        let name = format!("status-{}", kind.to_lowercase());
        let created = api
            .create(&pp, &serde_json::from_value(object(kind, &name))?)
            .await
            .with_context(|| format!("valid {kind} refused"))?;
        let condition = |message: String| {
            json!({"type": "Ready", "status": "False", "reason": "Testing", "message": message,
                   "lastTransitionTime": "2026-01-01T00:00:00Z"})
        };
        for (shape, conditions, want) in [
            (
                "message",
                json!([condition("m".repeat(MB))]),
                "status.conditions[0].message: Too long: may not be more than 4096 bytes",
            ),
            (
                "count",
                json!(vec![condition("m".repeat(64)); 10_000]),
                "status.conditions: Too many: 10000: must have at most 16 items",
            ),
        ] {
            let mut obj = serde_json::to_value(&created)?;
            obj["status"] = json!({"conditions": conditions});
            let result = api
                .replace_status(&name, &pp, &serde_json::from_value(obj)?)
                .await
                .map(|_| ());
            if let Err(e) = refused(&format!("{kind} status {shape}"), result, &[want]) {
                failures.push(format!("{e:#}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[tokio::test]
async fn valid_values_at_the_edges_of_the_rules_are_accepted() -> Result<()> {
    let cp = ControlPlane::start().await?;
    install_crds(&cp).await?;
    let networks = api(&cp, "HsnNetwork", true);
    let digest = "0123456789abcdef".repeat(4);
    let mut variants: Vec<(String, &str, Value)> = vec![
        (
            "prefixes".into(),
            "/spec/metering/tenants",
            json!([
                {"name": "v4", "id": 1, "prefixes": ["10.0.0.0/8", "100.64.0.0/10", "192.0.2.1/32", "128.0.0.0/1"]},
                {"name": "v6", "id": 2, "prefixes": ["fc00::/7", "2001:db8::/32", "::1/128", "8000::/1"]}
            ]),
        ),
        ("n".repeat(40), "/spec/paused", json!(false)),
        ("net-1".into(), "/spec/paused", json!(false)),
    ];
    for (i, image) in [
        "hsn-agent".to_string(),
        "ghcr.io/hsn-io/hsn-agent:0.1.0".into(),
        "localhost:5000/hsn/agent:v1.2_3-rc.1".into(),
        "registry.example.com/hsn__agent/x-y.z".into(),
        format!("ghcr.io/hsn-io/hsn-agent@sha256:{digest}"),
        format!("ghcr.io/hsn-io/hsn-agent:0.1.0@sha256:{digest}"),
        "[::1]:5000/agent".into(),
        "Registry.Example.com:443/agent:Latest".into(),
    ]
    .into_iter()
    .enumerate()
    {
        variants.push((format!("image-{i}"), "/spec/superNodes/image", json!(image)));
    }
    let mut failures = Vec::new();
    for (name, pointer, value) in variants {
        let mut obj = valid_network(&name);
        set(&mut obj, pointer, value.clone());
        if let Err(e) = networks
            .create(&PostParams::default(), &serde_json::from_value(obj)?)
            .await
        {
            failures.push(format!("{name} {value}: {e}"));
        }
    }
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
    Ok(())
}
