//! The agents' identity: a ServiceAccount that may read its routes and its namespace and
//! write Leases, in its own namespace only.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::{AGENT_IDENTITY, MemberObject, ROUTES_CONFIGMAP, Renderer};

/// ServiceAccount, Role and RoleBinding of the agents.
pub(super) fn objects(render: &Renderer<'_>) -> Vec<MemberObject> {
    let account = ServiceAccount {
        metadata: render.meta(AGENT_IDENTITY),
        automount_service_account_token: Some(true),
        ..Default::default()
    };
    let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    let role = Role {
        metadata: render.meta(AGENT_IDENTITY),
        rules: Some(vec![
            // Read the routes table, and nothing else of the cluster.
            PolicyRule {
                api_groups: strings(&[""]),
                resources: strings(&["configmaps"]),
                resource_names: strings(&[ROUTES_CONFIGMAP]),
                verbs: vec!["get".into(), "list".into(), "watch".into()],
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
                verbs: vec!["get".into()],
                ..Default::default()
            },
            // Each agent creates and renews its Lease. RBAC cannot scope `create` to a
            // name, so the namespace is the boundary: it holds only this network's agents.
            PolicyRule {
                api_groups: strings(&["coordination.k8s.io"]),
                resources: strings(&["leases"]),
                verbs: vec![
                    "create".into(),
                    "get".into(),
                    "update".into(),
                    "patch".into(),
                ],
                ..Default::default()
            },
        ]),
    };
    let binding = RoleBinding {
        metadata: render.meta(AGENT_IDENTITY),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: AGENT_IDENTITY.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: AGENT_IDENTITY.into(),
            namespace: Some(render.namespace.clone()),
            ..Default::default()
        }]),
    };
    vec![
        render.object(&account),
        render.object(&role),
        render.object(&binding),
    ]
}
