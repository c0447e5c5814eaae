//! `HsnNetwork`: one network of super nodes and edge pools spread over MEC clusters.

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::selector::Selector;

/// Agent image used when a network does not name one.
pub const DEFAULT_AGENT_IMAGE: &str = "ghcr.io/hsn-io/hsn-agent:0.1.0";
/// The ledger image super nodes run unless `superNodes.ledgerImage` says otherwise
/// (`hsn-ledger node`: the ledger replica and its CometBFT node).
pub const DEFAULT_LEDGER_IMAGE: &str = "ghcr.io/hsn-io/hsn-ledger:0.1.0";

/// The desired shape of one HSN network.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hsn.io",
    version = "v1alpha1",
    kind = "HsnNetwork",
    plural = "hsnnetworks",
    shortname = "hsn",
    namespaced,
    status = "HsnNetworkStatus",
    derive = "PartialEq",
    doc = "A network of super nodes and edge nodes placed over MEC clusters, with per-tenant metering.",
    validation = Rule::new("size(self.metadata.name) <= 40")
        .message("network name must be at most 40 characters: it prefixes namespaces and objects in every member cluster"),
    validation = Rule::new("self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
        .message("network name must be a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit; no '.'): it names the namespace hsn-<name> in every member cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Super-Desired", type_ = "integer", json_path = ".status.superNodes.desired"),
    printcolumn(name = "Super-Ready", type_ = "integer", json_path = ".status.superNodes.ready"),
    printcolumn(name = "Edge-Desired", type_ = "integer", json_path = ".status.edgeNodes.desired"),
    printcolumn(name = "Edge-Ready", type_ = "integer", json_path = ".status.edgeNodes.ready"),
    printcolumn(name = "Clusters", type_ = "integer", json_path = ".status.clusterCount"),
    printcolumn(name = "Ledger-Height", type_ = "integer", json_path = ".status.ledger.height"),
    printcolumn(name = "Final-Epoch", type_ = "integer", json_path = ".status.ledger.lastFinalEpoch", priority = 1),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.edgePools.all(p, self.edgePools.exists_one(q, q.name == p.name))")
    .message("edge pool names must be unique within a network")
    .field_path(".edgePools"))]
pub struct HsnNetworkSpec {
    /// The super nodes: fewer, stronger agents that carry and attest edge traffic.
    pub super_nodes: SuperNodes,
    /// Pools of edge nodes: agents on the nodes that match each pool's selectors.
    #[schemars(length(min = 1, max = 16))]
    pub edge_pools: Vec<EdgePool>,
    /// How edge traffic is routed to super nodes.
    #[serde(default)]
    pub routing: Routing,
    /// What is counted, how often, and how the ledger judges it.
    #[serde(default)]
    pub metering: Metering,
    /// When true the operator computes status but writes nothing to member clusters.
    #[serde(default)]
    pub paused: bool,
}

/// Super-node workload and placement.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.storage) == has(oldSelf.storage) && (!has(self.storage) || self.storage == oldSelf.storage)")
    .message("superNodes.storage is fixed at creation: the super nodes' StatefulSet cannot change its volume claims, and their chain data is where it was first put; create a new network instead"))]
pub struct SuperNodes {
    /// Number of super nodes across all clusters.
    #[schemars(range(min = 1, max = 64))]
    pub replicas: i32,
    /// Container image of the agents (super and edge nodes), a reference such as
    /// `ghcr.io/hsn-io/hsn-agent:0.1.0` or `registry:5000/hsn-agent@sha256:<digest>`.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message(IMAGE_MESSAGE))]
    pub image: String,
    /// Container image of the super nodes' ledger (`hsn-ledger` with `cometbft` beside it):
    /// each super node runs its network's chain as a validator.
    #[serde(default = "default_ledger_image")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message(IMAGE_MESSAGE))]
    pub ledger_image: String,
    /// TLS between the agents and their ledgers (default on): the operator keeps a CA for
    /// the network and issues each super node's ledger a certificate, which the agents
    /// verify. `false` ships records and observations in plain text, readable and
    /// alterable in transit and to any impostor of a ledger: the network is then `Degraded`
    /// with reason `PlaintextLedger`.
    #[serde(default = "default_true")]
    pub ledger_tls: bool,
    /// Compute resources of each super-node pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "resources_schema")]
    pub resources: Option<ResourceRequirements>,
    /// Where super nodes may be placed.
    #[serde(default)]
    pub placement: Placement,
    /// Where each super node keeps its state: its ledger's chain data (store and CometBFT
    /// home) and its agent's spool. Absent: a directory on the node it runs on
    /// (`/var/lib/hsn/<network>/<pod>`), left behind when the pod is placed on another node
    /// (it then syncs the chain from the other validators; observations it had not shipped
    /// stay on the old node). Set: a PersistentVolumeClaim per super node,
    /// `state-hsn-super-node-<n>`, which moves with the pod where its storage class allows.
    /// Fixed at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<SuperNodeStorage>,
}

