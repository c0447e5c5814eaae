//! The Helm chart on a real API server: lint, schema, install (the operator's objects
//! appear, within the "restricted" Pod Security Standard), upgrade, uninstall.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result, ensure};
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

/// Whether service account `user` may `verb` `resource` of `group` in `namespace` (cluster
/// scope when `None`; `namespace/name` for one object), as the API server's authorizer
/// answers a SubjectAccessReview.
async fn may(
    admin: &kube::Client,
    user: &str,
    verb: &str,
    (group, resource): (&str, &str),
    namespace: Option<&str>,
) -> Result<bool> {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let namespace_of_sa = user.split(':').nth(2).unwrap_or_default();
    let (namespace, name) = match namespace.and_then(|n| n.split_once('/')) {
        Some((namespace, name)) => (Some(namespace), Some(name)),
        None => (namespace, None),
    };
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{namespace_of_sa}"), "system:authenticated"],
            "resourceAttributes": {
                "verb": verb, "group": group, "resource": resource, "namespace": namespace,
                "name": name,
            }
        }
    }))?;
    let answer = Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// The operator's RBAC in the hub is what it needs and no more: no workload, namespace or
/// RBAC anywhere unless `localCluster.enabled`; networks only in `watchNamespace` when set.
/// A member install (`mode: member`) gives the hub's identity exactly the member rules.
#[tokio::test]
async fn the_operators_rbac_is_least_privilege() -> Result<()> {
    hsn_testkit::require_binaries(&["helm"])?;
    let cp = ControlPlane::start().await?;
    let home = tempfile::tempdir()?;
    let h = |args: &[&str]| helm(&cp, home.path(), args);
    let admin = cp.client();
    let operator = "system:serviceaccount:hsn-system:y-operator";
    ok(
        &h(&["install", "y", CHART, "-n", NS, "--create-namespace"])?,
        "helm install",
    )?;

    // Not a member: nothing of a member's objects, anywhere.
    for (verb, resource, namespace) in [
        ("create", ("apps", "daemonsets"), Some("kube-system")),
        ("create", ("apps", "statefulsets"), Some("hsn-metro")),
        ("create", ("", "namespaces"), None),
        ("delete", ("", "namespaces"), None),
        (
            "create",
            ("rbac.authorization.k8s.io", "rolebindings"),
            Some("kube-system"),
        ),
        (
            "update",
            ("coordination.k8s.io", "leases"),
            Some("kube-system"),
        ),
        ("get", ("", "secrets"), Some("kube-system")),
        ("list", ("", "pods"), Some("kube-system")),
    ] {
        ensure!(
            !may(&admin, operator, verb, resource, namespace).await?,
            "the operator must not {verb} {resource:?} in {namespace:?} when the hub is not a member"
        );
    }
    // What it does need.
    for (verb, resource, namespace) in [
        ("patch", ("hsn.io", "mecclusters/status"), None),
        ("watch", ("hsn.io", "hsnnetworks"), Some("any")),
        ("create", ("hsn.io", "hsnnodes"), Some("any")),
        ("get", ("", "secrets"), Some(NS)),
        // Each network's chain Secret (genesis, administrator key) in its own namespace.
        ("create", ("", "secrets"), Some(NS)),
        ("patch", ("", "secrets"), Some(NS)),
        ("delete", ("", "secrets"), Some(NS)),
        ("create", ("events.k8s.io", "events"), Some("default")),
        (
            "update",
            ("coordination.k8s.io", "leases"),
            Some("hsn-system/hsn-operator"),
        ),
    ] {
        ensure!(
            may(&admin, operator, verb, resource, namespace).await?,
            "the operator needs to {verb} {resource:?} in {namespace:?}"
        );
    }
    // The real request, as the operator: refused by the API server.
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(cp.kubeconfig())?,
        &Default::default(),
    )
    .await?;
    config.auth_info.impersonate = Some(operator.to_owned());
    let as_operator = kube::Client::try_from(config)?;
    let ds: k8s_openapi::api::apps::v1::DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "x"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))?;
    let refused =
        Api::<k8s_openapi::api::apps::v1::DaemonSet>::namespaced(as_operator, "kube-system")
            .create(&PostParams::default(), &ds)
            .await;
    ensure!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 403),
        "a DaemonSet in kube-system must be forbidden: {refused:?}"
    );

    // The hub as a member: the member rules, and still no Secrets outside the release.
    ok(
        &h(&[
            "upgrade",
            "y",
            CHART,
            "-n",
            NS,
            "--set",
            "localCluster.enabled=true",
        ])?,
        "helm upgrade (localCluster)",
    )?;
    ensure!(
        may(
            &admin,
            operator,
            "create",
            ("apps", "daemonsets"),
            Some("hsn-metro")
        )
        .await?
    );
    ensure!(may(&admin, operator, "create", ("", "namespaces"), None).await?);
    ensure!(
        !may(
            &admin,
            operator,
            "get",
            ("", "secrets"),
            Some("kube-system")
        )
        .await?
    );

    // watchNamespace: networks in that namespace only.
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "nets"}}))?,
        )
        .await?;
    ok(
        &h(&[
            "upgrade",
            "y",
            CHART,
            "-n",
            NS,
            "--set",
            "operator.watchNamespace=nets",
        ])?,
        "helm upgrade (watchNamespace)",
    )?;
    let patch = ("hsn.io", "hsnnetworks");
    ensure!(may(&admin, operator, "patch", patch, Some("nets")).await?);
    ensure!(!may(&admin, operator, "patch", patch, Some("other")).await?);
    ensure!(
        !may(
            &admin,
            operator,
            "create",
            ("hsn.io", "hsnnodes"),
            Some("other")
        )
        .await?
    );
    // Reads stay cluster-wide: clusters' capacity and nodes are shared by every network.
    ensure!(
        may(
            &admin,
            operator,
            "list",
            ("hsn.io", "hsnnodes"),
            Some("other")
        )
        .await?
    );
    ensure!(!may(&admin, operator, "create", ("", "namespaces"), None).await?);

    // A member install: the hub's identity there may write a network's objects, and nothing
    // of HSN's API, Secrets or Deployments.
    ok(
        &h(&[
            "install",
            "m",
            CHART,
            "-n",
            "hsn-member",
            "--create-namespace",
            "--set",
            "mode=member",
        ])?,
        "helm install (member)",
    )?;
    let hub = "system:serviceaccount:hsn-member:m-hub-access";
    // (verb, resource, namespace, allowed) for the hub's identity in the member.
    for (verb, resource, namespace, allowed) in [
        ("create", ("apps", "daemonsets"), Some("hsn-metro"), true),
        (
            "update",
            ("coordination.k8s.io", "leases"),
            Some("hsn-metro"),
            true,
        ),
        ("list", ("", "pods"), Some("hsn-metro"), true),
        // Why a super node's claim is not bound: its claims and the class they name.
        (
            "list",
            ("", "persistentvolumeclaims"),
            Some("hsn-metro"),
            true,
        ),
        ("get", ("storage.k8s.io", "storageclasses"), None, true),
        (
            "delete",
            ("", "persistentvolumeclaims"),
            Some("hsn-metro"),
            false,
        ),
        ("get", ("", "secrets"), Some("kube-system"), false),
        (
            "create",
            ("apps", "deployments"),
            Some("kube-system"),
            false,
        ),
        ("patch", ("hsn.io", "hsnnetworks"), Some("any"), false),
    ] {
        ensure!(
            may(&admin, hub, verb, resource, namespace).await? == allowed,
            "the hub's identity in a member: {verb} {resource:?} in {namespace:?} should be \
             {}",
            if allowed { "allowed" } else { "refused" }
        );
    }
    ensure!(
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(admin.clone(), "hsn-member")
            .list(&Default::default())
            .await?
            .items
            .is_empty(),
        "a member install runs no operator"
    );
    Ok(())
}

