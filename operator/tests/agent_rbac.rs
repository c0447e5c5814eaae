//! The agents' identities, as the operator writes them into a member (a ServiceAccount, Role
//! and RoleBinding per role, and the Leases the plan wants), judged by a real kube-apiserver:
//! first its RBAC authorizer (SubjectAccessReview) over a table of requests, then real
//! requests made as each role's ServiceAccount (impersonated). Each role may read its routes
//! ConfigMap and its own namespace object, and renew the Leases of its own role by name;
//! nothing creates a Lease, and no role writes the other's.

use anyhow::{Context as _, Result, ensure};
use hsn_api::HsnNetwork;
use hsn_api::node::lease::{edge_lease, super_lease};
use hsn_api::routes::{LEDGER_CONFIGMAP, ROUTES_CONFIGMAP};
use hsn_core::Role;
use hsn_testkit::ControlPlane;
use hsn_testkit::operator::{EDGE_NODE, agent_identity, apply_member_objects};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const CORE: &str = "";
const NAMESPACES: (&str, &str) = (CORE, "namespaces");
const CONFIGMAPS: (&str, &str) = (CORE, "configmaps");
const LEASES: (&str, &str) = ("coordination.k8s.io", "leases");

fn network() -> Result<HsnNetwork> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": "metro", "namespace": "edge-net", "uid": "0000-1111"},
        "spec": {
            "superNodes": {"replicas": 1, "image": "agent:1"},
            "edgePools": [{"name": "bb", "sliceType": "eMBB"}],
            "metering": {"tenants": [{"name": "acme", "id": 1, "prefixes": ["10.20.0.0/16"]}]}
        }
    }))?)
}

/// The user and groups of `role`'s ServiceAccount in `ns`.
fn account(ns: &str, role: Role) -> (String, Vec<String>) {
    (
        format!("system:serviceaccount:{ns}:{}", agent_identity(role)),
        vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
    )
}

/// Whether `role`'s ServiceAccount in `ns` may `verb` the `resource` named `name`.
async fn allowed(
    client: &Client,
    (ns, role): (&str, Role),
    verb: &str,
    (group, resource): (&str, &str),
    in_ns: Option<&str>,
    name: Option<&str>,
) -> Result<bool> {
    let (user, groups) = account(ns, role);
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user),
            groups: Some(groups),
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

#[tokio::test]
async fn each_role_may_read_its_routes_and_namespace_and_renew_only_its_own_leases() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let client = cp.client();
    // The member's namespace, the agents' identities and Leases, applied as the operator
    // applies them.
    let kinds = [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Lease",
    ];
    let ns = apply_member_objects(&client, &network()?, &kinds).await?;
    let (edge, sup) = (edge_lease(EDGE_NODE), super_lease(0));
    let ns = ns.as_str();

    // A request for the namespace object `x` (GET /api/v1/namespaces/x) is authorized as a
    // request in namespace `x` (the API server's RequestInfo), so a Role in `x` can grant it;
    // the reviews below spell that out.
    let both = [
        ("get", NAMESPACES, Some(ns), Some(ns), true),
        ("get", CONFIGMAPS, Some(ns), Some(ROUTES_CONFIGMAP), true),
        ("watch", CONFIGMAPS, Some(ns), Some(ROUTES_CONFIGMAP), true),
        (
            "get",
            NAMESPACES,
            Some("kube-system"),
            Some("kube-system"),
            false,
        ),
        ("list", NAMESPACES, None, None, false),
        ("delete", NAMESPACES, Some(ns), Some(ns), false),
        ("get", CONFIGMAPS, Some(ns), Some("other"), false),
        ("get", (CORE, "secrets"), Some(ns), Some("any"), false),
        ("list", (CORE, "pods"), Some(ns), None, false),
        // No Lease is ever created by an agent, named or not; none is listed or deleted.
        ("create", LEASES, Some(ns), None, false),
        ("create", LEASES, Some(ns), Some(edge.as_str()), false),
        ("create", LEASES, Some(ns), Some(sup.as_str()), false),
        ("list", LEASES, Some(ns), None, false),
        ("delete", LEASES, Some(ns), Some(edge.as_str()), false),
        ("update", LEASES, Some(ns), Some("hsn-operator"), false),
    ];
    let own = |role: Role, lease: &str, mine: bool| {
        ["get", "update", "patch"].map(|verb| (role, verb, lease.to_owned(), mine))
    };
    let leases = [
        own(Role::Edge, &edge, true),
        own(Role::Edge, &sup, false),
        own(Role::Super, &sup, true),
        own(Role::Super, &edge, false),
    ];
    for role in [Role::Edge, Role::Super] {
        for (verb, resource, in_ns, name, want) in both {
            let got = allowed(&client, (ns, role), verb, resource, in_ns, name).await?;
            ensure!(
                got == want,
                "{role}: {verb} {resource:?} {in_ns:?}/{name:?}: allowed = {got}, expected {want}"
            );
        }
    }
    // The ledger ConfigMap (registry changes for the super's ledger): supers only, and
    // read only.
    let ledger = [
        (Role::Super, "get", true),
        (Role::Super, "watch", true),
        (Role::Super, "update", false),
        (Role::Edge, "get", false),
        (Role::Edge, "watch", false),
    ];
    for (role, verb, want) in ledger {
        let got = allowed(
            &client,
            (ns, role),
            verb,
            CONFIGMAPS,
            Some(ns),
            Some(LEDGER_CONFIGMAP),
        )
        .await?;
        ensure!(
            got == want,
            "{role}: {verb} ConfigMap {LEDGER_CONFIGMAP}: allowed = {got}, expected {want}"
        );
    }
    for (role, verb, lease, want) in leases.iter().flatten() {
        let got = allowed(&client, (ns, *role), verb, LEASES, Some(ns), Some(lease)).await?;
        ensure!(
            got == *want,
            "{role}: {verb} Lease {lease}: allowed = {got}, expected {want}"
        );
    }
    Ok(())
}

