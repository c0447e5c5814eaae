//! The agents' Role, as the operator writes it into a member, judged by a real
//! kube-apiserver's RBAC authorizer (SubjectAccessReview): it may read its routes ConfigMap
//! and its own namespace object (what an agent checks at shutdown to tell an uninstall from a
//! restart), and nothing beyond.

mod support;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, ensure};
use hsn_api::HsnNetwork;
use hsn_operator::plan::{ClusterPlan, Plan};
use hsn_operator::resources::{AGENT_IDENTITY, Peers, ROUTES_CONFIGMAP, member_objects};
use hsn_testkit::ControlPlane;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

const CORE: &str = "";

/// Whether the agents' ServiceAccount in `ns` may `verb` the `resource` named `name`.
async fn allowed(
    client: &Client,
    ns: &str,
    verb: &str,
    (group, resource): (&str, &str),
    in_ns: Option<&str>,
    name: Option<&str>,
) -> Result<bool> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{ns}:{AGENT_IDENTITY}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                namespace: in_ns.map(Into::into),
                name: name.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.context("no status")?.allowed)
}

const NAMESPACES: (&str, &str) = (CORE, "namespaces");
const CONFIGMAPS: (&str, &str) = (CORE, "configmaps");
const LEASES: (&str, &str) = ("coordination.k8s.io", "leases");

#[tokio::test]
async fn agents_may_read_their_routes_and_namespace_and_nothing_more() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let client = cp.client();
    let network: HsnNetwork = serde_json::from_value(serde_json::json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": "metro", "namespace": "edge-net", "uid": "0000-1111"},
        "spec": {
            "superNodes": {"replicas": 1, "image": "agent:1"},
            "edgePools": [{"name": "bb", "sliceType": "eMBB"}],
            "metering": {"tenants": [{"name": "acme", "id": 1, "prefixes": ["10.20.0.0/16"]}]}
        }
    }))?;
    let plan = Plan {
        clusters: BTreeMap::from([(
            "m1".to_string(),
            ClusterPlan {
                super_replicas: 1,
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    // The member's namespace and the agents' identity, applied as the operator applies them.
    let objects = member_objects(&network, "m1", &plan, &Peers::new());
    let mut ns = None;
    for d in objects.iter().filter(|d| {
        ["Namespace", "ServiceAccount", "Role", "RoleBinding"].contains(&d.resource.kind.as_str())
    }) {
        d.apply(&client)
            .await
            .with_context(|| format!("applying {} {}", d.resource.kind, d.name))?;
        if d.resource.kind == "Namespace" {
            ns = Some(d.name.clone());
        }
    }
    let ns = ns.context("no Namespace among the desired objects")?;

    // A request for the namespace object `x` (GET /api/v1/namespaces/x) is authorized as a
    // request in namespace `x` (the API server's RequestInfo), so a Role in `x` can grant it;
    // the reviews below spell that out.
    let checks = [
        (
            "get",
            NAMESPACES,
            Some(ns.as_str()),
            Some(ns.as_str()),
            true,
        ),
        (
            "get",
            CONFIGMAPS,
            Some(ns.as_str()),
            Some(ROUTES_CONFIGMAP),
            true,
        ),
        ("create", LEASES, Some(ns.as_str()), None, true),
        (
            "get",
            NAMESPACES,
            Some("kube-system"),
            Some("kube-system"),
            false,
        ),
        ("list", NAMESPACES, None, None, false),
        (
            "delete",
            NAMESPACES,
            Some(ns.as_str()),
            Some(ns.as_str()),
            false,
        ),
        ("get", CONFIGMAPS, Some(ns.as_str()), Some("other"), false),
        (
            "get",
            (CORE, "secrets"),
            Some(ns.as_str()),
            Some("any"),
            false,
        ),
    ];
    for (verb, resource, in_ns, name, want) in checks {
        let got = allowed(&client, &ns, verb, resource, in_ns, name).await?;
        ensure!(
            got == want,
            "{verb} {resource:?} {in_ns:?}/{name:?}: allowed = {got}, expected {want}"
        );
    }
    Ok(())
}