/// The super nodes' PersistentVolumeClaims.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SuperNodeStorage {
    /// StorageClass of the claims; it must exist in every member cluster that may host
    /// super nodes. Absent: each cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::DNS_SUBDOMAIN))]
    pub storage_class_name: Option<String>,
    /// Size of each claim, a Kubernetes quantity such as `10Gi` (the default).
    #[serde(default = "default_storage_size")]
    #[schemars(length(min = 1, max = 32), regex(pattern = STORAGE_SIZE))]
    pub size: String,
}

/// A storage size: a positive decimal with a binary or decimal unit (`10Gi`, `500M`).
const STORAGE_SIZE: &str = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$";

fn default_storage_size() -> String {
    "10Gi".into()
}

fn default_image() -> String {
    DEFAULT_AGENT_IMAGE.into()
}

fn default_true() -> bool {
    true
}

fn default_ledger_image() -> String {
    DEFAULT_LEDGER_IMAGE.into()
}

/// An image reference as the container runtimes parse it: `[host[:port]/]path[:tag][@digest]`,
/// the path lowercase (docker's `distribution/reference` grammar).
const IMAGE_RULE: &str = concat!(
    r"self.matches(r'^(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(:[0-9]+)?/)?",
    r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*",
    r"(:[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127})?(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$')"
);
const IMAGE_MESSAGE: &str = "must be a container image reference: [registry[:port]/]repository[:tag][@digest], the repository lowercase, no spaces, e.g. ghcr.io/hsn-io/hsn-agent:0.1.0";

/// Super-node placement over MEC clusters.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// MecClusters (by their labels) that may host super nodes; empty means all.
    #[serde(default)]
    pub cluster_selector: Selector,
    /// The topology level super nodes are spread over.
    #[serde(default)]
    pub spread_by: SpreadTopology,
    /// Most super nodes of this network on one cluster; unset means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max_per_cluster: Option<i32>,
}

/// Topology levels for spreading super nodes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpreadTopology {
    /// Spread over regions first.
    Region,
    /// Spread over zones first.
    #[default]
    Zone,
    /// Spread over clusters.
    Cluster,
}

/// A pool of edge nodes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EdgePool {
    /// Name of the pool, unique within the network; a DNS label.
    #[schemars(length(min = 1, max = 40), regex(pattern = crate::DNS_LABEL))]
    pub name: String,
    /// MecClusters (by their labels) this pool spans; empty means all. Cordoned clusters
    /// get no new edges.
    #[serde(default)]
    pub cluster_selector: Selector,
    /// Nodes (by their labels) inside those clusters that run an edge agent; empty means
    /// all. A node running another network's agent, or one of this network's super nodes,
    /// is left out (one agent per node).
    #[serde(default)]
    pub node_selector: Selector,
    /// The 5G network-slice type this pool serves.
    pub slice_type: SliceType,
    /// Most edge nodes one super node guarantees.
    #[serde(default = "default_max_edges_per_super_node")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_edges_per_super_node: i32,
    /// Tolerations of the edge agents, to run on tainted edge nodes; at most 16.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "tolerations_schema")]
    pub tolerations: Vec<Toleration>,
}