/// The operator does its whole job with the chart's RBAC and nothing more: run as the
/// chart's ServiceAccount (impersonated), with the hub as its only member (`local: true`,
/// `localCluster.enabled`), it wins the leader Lease, probes, plans and writes every object
/// of a network into the hub (granting the agents' Roles what it holds itself), writes
/// statuses and Events, and never meets a Forbidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_works_with_the_charts_rbac_alone() -> Result<()> {
    use hsn_testkit::operator::{Operator, as_service_account, hand_made_ready_node};
    hsn_testkit::require_binaries(&["helm"])?;
    let cp = ControlPlane::start().await?;
    let home = tempfile::tempdir()?;
    let admin = cp.client();
    let install = [
        "install",
        "y",
        CHART,
        "-n",
        NS,
        "--create-namespace",
        "--set",
        "localCluster.enabled=true",
    ];
    ok(&helm(&cp, home.path(), &install)?, "helm install")?;
    hand_made_ready_node(&admin, "hub-node-1").await?;

    // The admin kubeconfig, impersonating the chart's ServiceAccount.
    let path = home.path().join("as-operator.kubeconfig");
    as_service_account(cp.kubeconfig(), "hsn-system", "y-operator", &path)?;
    let operator = Operator::start(&path, home.path(), &[], &[]).await?;

    let objects = r#"{"apiVersion": "hsn.io/v1alpha1", "kind": "MecCluster",
        "metadata": {"name": "hub"}, "spec": {"local": true, "region": "hub", "zone": "hub-1a"}}"#;
    let mec: hsn_api::MecCluster = serde_json::from_str(objects)?;
    Api::<hsn_api::MecCluster>::all(admin.clone())
        .create(&PostParams::default(), &mec)
        .await?;
    let network: hsn_api::HsnNetwork = serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": "metro", "namespace": "default"},
        "spec": {"superNodes": {"replicas": 1},
                 "edgePools": [{"name": "edge", "sliceType": "eMBB",
                    "nodeSelector": {"matchLabels": {"hsn.io/edge": "true"}}}]}
    }))?;
    Api::<hsn_api::HsnNetwork>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &network)
        .await?;

    // Everything of the network lands in the hub, written by the operator as its SA.
    let daemonsets: Api<k8s_openapi::api::apps::v1::DaemonSet> =
        Api::namespaced(admin.clone(), "hsn-metro");
    let statefulsets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(admin.clone(), "hsn-metro");
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(admin.clone(), "hsn-metro");
    let written = wait_for("the network's objects in the hub", DEADLINE, || async {
        let ds = daemonsets.get_opt("hsn-edge-edge").await.ok()??;
        let sts = statefulsets.get_opt("hsn-super-node").await.ok()??;
        let lease = leases.get_opt("edge-hub-node-1").await.ok()??;
        Some((ds, sts, lease))
    })
    .await;
    let log = std::fs::read_to_string(operator.log_path()).unwrap_or_default();
    written.with_context(|| format!("operator log:\n{}", operator.log_tail()))?;
    // Statuses: the cluster's and the network's, written by the same identity.
    wait_for("statuses written", DEADLINE, || async {
        let mec = Api::<hsn_api::MecCluster>::all(admin.clone())
            .get("hub")
            .await
            .ok()?;
        let net = Api::<hsn_api::HsnNetwork>::namespaced(admin.clone(), "default")
            .get("metro")
            .await
            .ok()?;
        (mec.status?.identity.is_some() && net.status?.observed_generation.is_some()).then_some(())
    })
    .await?;
    let log = std::fs::read_to_string(operator.log_path()).unwrap_or(log);
    ensure!(
        !log.contains("forbidden") && !log.contains("Forbidden"),
        "the operator met a Forbidden with the chart's RBAC:\n{}",
        operator.log_tail()
    );
    Ok(())
}
