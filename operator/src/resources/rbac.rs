//! The agents' identities and Leases: per role a ServiceAccount whose Role reads the routes
//! and the namespace and renews the Leases of that role by name, and the Leases themselves,
//! which the operator creates so that no agent ever needs `create`.

use hsn_api::node::lease;
use hsn_core::Role;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role as RbacRole, RoleBinding, RoleRef, Subject};

use super::{
    LEDGER_CONFIGMAP, MemberObject, ROLE_LABEL, ROUTES_CONFIGMAP, Renderer, agent_identity,
};
use crate::plan::ClusterPlan;

/// The Leases of `role`'s agents the plan puts on this cluster: `super-<n>` for each
/// ordinal, `edge-<node>` for each planned edge node; sorted.
pub(super) fn lease_names(part: &ClusterPlan, role: Role) -> Vec<String> {
    let mut names: Vec<String> = match role {
        Role::Super => (0..part.super_replicas).map(lease::super_lease).collect(),
        Role::Edge => part
            .edge_pools
            .values()
            .flatten()
            .map(|node| lease::edge_lease(node))
            .collect(),
    };
    names.sort();
    names.dedup();
    names
}

/// Per role with agents here: its ServiceAccount, Role and RoleBinding, then every Lease.
pub(super) fn objects(render: &Renderer<'_>, part: &ClusterPlan) -> Vec<MemberObject> {
    let mut identities = Vec::new();
    let mut leases = Vec::new();
    for role in [Role::Super, Role::Edge] {
        let names = lease_names(part, role);
        if names.is_empty() {
            continue;
        }
        identities.extend(identity(render, role, &names));
        leases.extend(names.iter().map(|name| {
            let mut metadata = render.meta(name);
            metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(ROLE_LABEL.into(), role.as_str().into());
            render.object(&Lease {
                metadata,
                spec: None,
            })
        }));
    }
    identities.extend(leases);
    identities
}

fn identity(render: &Renderer<'_>, role: Role, leases: &[String]) -> Vec<MemberObject> {
    let name = agent_identity(role);
    let account = ServiceAccount {
        metadata: render.meta(name),
        automount_service_account_token: Some(true),
        ..Default::default()
    };
    let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    let verbs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    let role_object = RbacRole {
        metadata: render.meta(name),
        rules: Some(vec![
            // Read the routes table (a super node also the ledger ConfigMap, for the
            // registry changes it hands its ledger), and nothing else of the cluster.
            PolicyRule {
                api_groups: strings(&[""]),
                resources: strings(&["configmaps"]),
                resource_names: strings(match role {
                    Role::Super => &[ROUTES_CONFIGMAP, LEDGER_CONFIGMAP],
                    Role::Edge => &[ROUTES_CONFIGMAP],
                }),
                verbs: verbs(&["get", "list", "watch"]),
                ..Default::default()
            },
            // An agent stopping reads its namespace: one being deleted means the network is
            // leaving this cluster, so the agent removes its XDP programs instead of leaving
            // them attached for a successor. (RBAC checks a namespace object against a Role
            // of that same namespace.)
            PolicyRule {
                api_groups: strings(&[""]),
                resources: strings(&["namespaces"]),
                resource_names: strings(&[&render.namespace]),
                verbs: verbs(&["get"]),
                ..Default::default()
            },
            // Renew the Leases of this role, by name; never create one (the operator does,
            // for the agents it places). `leases` is never empty: an empty resourceNames
            // would grant every Lease of the namespace.
            PolicyRule {
                api_groups: strings(&["coordination.k8s.io"]),
                resources: strings(&["leases"]),
                resource_names: Some(leases.to_vec()),
                verbs: verbs(&["get", "update", "patch"]),
                ..Default::default()
            },
        ]),
    };
    let binding = RoleBinding {
        metadata: render.meta(name),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(render.namespace.clone()),
            ..Default::default()
        }]),
    };
    vec![
        render.object(&account),
        render.object(&role_object),
        render.object(&binding),
    ]
}