/// `Toleration` states no bounds of its own: a key is a label key, a value a label value.
fn tolerations_schema(generator: &mut SchemaGenerator) -> Schema {
    crate::bounds::embedded::<Vec<Toleration>>(
        generator,
        &[
            ("", "maxItems", json!(16)),
            ("/items/properties/key", "maxLength", json!(317)),
            ("/items/properties/operator", "maxLength", json!(16)),
            ("/items/properties/value", "maxLength", json!(63)),
            ("/items/properties/effect", "maxLength", json!(32)),
        ],
    )
}

/// `ResourceRequirements` states no bounds of its own: a few claims, named by DNS labels,
/// and a few resources.
fn resources_schema(generator: &mut SchemaGenerator) -> Schema {
    crate::bounds::embedded::<Option<ResourceRequirements>>(
        generator,
        &[
            ("/properties/claims", "maxItems", json!(8)),
            (
                "/properties/claims/items/properties/name",
                "maxLength",
                json!(63),
            ),
            (
                "/properties/claims/items/properties/request",
                "maxLength",
                json!(63),
            ),
            ("/properties/limits", "maxProperties", json!(16)),
            ("/properties/requests", "maxProperties", json!(16)),
        ],
    )
}

fn default_max_edges_per_super_node() -> i32 {
    64
}

/// 5G network-slice types.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceType {
    /// Enhanced mobile broadband: high throughput.
    #[serde(rename = "eMBB")]
    EMbb,
    /// Massive machine-type communication: many small IoT flows.
    #[serde(rename = "mMTC")]
    MMtc,
    /// Ultra-reliable low-latency communication.
    #[serde(rename = "URLLC")]
    Urllc,
}

/// Routing of edge traffic.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Routing {
    /// The kernel hook the datapath attaches to: `XDP` (the default, fastest) or `TC`
    /// (where XDP cannot serve); the same programs, counters and tunnel either way.
    #[serde(default)]
    pub datapath: DatapathMode,
    /// How edge nodes are assigned to super nodes.
    #[serde(default)]
    pub assignment: AssignmentPolicy,
    /// How fast failures are detected and routed around.
    #[serde(default)]
    pub failover: Failover,
}

/// Datapath attach modes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DatapathMode {
    /// eXpress Data Path at the driver (native, generic as fallback).
    #[default]
    #[serde(rename = "XDP")]
    Xdp,
    /// Traffic-control classifier at ingress (tcx, Linux 6.6+): for interfaces without native
    /// XDP, or traffic that must meet the stack as an skb.
    #[serde(rename = "TC")]
    Tc,
}

/// Edge-to-super assignment policies.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AssignmentPolicy {
    /// Same zone, then same region, then anywhere, within the per-super-node bound.
    #[default]
    LocalityFirst,
    /// Spread edges evenly over all super nodes, ignoring locality.
    Uniform,
}

/// Failure-detection timing.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.heartbeatSeconds < self.leaseDurationSeconds")
    .message("heartbeatSeconds must be shorter than leaseDurationSeconds, or agent Leases expire between renewals"))]
pub struct Failover {
    /// How often agents renew their Lease.
    #[serde(default = "default_heartbeat_seconds")]
    #[schemars(range(min = 1, max = 300))]
    pub heartbeat_seconds: i32,
    /// A super node whose Lease is older than this is considered lost.
    #[serde(default = "default_lease_duration_seconds")]
    #[schemars(range(min = 2, max = 600))]
    pub lease_duration_seconds: i32,
}

impl Default for Failover {
    fn default() -> Self {
        Self {
            heartbeat_seconds: default_heartbeat_seconds(),
            lease_duration_seconds: default_lease_duration_seconds(),
        }
    }
}

fn default_heartbeat_seconds() -> i32 {
    5
}
fn default_lease_duration_seconds() -> i32 {
    15
}

/// Metering and ledger settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.tenants.all(t, self.tenants.exists_one(u, u.name == t.name))")
    .message("tenant names must be unique within a network")
    .field_path(".tenants"))]
#[x_kube(validation = Rule::new("self.tenants.all(t, self.tenants.exists_one(u, u.id == t.id))")
    .message("tenant ids must be unique within a network")
    .field_path(".tenants"))]
