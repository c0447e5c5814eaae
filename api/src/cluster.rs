//! `MecCluster`: a Kubernetes cluster at an edge site that may host HSN workloads.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Condition};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Node label (value `true`) that marks a node of a member cluster as able to run edge
/// agents: counted in a MecCluster's status, what edge pools usually select, and what
/// super nodes prefer to avoid.
pub const EDGE_CAPABLE_LABEL: &str = "hsn.io/edge";

/// Where HSN workloads may run: either the hub cluster itself (`local: true`) or a member
/// cluster reached through a kubeconfig stored in a Secret.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hsn.io",
    version = "v1alpha1",
    kind = "MecCluster",
    plural = "mecclusters",
    shortname = "mec",
    status = "MecClusterStatus",
    derive = "PartialEq",
    doc = "A Kubernetes cluster at a mobile-edge (MEC) site where HSN super and edge nodes may be placed.",
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region"),
    printcolumn(name = "Zone", type_ = "string", json_path = ".spec.zone"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Nodes",
        type_ = "integer",
        json_path = ".status.nodes.ready",
        description = "Ready nodes"
    ),
    printcolumn(
        name = "Edge-Capable",
        type_ = "integer",
        json_path = ".status.nodes.edgeCapable",
        priority = 1
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.kubernetesVersion"
    ),
    printcolumn(name = "Cordoned", type_ = "boolean", json_path = ".spec.cordoned"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.local) && self.local) != has(self.kubeconfigSecretRef)")
    .message("set exactly one of spec.local: true (the hub cluster itself) and spec.kubeconfigSecretRef (a member cluster)"))]
pub struct MecClusterSpec {
    /// True when this entry is the hub cluster the operator runs in. Exactly one of `local`
    /// and `kubeconfigSecretRef` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<bool>,
    /// The Secret holding a kubeconfig for this member cluster. Exactly one of `local` and
    /// `kubeconfigSecretRef` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret_ref: Option<KubeconfigSecretRef>,
    /// Region of the site, e.g. `eu-west`. Used for placement spread and edge-to-super locality.
    /// Immutable: a cluster does not move.
    #[schemars(length(min = 1, max = 63), regex(pattern = crate::DNS_LABEL))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("region is immutable: a cluster does not move; create a new MecCluster instead"))]
    pub region: String,
    /// Zone of the site within its region, e.g. `eu-west-1a`. Nodes without a
    /// `topology.kubernetes.io/zone` label are taken to be in this zone. Immutable.
    #[schemars(length(min = 1, max = 63), regex(pattern = crate::DNS_LABEL))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("zone is immutable: a cluster does not move; create a new MecCluster instead"))]
    pub zone: String,
    /// Geographic position of the site, for people and maps; placement does not use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoLocation>,
    /// Upper bounds on what HSN may place here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityHints>,
    /// A cordoned cluster keeps its running agents but receives no new super nodes or edge
    /// nodes, whatever the networks' selectors (an empty one included); edges already
    /// assigned stay.
    #[serde(default)]
    pub cordoned: bool,
}

/// A key in a Secret that holds a kubeconfig.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KubeconfigSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret; defaults to the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = crate::DNS_LABEL))]
    pub namespace: Option<String>,
    /// Key within the Secret's data that holds the kubeconfig.
    #[serde(default = "default_kubeconfig_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_kubeconfig_key() -> String {
    "kubeconfig".into()
}

/// Latitude and longitude in decimal degrees.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GeoLocation {
    /// Latitude, -90 to 90.
    #[schemars(range(min = -90.0, max = 90.0))]
    pub latitude: f64,
    /// Longitude, -180 to 180.
    #[schemars(range(min = -180.0, max = 180.0))]
    pub longitude: f64,
}

/// Capacity hints that bound placement on a cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CapacityHints {
    /// Most super nodes this cluster may host, across all networks (older networks' count
    /// first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_super_nodes: Option<i32>,
    /// Most edge nodes this cluster may host, across all networks (older networks' count
    /// first; a network keeps the edges it has before taking new ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub max_edge_nodes: Option<i32>,
}

/// What the operator last observed of the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MecClusterStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Reachable` (the API server answers) and `Ready` (reachable within the grace period
    /// and has ready nodes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::condition::schema")]
    pub conditions: Vec<Condition>,
    /// Kubernetes version reported by the cluster, e.g. `v1.36.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Node counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeCounts>,
    /// Allocatable resources summed over ready nodes, e.g. `cpu`, `memory`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, Quantity>,
    /// Round-trip time of the last probe, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_latency_ms: Option<i64>,
    /// Which cluster the last successful probe reached. Two MecClusters that reach the same
    /// cluster (two Secrets for one member, or a Secret pointing at the hub next to
    /// `local: true`) are one cluster: the older keeps it, the other is `DuplicateCluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ClusterIdentity>,
}

/// What identifies a Kubernetes cluster whatever address, name or credential reaches it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIdentity {
    /// UID of the cluster's `kube-system` namespace, which lives as long as the cluster.
    pub kube_system_uid: String,
}

hsn_core::words! {
    /// Reasons of a MecCluster's `Reachable` and `Ready` conditions. `Ready=False` of a
    /// cluster that cannot be reached carries the `Reachable` reason.
    pub enum MecClusterReason: "MecCluster reason" {
        /// The probe got an answer.
        ProbeSucceeded,
        /// The probe got an error.
        ProbeFailed,
        /// The probe got no answer in time.
        ProbeTimedOut,
        /// Probes fail, for less than the grace period: still Ready.
        ProbeFailing,
        /// Reachable, with a ready node.
        ClusterReady,
        /// Reachable, without a ready node.
        NoReadyNodes,
        /// The MecCluster names neither `local` nor a Secret.
        NoAccess,
        /// The kubeconfig Secret does not exist.
        SecretNotFound,
        /// Reading the kubeconfig Secret failed.
        SecretUnreadable,
        /// The kubeconfig Secret lacks its key.
        SecretKeyMissing,
        /// The kubeconfig does not parse or cannot make a client.
        KubeconfigInvalid,
        /// The kubeconfig is not self-contained: it would make the operator run a program,
        /// read a file of its own, or send the credentials elsewhere; the message names the
        /// field and its entry.
        KubeconfigRefused,
        /// Another, older MecCluster (by creation time, then name) already stands for the
        /// same cluster (`status.identity`): this one is never used.
        DuplicateCluster,
    }
}

/// Node counts of a member cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeCounts {
    /// All nodes.
    pub total: i32,
    /// Nodes whose Ready condition is True.
    pub ready: i32,
    /// Ready nodes labelled as able to run edge agents.
    pub edge_capable: i32,
}
