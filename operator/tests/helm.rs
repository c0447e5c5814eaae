//! The Helm chart on a real API server: lint, schema, install (the operator's objects
//! appear, within the "restricted" Pod Security Standard), upgrade, uninstall.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Result, ensure};
use hsn_testkit::operator::DEADLINE;
use hsn_testkit::{ControlPlane, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/hsn");
const NS: &str = "hsn-system";

fn helm(cp: &ControlPlane, home: &Path, args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(hsn_testkit::bin("helm"));
    for var in ["HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"] {
        cmd.env(var, home.join(var));
    }
    Ok(cmd
        .args(args)
        .args(["--kubeconfig", cp.kubeconfig().to_str().unwrap()])
        .output()?)
}

fn ok(out: &Output, what: &str) -> Result<String> {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "{what} failed:\n{stderr}");
    Ok(stderr)
}

#[tokio::test]
async fn the_chart_lints_installs_upgrades_and_uninstalls() -> Result<()> {
    hsn_testkit::require_binaries(&["helm"])?;
    let cp = ControlPlane::start().await?;
    let home = tempfile::tempdir()?;
    let h = |args: &[&str]| helm(&cp, home.path(), args);
    let template = |extra: &[&str]| {
        let mut args = vec!["template", "hsn", CHART, "--kube-version", "1.36.2"];
        args.extend_from_slice(extra);
        h(&args)
    };

    ok(&h(&["lint", "--strict", CHART])?, "helm lint --strict")?;
    ok(&template(&[])?, "helm template")?;
    // A wrong value fails at install time with the schema's message.
    let bad = template(&["--set", "replicas=0"])?;
    let stderr = String::from_utf8_lossy(&bad.stderr);
    ensure!(
        !bad.status.success() && stderr.contains("/replicas") && stderr.contains("minimum"),
        "{stderr}"
    );
    let bad = template(&["--set", "image.pullPolicy=Sometimes"])?;
    ensure!(
        !bad.status.success(),
        "an unknown pullPolicy must be refused"
    );

    // The namespace warns on anything the "restricted" Pod Security Standard forbids.
    let namespaces: Api<Namespace> = Api::all(cp.client());
    let ns = json!({"metadata": {"name": NS, "labels": {
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/enforce": "restricted"}}});
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(ns)?)
        .await?;

    // Release "y": YAML 1.1 reads a bare y as a boolean, so every value in the chart's
    // metadata must be quoted.
    let stderr = ok(&h(&["install", "y", CHART, "-n", NS])?, "helm install")?;
    ensure!(
        !stderr.contains("PodSecurity"),
        "the operator pod must meet the restricted standard:\n{stderr}"
    );
    let crds: Api<CustomResourceDefinition> = Api::all(cp.client());
    for crd in [
        "mecclusters.hsn.io",
        "hsnnetworks.hsn.io",
        "hsnnodes.hsn.io",
    ] {
        ensure!(crds.get_opt(crd).await?.is_some(), "CRD {crd} installed");
    }
    let deployments: Api<Deployment> = Api::namespaced(cp.client(), NS);
    let d = deployments.get("y-operator").await?;
    ensure!(
        d.spec.unwrap().replicas == Some(2),
        "two replicas by default"
    );
    ensure!(
        Api::<ServiceAccount>::namespaced(cp.client(), NS)
            .get_opt("y-operator")
            .await?
            .is_some()
    );
    let roles: Api<ClusterRole> = Api::all(cp.client());
    let rules = roles.get("y-operator").await?.rules.unwrap_or_default();
    ensure!(
        rules.iter().all(|r| !r.verbs.iter().any(|v| v == "*")
            && !r.resources.iter().flatten().any(|x| x == "*")),
        "no wildcard permissions"
    );

    ok(
        &h(&["upgrade", "y", CHART, "-n", NS, "--set", "replicas=3"])?,
        "helm upgrade",
    )?;
    let d = deployments.get("y-operator").await?;
    ensure!(
        d.spec.unwrap().replicas == Some(3),
        "the upgrade changed the replicas"
    );

    ok(&h(&["uninstall", "y", "-n", NS])?, "helm uninstall")?;
    wait_for("the operator's objects removed", DEADLINE, || async {
        let gone = deployments.get_opt("y-operator").await.ok()?.is_none()
            && roles.get_opt("y-operator").await.ok()?.is_none();
        gone.then_some(())
    })
    .await?;
    // Helm never deletes CRDs from a chart's crds/ (it would delete every network).
    ensure!(
        crds.get_opt("hsnnetworks.hsn.io").await?.is_some(),
        "CRDs stay, per Helm's rules"
    );
    Ok(())
}