pub struct Metering {
    /// Length of a metering epoch: agents emit one record per tenant and direction per epoch.
    /// Immutable: epochs already in the ledger would no longer line up.
    #[serde(default = "default_epoch_seconds")]
    #[schemars(range(min = 10, max = 86400))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("epochSeconds is immutable: epochs already in the ledger would no longer line up; create a new network instead"))]
    pub epoch_seconds: i32,
    /// Tenants whose traffic is counted, identified by their address prefixes.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub tenants: Vec<Tenant>,
    /// How the ledger cross-checks and blocks records. Immutable: the network's chain
    /// starts from these settings (its genesis), which every validator shares for good.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("metering.ledger is immutable: the network's chain started from these settings (its genesis); create a new network instead"))]
    pub ledger: LedgerSettings,
}

impl Default for Metering {
    fn default() -> Self {
        Self {
            epoch_seconds: default_epoch_seconds(),
            tenants: Vec::new(),
            ledger: LedgerSettings::default(),
        }
    }
}

fn default_epoch_seconds() -> i32 {
    60
}

/// A tenant: a customer whose traffic is metered by destination (and source) prefix.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Name of the tenant, unique within the network; a DNS label.
    #[schemars(length(min = 1, max = 63), regex(pattern = crate::DNS_LABEL))]
    pub name: String,
    /// Numeric id used as the key in the datapath's counters, unique within the network.
    #[schemars(range(min = 1, max = 65535))]
    pub id: i32,
    /// IPv4 and IPv6 prefixes in CIDR notation, e.g. `10.20.0.0/16`, `2001:db8:20::/48`; not a
    /// default route, and neither equal to nor inside nor around another tenant's prefix.
    #[schemars(length(min = 1, max = 32))]
    pub prefixes: Vec<Prefix>,
}

/// An IPv4 or IPv6 prefix in CIDR notation with its host bits zero.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(transparent)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "isCIDR(self)",
        "message": "must be an IPv4 or IPv6 prefix in CIDR notation, e.g. 10.20.0.0/16 or 2001:db8:20::/48"
    },
    {
        "rule": "!isCIDR(self) || cidr(self).masked() == cidr(self)",
        "message": "must be the network address with host bits zero, e.g. 10.20.0.0/16 rather than 10.20.1.7/16"
    },
    {
        "rule": "!isCIDR(self) || cidr(self).prefixLength() > 0",
        "message": "must not be a default route (0.0.0.0/0 or ::/0): it holds every address, so all traffic, other tenants' and non-tenant, would be metered as this tenant's"
    }
]))]
pub struct Prefix(#[schemars(length(max = 43))] pub String);

impl Prefix {
    /// The prefix as a network, `None` when it is not `address/length` valid for its family
    /// (the API server refuses those; a routes table read from elsewhere may hold them).
    pub fn net(&self) -> Option<ipnet::IpNet> {
        self.0.parse().ok()
    }
}

/// How super nodes judge edge records and chain them into blocks.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LedgerSettings {
    /// Largest absolute difference, in bytes, between an edge's claim and its super node's
    /// observation that still attests the record.
    #[serde(default = "default_tolerance_bytes")]
    #[schemars(range(min = 0, max = 1_099_511_627_776_i64))]
    pub tolerance_bytes: i64,
    /// Largest relative difference, in basis points (1/100 of a percent), that still attests
    /// the record. A record within either tolerance is attested.
    #[serde(default = "default_tolerance_basis_points")]
    #[schemars(range(min = 0, max = 10000))]
    pub tolerance_basis_points: i32,
    /// Most records in one block; an epoch with more records spans several blocks.
    #[serde(default = "default_max_records_per_block")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_records_per_block: i32,
    /// How long after an epoch ends its records are still accepted (an edge cut off for
    /// that long is still paid); the epoch's rewards are final after it.
    #[serde(default = "default_late_window_seconds")]
    #[schemars(range(min = 0, max = 2_592_000))]
    pub late_window_seconds: i64,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        Self {
            tolerance_bytes: default_tolerance_bytes(),
            tolerance_basis_points: default_tolerance_basis_points(),
            max_records_per_block: default_max_records_per_block(),
            late_window_seconds: default_late_window_seconds(),
        }
    }
}

