//! The agents' Role, as the operator writes it into a member, judged by a real
//! kube-apiserver's RBAC authorizer (SubjectAccessReview): it may read its routes ConfigMap
//! and its own namespace object (what an agent checks at shutdown to tell an uninstall from a
//! restart), and nothing beyond.

use anyhow::{Context as _, Result, ensure};
use hsn_api::HsnNetwork;
use hsn_api::routes::ROUTES_CONFIGMAP;
use hsn_testkit::ControlPlane;
use hsn_testkit::operator::{AGENT_IDENTITY, apply_member_objects};
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
    // The member's namespace and the agents' identity, applied as the operator applies them.
    let kinds = ["Namespace", "ServiceAccount", "Role", "RoleBinding"];
    let ns = apply_member_objects(&client, &network, &kinds).await?;

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
