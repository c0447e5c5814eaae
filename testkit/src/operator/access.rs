//! The hub's identity in a member, as a user's install makes it: the chart's `mode: member`
//! objects (a ServiceAccount and a ClusterRole with only what the operator writes into a
//! member) and a self-contained kubeconfig with a token of that ServiceAccount. Members
//! registered through it prove the chart's member rules are enough for everything the
//! operator does there: a missing rule fails the suite.

use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::serde::Deserialize as _;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;

use super::OPERATOR_NS;

/// The chart, as the repository holds it.
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/hsn");
/// The member release's name; its ServiceAccount is `<release>-hub-access`.
const RELEASE: &str = "hsn-member";
/// How long the token lives: longer than any test.
const TOKEN_SECONDS: i64 = 24 * 3600;

/// Installs the chart's member identity into the cluster `admin` reaches and returns a
/// kubeconfig for it: `admin_kubeconfig`'s server and CA, the ServiceAccount's token.
pub async fn member_access(admin: &Client, admin_kubeconfig: &[u8]) -> Result<Vec<u8>> {
    let rendered = render()?;
    ensure_namespace(admin).await?;
    let mut account = None;
    for doc in serde_yaml_ng::Deserializer::from_str(&rendered) {
        let value = serde_json::Value::deserialize(doc)?;
        let resource = match value["kind"].as_str() {
            Some("ServiceAccount") => {
                account = value["metadata"]["name"].as_str().map(String::from);
                ApiResource::erase::<ServiceAccount>(&())
            }
            Some("ClusterRole") => ApiResource::erase::<ClusterRole>(&()),
            Some("ClusterRoleBinding") => ApiResource::erase::<ClusterRoleBinding>(&()),
            // The long-lived token Secret needs kube-controller-manager's token controller;
            // a TokenRequest gives the same identity a token here.
            Some("Secret") | None => continue,
            Some(other) => bail!("the chart's member mode renders an unexpected {other}"),
        };
        apply(admin, &resource, value).await?;
    }
    let account = account.context("the chart's member mode renders no ServiceAccount")?;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(TOKEN_SECONDS),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), OPERATOR_NS)
        .create_token_request(&account, &PostParams::default(), &request)
        .await
        .context("a token for the member identity")?
        .status
        .and_then(|s| s.token)
        .context("the TokenRequest returned no token")?;
    let kubeconfig = Kubeconfig::from_yaml(std::str::from_utf8(admin_kubeconfig)?)?;
    let mut kubeconfig = serde_json::to_value(&kubeconfig)?;
    kubeconfig["users"] = serde_json::json!([{"name": "hsn-hub", "user": {"token": token}}]);
    for context in kubeconfig["contexts"].as_array_mut().into_iter().flatten() {
        context["context"]["user"] = "hsn-hub".into();
    }
    // JSON is YAML: any kubeconfig loader reads it.
    Ok(serde_json::to_vec(&kubeconfig)?)
}

/// `helm template` of the chart in member mode.
fn render() -> Result<String> {
    let out = Command::new(crate::bin("helm"))
        .args(["template", RELEASE, CHART, "--kube-version", "1.36.2"])
        .args([
            "--namespace",
            OPERATOR_NS,
            "--skip-crds",
            "--set",
            "mode=member",
        ])
        .output()
        .context("running helm (make tools builds it into bin/)")?;
    ensure!(
        out.status.success(),
        "helm template --set mode=member: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

async fn ensure_namespace(admin: &Client) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    if namespaces.get_opt(OPERATOR_NS).await?.is_none() {
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": OPERATOR_NS}}))?;
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    Ok(())
}

/// Server-side applies one rendered object.
async fn apply(admin: &Client, resource: &ApiResource, value: serde_json::Value) -> Result<()> {
    let object: DynamicObject = serde_json::from_value(value)?;
    let name = object
        .metadata
        .name
        .clone()
        .context("a rendered object has no name")?;
    let api: Api<DynamicObject> = match &object.metadata.namespace {
        Some(ns) => Api::namespaced_with(admin.clone(), ns, resource),
        None => Api::all_with(admin.clone(), resource),
    };
    api.patch(
        &name,
        &PatchParams::apply("hsn-testkit"),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("applying {} {name}", resource.kind))?;
    Ok(())
}

/// A copy of the kubeconfig at `kubeconfig`, written to `out`, whose users impersonate
/// ServiceAccount `ns/name` (with its groups): every request is authorized as that
/// account's would be, e.g. the chart's operator identity.
pub fn as_service_account(
    kubeconfig: &std::path::Path,
    ns: &str,
    name: &str,
    out: &std::path::Path,
) -> Result<()> {
    let mut value = serde_json::to_value(Kubeconfig::read_from(kubeconfig)?)?;
    for user in value["users"].as_array_mut().into_iter().flatten() {
        user["user"]["as"] = format!("system:serviceaccount:{ns}:{name}").into();
        user["user"]["as-groups"] = serde_json::json!([
            "system:serviceaccounts",
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated"
        ]);
    }
    std::fs::write(out, serde_json::to_vec(&value)?)?;
    Ok(())
}