fn default_late_window_seconds() -> i64 {
    hsn_core::epoch::DEFAULT_LATE_WINDOW_SECONDS as i64
}

fn default_tolerance_bytes() -> i64 {
    4096
}
fn default_tolerance_basis_points() -> i32 {
    100
}
fn default_max_records_per_block() -> i32 {
    10000
}

/// What the operator last observed of the network.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HsnNetworkStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`, with reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::condition::schema")]
    pub conditions: Vec<Condition>,
    /// Super nodes over all clusters.
    #[serde(default)]
    pub super_nodes: ReplicaCounts,
    /// Edge nodes over all clusters.
    #[serde(default)]
    pub edge_nodes: ReplicaCounts,
    /// Number of clusters hosting part of the network.
    #[serde(default)]
    pub cluster_count: i32,
    /// Per-cluster placement, by cluster name; at most 256 clusters (`clusterCount` counts
    /// them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_STATUS_CLUSTERS))]
    pub clusters: Vec<ClusterPlacement>,
    /// The ledger's head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerHead>,
}

hsn_core::words! {
    /// Reasons of an HsnNetwork's `Ready`, `Progressing` and `Degraded` conditions.
    pub enum HsnNetworkReason: "HsnNetwork reason" {
        /// Every agent the plan wants is ready.
        AllAgentsReady,
        /// Some agents are not ready yet.
        AgentsNotReady,
        /// Rolling toward the plan.
        RollingOut,
        /// Nothing left to do.
        Converged,
        /// Nothing is wrong.
        Healthy,
        /// A member hosting part of the network is NotReady.
        ClusterNotReady,
        /// Writing to a member failed.
        ApplyFailed,
        /// Not enough room for the super nodes or edges the spec wants.
        InsufficientCapacity,
        /// Super nodes whose Lease expired.
        SuperNodesLost,
        /// `spec.paused` is true.
        Paused,
        /// The spec breaks a rule the schema cannot check.
        InvalidSpec,
        /// Nodes the pools select run another network's agent (an older network's, or a
        /// super node's): this network runs no agent there.
        NodeConflict,
        /// Agent pods the cluster's scheduler cannot place.
        Unschedulable,
        /// Agent containers that cannot start (image, configuration, crash loop).
        AgentsFailing,
        /// `superNodes.ledgerTls` is false: agents and ledgers speak plain text.
        PlaintextLedger,
    }
}

/// Most entries of `status.clusters`; a network on more clusters lists the first by name.
pub const MAX_STATUS_CLUSTERS: usize = 256;

/// Desired and ready counts of one kind of agent.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaCounts {
    /// Agents the plan wants.
    pub desired: i32,
    /// Agents reported ready by their cluster.
    pub ready: i32,
}

/// Part of the network on one cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlacement {
    /// The MecCluster's name.
    #[schemars(length(max = 253))]
    pub cluster: String,
    /// Super nodes on this cluster.
    pub super_nodes: ReplicaCounts,
    /// Edge nodes on this cluster.
    pub edge_nodes: ReplicaCounts,
}

/// The network's chain as its super nodes see it: each super agent reads its own ledger
/// replica and reports it in its Lease (`hsn.io/ledger`); the status shows the most advanced
/// report of a super node the operator trusts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LedgerHead {
    /// Ledger blocks (sealed batches of records); the next block's height.
    pub height: i64,
    /// Hash of the newest ledger block's header, hex; empty before the first block.
    #[schemars(length(max = 128))]
    #[serde(default)]
    pub head_hash: String,
    /// The last CometBFT block the replica applied.
    #[serde(default)]
    pub chain_height: i64,
    /// Validators of the chain (the network's super nodes in its validator set).
    #[serde(default)]
    pub validators: i32,
    /// Every epoch up to this one is final: its late window has passed, its rewards will not
    /// change. Absent before the first epoch is final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_final_epoch: Option<i64>,
    /// The HsnNode whose report this is (set by the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub reported_by: Option<String>,
}
