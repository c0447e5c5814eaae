//! HSN API types, group `hsn.io`, version `v1alpha1`.
//!
//! - [`MecCluster`] (cluster-scoped): a Kubernetes cluster at an edge site that may host
//!   HSN workloads.
//! - [`HsnNetwork`] (namespaced): one node network of super nodes and edge pools.
//! - [`HsnNode`] (namespaced, operator-owned): one agent of a network.
//!
//! Validation lives in the schema (enums, bounds, patterns, CEL rules) so the API server
//! refuses invalid objects with a readable message. [`crdgen`] renders the CRDs that ship
//! in `crds/*.yaml`.

// kube's `printcolumn(name = .., type_ = ..)` lists repeat keys by design.
#![allow(clippy::duplicated_attributes)]

pub mod access;
pub mod bounds;
pub mod cluster;
pub mod condition;
pub mod crdgen;
pub mod network;
pub mod node;
pub mod routes;
pub mod selector;

pub use cluster::{MecCluster, MecClusterReason, MecClusterSpec, MecClusterStatus};
pub use condition::ConditionType;
pub use network::{HsnNetwork, HsnNetworkReason, HsnNetworkSpec, HsnNetworkStatus};
pub use node::{HsnNode, HsnNodeReason, HsnNodeSpec, HsnNodeStatus};
pub use selector::Selector;

/// The API group of every HSN resource.
pub const GROUP: &str = "hsn.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

/// Pattern of an RFC 1123 DNS label (lowercase alphanumerics and '-', alphanumeric at both ends).
pub(crate) const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A DNS subdomain (RFC 1123), as Kubernetes names most objects.
pub(crate) const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