/// A client acting as `role`'s ServiceAccount in `ns` (the admin impersonating it), so that
/// every request below goes through authentication, RBAC and admission as the agent's would.
async fn as_agent(cp: &ControlPlane, ns: &str, role: Role) -> Result<Client> {
    Ok(cp
        .client_as_service_account(ns, agent_identity(role))
        .await?)
}

/// The API server's answer to a request that must be refused: its HTTP code.
fn refused<T>(result: Result<T, kube::Error>) -> Option<u16> {
    match result {
        Err(kube::Error::Api(s)) => Some(s.code),
        _ => None,
    }
}

#[tokio::test]
async fn an_edges_token_cannot_create_leases_or_write_a_super_nodes() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let kinds = [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Lease",
    ];
    let ns = apply_member_objects(&cp.client(), &network()?, &kinds).await?;
    let (edge, sup) = (edge_lease(EDGE_NODE), super_lease(0));
    let edge_leases: Api<Lease> = Api::namespaced(as_agent(&cp, &ns, Role::Edge).await?, &ns);
    let super_leases: Api<Lease> = Api::namespaced(as_agent(&cp, &ns, Role::Super).await?, &ns);
    let renewal = |holder: &str| {
        Patch::Merge(json!({"spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}}))
    };
    let params = PatchParams::default();

    // Each renews its own Lease, as the agent does.
    edge_leases
        .patch(&edge, &params, &renewal("hsn-edge-bb-x1"))
        .await
        .context("the edge renews its own Lease")?;
    super_leases
        .patch(&sup, &params, &renewal("hsn-super-node-0"))
        .await
        .context("the super node renews its own Lease")?;

    // An edge's token: no new Lease (a create, or an apply that would create), and no
    // write to a super node's Lease by any verb.
    let new = |name: &str| Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: None,
    };
    let apply = PatchParams::apply("intruder").force();
    let mut taken = edge_leases.get(&edge).await?;
    taken.metadata.name = Some(sup.clone());
    let attempts = [
        (
            "create edge-n9",
            refused(
                edge_leases
                    .create(&PostParams::default(), &new("edge-n9"))
                    .await,
            ),
        ),
        (
            "apply (create) edge-n9",
            refused(
                edge_leases
                    .patch("edge-n9", &apply, &Patch::Apply(new("edge-n9")))
                    .await,
            ),
        ),
        (
            "create super-1",
            refused(
                edge_leases
                    .create(&PostParams::default(), &new("super-1"))
                    .await,
            ),
        ),
        (
            "merge-patch super-0",
            refused(
                edge_leases
                    .patch(&sup, &params, &renewal("hsn-edge-bb-x1"))
                    .await,
            ),
        ),
        (
            "apply super-0",
            refused(
                edge_leases
                    .patch(&sup, &apply, &Patch::Apply(new(&sup)))
                    .await,
            ),
        ),
        (
            "update super-0",
            refused(
                edge_leases
                    .replace(&sup, &PostParams::default(), &taken)
                    .await,
            ),
        ),
        ("get super-0", refused(edge_leases.get(&sup).await)),
        // And a super node's token cannot write an edge's.
        (
            "super: merge-patch edge-n1",
            refused(
                super_leases
                    .patch(&edge, &params, &renewal("hsn-super-node-0"))
                    .await,
            ),
        ),
        (
            "super: create super-1",
            refused(
                super_leases
                    .create(&PostParams::default(), &new("super-1"))
                    .await,
            ),
        ),
    ];
    for (what, code) in attempts {
        ensure!(
            code == Some(403),
            "{what}: expected 403 Forbidden, got {code:?}"
        );
    }
    // Nothing the refused requests named exists or changed.
    let admin: Api<Lease> = Api::namespaced(cp.client(), &ns);
    for name in ["edge-n9", "super-1"] {
        ensure!(admin.get_opt(name).await?.is_none(), "{name} was created");
    }
    let holder = admin.get(&sup).await?.spec.and_then(|s| s.holder_identity);
    ensure!(holder.as_deref() == Some("hsn-super-node-0"), "{holder:?}");

    // Its own Lease gone (the plan dropped it): the edge cannot bring it back, by name or
    // not; its renewal, a merge patch, finds it missing (what the agent waits on).
    admin.delete(&edge, &Default::default()).await?;
    let attempts = [
        (
            "create edge-n1",
            refused(
                edge_leases
                    .create(&PostParams::default(), &new(&edge))
                    .await,
            ),
            403,
        ),
        (
            "apply (create) edge-n1",
            refused(
                edge_leases
                    .patch(&edge, &apply, &Patch::Apply(new(&edge)))
                    .await,
            ),
            403,
        ),
        (
            "merge-patch edge-n1",
            refused(
                edge_leases
                    .patch(&edge, &params, &renewal("hsn-edge-bb-x1"))
                    .await,
            ),
            404,
        ),
    ];
    for (what, code, want) in attempts {
        ensure!(code == Some(want), "{what}: expected {want}, got {code:?}");
    }
    ensure!(
        admin.get_opt(&edge).await?.is_none(),
        "{edge} was re-created"
    );
    Ok(())
}
