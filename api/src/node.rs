//! `HsnNode`: one agent of a network, written by the operator from its plan and the
//! agents' Leases in the member clusters.

use hsn_core::Role;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub mod lease;

/// The identity and placement of one agent.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hsn.io",
    version = "v1alpha1",
    kind = "HsnNode",
    plural = "hsnnodes",
    shortname = "hsnnode",
    namespaced,
    status = "HsnNodeStatus",
    derive = "PartialEq",
    doc = "One HSN agent (super or edge node). Owned by the operator; read it, do not edit it.",
    printcolumn(name = "Network", type_ = "string", json_path = ".spec.network"),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.role"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(name = "Node", type_ = "string", json_path = ".status.nodeName"),
    printcolumn(
        name = "Super",
        type_ = "string",
        json_path = ".spec.assignedSuperNode"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Heartbeat",
        type_ = "date",
        json_path = ".status.lastHeartbeat",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.role == 'Edge' || !has(self.assignedSuperNode)")
    .message("only edge nodes have an assigned super node"))]
#[x_kube(validation = Rule::new("self.role == 'Edge' ? has(self.nodeName) && !has(self.ordinal) : has(self.ordinal) && !has(self.nodeName)")
    .message("an edge node names its nodeName and no ordinal; a super node names its ordinal and no nodeName"))]
pub struct HsnNodeSpec {
    /// The HsnNetwork this agent belongs to, in the same namespace. Immutable.
    #[schemars(length(min = 1, max = 40), regex(pattern = crate::DNS_LABEL))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("network is immutable"))]
    pub network: String,
    /// Whether the agent is a super node or an edge node. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("role is immutable"))]
    #[serde(with = "api_role")]
    #[schemars(schema_with = "api_role::schema")]
    pub role: Role,
    /// The MecCluster the agent runs in. Immutable.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("cluster is immutable"))]
    pub cluster: String,
    /// For an edge node: the Kubernetes node it runs on, in that cluster. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("nodeName is immutable"))]
    pub node_name: Option<String>,
    /// For a super node: its ordinal in the cluster's super-node StatefulSet. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("ordinal is immutable"))]
    pub ordinal: Option<i32>,
    /// For an edge node: the HsnNode name of the super node that guarantees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub assigned_super_node: Option<String>,
}

impl HsnNode {
    /// Whether the network of UID `network_uid` controls this HsnNode (its controller owner
    /// reference): the operator created it. Anything else claiming a network was made by
    /// hand, and its status (a public key) is no agent's.
    pub fn is_controlled_by(&self, network_uid: &str) -> bool {
        self.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.kind == "HsnNetwork" && o.uid == network_uid)
    }
}

/// `spec.role` in the API's spelling, `Super` or `Edge` (the vocabulary's text form is
/// lowercase; the API keeps the Kubernetes enum convention).
pub mod api_role {
    use hsn_core::Role;
    use schemars::{Schema, SchemaGenerator, json_schema};
    use serde::{Deserialize, Deserializer, Serializer};

    /// The API name of `role`.
    pub fn name(role: Role) -> &'static str {
        match role {
            Role::Super => "Super",
            Role::Edge => "Edge",
        }
    }

    /// Serializes as `Super` or `Edge`.
    pub fn serialize<S: Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name(*role))
    }

    /// Reads `Super` or `Edge`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let s = String::deserialize(d)?;
        [Role::Super, Role::Edge]
            .into_iter()
            .find(|r| name(*r) == s)
            .ok_or_else(|| serde::de::Error::unknown_variant(&s, &["Super", "Edge"]))
    }

    /// The schema: a string enum of the two names.
    pub fn schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "enum": ["Super", "Edge"]})
    }
}

/// What the agent last reported through its Lease.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HsnNodeStatus {
    /// `Ready`: the agent's Lease is current.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::condition::schema")]
    pub conditions: Vec<Condition>,
    /// The agent's ed25519 public key, hex; it signs the agent's metering records. Copied
    /// only from a Lease held by the pod the operator placed, and pinned to that pod
    /// (`agentPod`): the same pod announcing another key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The pod whose Lease the public key came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_pod: Option<AgentPod>,
    /// The Kubernetes node the agent runs on (for a super node, it may change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// When the agent last renewed its Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<Time>,
    /// The last metering epoch the agent closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_epoch: Option<i64>,
}

/// The pod an HsnNode's key came from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AgentPod {
    /// Pod name, in the network's namespace of the HsnNode's cluster.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Pod UID: a pod replaced under the same name (a StatefulSet's) is another pod.
    #[schemars(length(min = 1, max = 128))]
    pub uid: String,
}

hsn_core::words! {
    /// Reasons of an HsnNode's `Ready` condition: what its agent's Lease says.
    pub enum HsnNodeReason: "HsnNode reason" {
        /// The agent renews its Lease.
        LeaseCurrent,
        /// The agent stopped renewing its Lease (for a super node: it is no longer live).
        LeaseExpired,
        /// The agent has not written its Lease yet.
        NoLease,
        /// The Lease is not held by the pod the operator placed for it (another pod, a pod
        /// of another workload, node or ServiceAccount, or a pod since replaced): what it
        /// says is ignored for routes and keys.
        UntrustedLease,
        /// The pod that published this node's key now announces another one: refused, the
        /// Lease is ignored for routes and keys until a new pod holds it.
        KeyChanged,
    }
}
