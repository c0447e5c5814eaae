//! What `hsnctl networks | nodes | routes` print: views built from the API objects (pure,
//! `now` passed in), serializable for `-o json`, and their tables.

use std::collections::BTreeSet;

use hsn_api::condition::{ConditionType, find};
use hsn_api::{HsnNetwork, HsnNode};
use hsn_core::Role;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::table::{self, dash, or_dash};

/// Hex digits of a public key shown in tables (8 bytes, as the ledger's tables).
const KEY_PREFIX: usize = 16;

/// Desired and ready counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Wanted by the plan.
    pub desired: i32,
    /// Reported ready.
    pub ready: i32,
}

/// One `HsnNetwork` as `hsnctl networks` lists it.
#[derive(Debug, PartialEq, Serialize)]
pub struct NetworkView {
    /// Hub namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Status of the `Ready` condition (`True`, `False`, `Unknown`), if reported.
    pub ready: Option<String>,
    /// Reason of the `Ready` condition.
    pub reason: Option<String>,
    /// Message of the `Ready` condition.
    pub message: Option<String>,
    /// Super nodes over all clusters.
    pub super_nodes: Counts,
    /// Edge nodes over all clusters.
    pub edge_nodes: Counts,
    /// Edge HsnNodes that have a super node assigned.
    pub edges_assigned: usize,
    /// Edge HsnNodes.
    pub edges_total: usize,
    /// Clusters hosting part of the network.
    pub clusters: Vec<String>,
    /// The newest metering epoch any of its agents closed.
    pub latest_epoch: Option<i64>,
    /// Length of an epoch.
    pub epoch_seconds: i32,
    /// Whether writes to members are paused.
    pub paused: bool,
    /// Creation time, RFC 3339.
    pub created: Option<String>,
    /// Seconds since creation.
    pub age_seconds: Option<i64>,
}

impl NetworkView {
    /// The view of `network`, counting its agents among `nodes`.
    pub fn new(network: &HsnNetwork, nodes: &[HsnNode], now: Timestamp) -> Self {
        let namespace = network.namespace().unwrap_or_default();
        let name = network.name_any();
        let mine = nodes
            .iter()
            .filter(|n| n.spec.network == name && n.namespace().as_deref() == Some(&namespace));
        let (mut assigned, mut total, mut latest_epoch) = (0, 0, None::<i64>);
        for node in mine {
            if node.spec.role == Role::Edge {
                total += 1;
                assigned += usize::from(node.spec.assigned_super_node.is_some());
            }
            let epoch = node.status.as_ref().and_then(|s| s.last_epoch);
            latest_epoch = latest_epoch.max(epoch);
        }
        let status = network.status.clone().unwrap_or_default();
        let ready = find(&status.conditions, ConditionType::Ready);
        let created = network.metadata.creation_timestamp.as_ref();
        Self {
            namespace,
            name,
            ready: ready.map(|c| c.status.clone()),
            reason: ready.map(|c| c.reason.clone()).filter(|r| !r.is_empty()),
            message: ready.map(|c| c.message.clone()).filter(|m| !m.is_empty()),
            super_nodes: Counts {
                desired: status.super_nodes.desired,
                ready: status.super_nodes.ready,
            },
            edge_nodes: Counts {
                desired: status.edge_nodes.desired,
                ready: status.edge_nodes.ready,
            },
            edges_assigned: assigned,
            edges_total: total,
            clusters: status.clusters.iter().map(|c| c.cluster.clone()).collect(),
            latest_epoch,
            epoch_seconds: network.spec.metering.epoch_seconds,
            paused: network.spec.paused,
            created: created.map(|t| t.0.to_string()),
            age_seconds: created.map(|t| seconds_since(t, now)),
        }
    }

    /// One table; `READY` carries the reason when it is not `True`.
    pub fn table(networks: &[NetworkView], scope: &str) -> String {
        if networks.is_empty() {
            return format!("no HsnNetworks {scope}\n");
        }
        let headers = [
            "NAMESPACE",
            "NAME",
            "READY",
            "SUPERS",
            "EDGES",
            "ASSIGNED",
            "CLUSTERS",
            "EPOCH",
            "AGE",
        ];
        table::render_each(&headers, networks, |n| {
            vec![
                n.namespace.clone(),
                n.name.clone(),
                readiness(n.ready.as_deref(), n.reason.as_deref()),
                format!("{}/{}", n.super_nodes.ready, n.super_nodes.desired),
                format!("{}/{}", n.edge_nodes.ready, n.edge_nodes.desired),
                format!("{}/{}", n.edges_assigned, n.edges_total),
                n.clusters.len().to_string(),
                or_dash(n.latest_epoch),
                n.age_seconds.map_or_else(dash, age),
            ]
        })
    }
}

/// One `HsnNode` as `hsnctl nodes` lists it.
#[derive(Debug, PartialEq, Serialize)]
pub struct NodeView {
    /// Hub namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its network.
    pub network: String,
    /// `Super` or `Edge` (the API's spelling).
    #[serde(serialize_with = "hsn_api::node::api_role::serialize")]
    pub role: Role,
    /// The MecCluster it runs in.
    pub cluster: String,
    /// The Kubernetes node it runs on (an edge: planned; a super node: as reported).
    pub node_name: Option<String>,
    /// A super node's ordinal.
    pub ordinal: Option<i32>,
    /// An edge's super node (HsnNode name).
    pub assigned_super_node: Option<String>,
    /// Status of the `Ready` condition.
    pub ready: Option<String>,
    /// Reason of the `Ready` condition.
    pub reason: Option<String>,
    /// Last Lease renewal, RFC 3339.
    pub last_heartbeat: Option<String>,
    /// Seconds since the last Lease renewal.
    pub heartbeat_age_seconds: Option<i64>,
    /// Last metering epoch it closed.
    pub last_epoch: Option<i64>,
    /// Its ed25519 public key, hex.
    pub public_key: Option<String>,
}

impl NodeView {
    /// The view of `node`.
    pub fn new(node: &HsnNode, now: Timestamp) -> Self {
        let status = node.status.clone().unwrap_or_default();
        let ready = find(&status.conditions, ConditionType::Ready);
        let heartbeat = status.last_heartbeat.as_ref();
        Self {
            namespace: node.namespace().unwrap_or_default(),
            name: node.name_any(),
            network: node.spec.network.clone(),
            role: node.spec.role,
            cluster: node.spec.cluster.clone(),
            node_name: node.spec.node_name.clone().or(status.node_name.clone()),
            ordinal: node.spec.ordinal,
            assigned_super_node: node.spec.assigned_super_node.clone(),
            ready: ready.map(|c| c.status.clone()),
            reason: ready.map(|c| c.reason.clone()).filter(|r| !r.is_empty()),
            last_heartbeat: heartbeat.map(|t| t.0.to_string()),
            heartbeat_age_seconds: heartbeat.map(|t| seconds_since(t, now)),
            last_epoch: status.last_epoch,
            public_key: status.public_key.clone(),
        }
    }

    /// Sort key: network, super nodes first, cluster, ordinal, node.
    fn order(&self) -> impl Ord + '_ {
        (
            &self.namespace,
            &self.network,
            self.role == Role::Edge,
            &self.cluster,
            self.ordinal,
            &self.node_name,
            &self.name,
        )
    }

    /// Sorts views for listing.
    pub fn sort(nodes: &mut [NodeView]) {
        nodes.sort_by(|a, b| a.order().cmp(&b.order()));
    }

    /// One table; `NAMESPACE` only when listing several namespaces.
    pub fn table(nodes: &[NodeView], scope: &str, with_namespace: bool) -> String {
        if nodes.is_empty() {
            return format!("no HsnNodes {scope}\n");
        }
        let mut headers = vec![
            "NAME",
            "NETWORK",
            "ROLE",
            "CLUSTER",
            "NODE",
            "SUPER",
            "READY",
            "HEARTBEAT",
            "EPOCH",
            "KEY",
        ];
        if with_namespace {
            headers.insert(0, "NAMESPACE");
        }
        table::render_each(&headers, nodes, |n| {
            let placement = match (n.role, n.ordinal) {
                (Role::Super, Some(o)) => match &n.node_name {
                    Some(node) => format!("#{o} {node}"),
                    None => format!("#{o}"),
                },
                _ => or_dash(n.node_name.as_ref()),
            };
            let mut row = vec![
                n.name.clone(),
                n.network.clone(),
                n.role.as_str().to_owned(),
                n.cluster.clone(),
                placement,
                or_dash(n.assigned_super_node.as_ref()),
                readiness(n.ready.as_deref(), n.reason.as_deref()),
                n.heartbeat_age_seconds.map_or_else(dash, age),
                or_dash(n.last_epoch),
                n.public_key.as_deref().map_or_else(dash, key_prefix),
            ];
            if with_namespace {
                row.insert(0, n.namespace.clone());
            }
            row
        })
    }
}

/// A routes table as read for display: every field optional, unknown ones ignored, so that
/// tables of older and newer operators both show what they have. `-o json` prints the
/// table exactly as stored instead.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoutesDoc {
    /// Format version.
    pub version: u32,
    /// The member cluster the table was written into.
    pub cluster: String,
    /// Epoch length.
    pub epoch_seconds: u32,
    /// Live super nodes of the network.
    pub supers: Vec<SuperDoc>,
    /// Edges and their super nodes.
    pub edges: Vec<EdgeDoc>,
    /// Tenants (shown as a count).
    pub tenants: Vec<serde_json::Value>,
}

/// A super node in a routes table.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SuperDoc {
    /// `<cluster>/super-<ordinal>`.
    pub id: String,
    /// Its datapath address.
    pub address: Option<String>,
}

/// An edge in a routes table.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EdgeDoc {
    /// Kubernetes node name.
    pub node: String,
    /// Its cluster, when not the table's own.
    pub cluster: String,
    /// Its super node's id.
    pub super_id: String,
    /// Its address.
    pub address: Option<String>,
    /// Its public key, hex.
    pub public_key: Option<String>,
}

/// The routes of one member cluster.
#[derive(Debug, PartialEq, Serialize)]
pub struct ClusterRoutes {
    /// The MecCluster's name.
    pub cluster: String,
    /// `routes.json` exactly as stored; `null` when the ConfigMap does not exist (yet).
    pub routes: Option<serde_json::Value>,
    /// The same, read for the table.
    #[serde(skip)]
    pub doc: Option<RoutesDoc>,
}

impl ClusterRoutes {
    /// Reads the stored JSON; a table that is not even a JSON object is refused.
    pub fn parse(cluster: &str, json: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(json)?;
        if !value.is_object() {
            return Err(serde::de::Error::custom("not a JSON object"));
        }
        let doc = RoutesDoc::deserialize(&value)?;
        Ok(Self {
            cluster: cluster.to_owned(),
            routes: Some(value),
            doc: Some(doc),
        })
    }

    /// A cluster of the network without a routes ConfigMap.
    pub fn absent(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_owned(),
            routes: None,
            doc: None,
        }
    }
}

/// A member cluster that could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterFailure {
    /// The MecCluster's name.
    pub cluster: String,
    /// What went wrong.
    pub error: String,
}

/// `hsnctl routes --network N`.
#[derive(Debug, PartialEq, Serialize)]
pub struct RoutesView {
    /// Hub namespace of the network.
    pub namespace: String,
    /// The network.
    pub network: String,
    /// Namespace of the routes ConfigMap in each member.
    pub member_namespace: String,
    /// Clusters read, by name.
    pub clusters: Vec<ClusterRoutes>,
    /// Clusters that could not be read.
    pub failed: Vec<ClusterFailure>,
}

impl RoutesView {
    /// A section per cluster, in name order; failed clusters say why in place.
    pub fn table(&self) -> String {
        let mut sections: Vec<(&str, String)> = self
            .clusters
            .iter()
            .map(|c| (c.cluster.as_str(), cluster_section(c)))
            .collect();
        sections.extend(self.failed.iter().map(|f| {
            let text = format!("cluster {}: not read: {}\n", f.cluster, f.error);
            (f.cluster.as_str(), text)
        }));
        sections.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = format!(
            "network {}/{}: routes ConfigMap {}/hsn-routes\n",
            self.namespace, self.network, self.member_namespace
        );
        if sections.is_empty() {
            out.push_str("no cluster hosts part of this network yet\n");
        }
        for (_, text) in sections {
            out.push('\n');
            out.push_str(&text);
        }
        out
    }
}

fn cluster_section(c: &ClusterRoutes) -> String {
    let Some(doc) = &c.doc else {
        return format!("cluster {}: no routes ConfigMap yet\n", c.cluster);
    };
    let mut out = format!(
        "cluster {}: super nodes {}, edges {}, tenants {}, epoch {}s\n",
        c.cluster,
        doc.supers.len(),
        doc.edges.len(),
        doc.tenants.len(),
        doc.epoch_seconds
    );
    out.push_str(&table::render_each(
        &["SUPER", "ADDRESS"],
        &doc.supers,
        |s| vec![s.id.clone(), or_dash(s.address.as_ref())],
    ));
    if doc.edges.is_empty() {
        return out;
    }
    let known: BTreeSet<&str> = doc.supers.iter().map(|s| s.id.as_str()).collect();
    let own = if doc.cluster.is_empty() {
        &c.cluster
    } else {
        &doc.cluster
    };
    out.push('\n');
    let headers = ["EDGE", "CLUSTER", "SUPER", "ADDRESS", "KEY"];
    out.push_str(&table::render_each(&headers, &doc.edges, |e| {
        let mut super_id = e.super_id.clone();
        if !known.contains(e.super_id.as_str()) {
            super_id.push_str(" (unknown)");
        }
        vec![
            e.node.clone(),
            if e.cluster.is_empty() {
                own
            } else {
                &e.cluster
            }
            .clone(),
            super_id,
            or_dash(e.address.as_ref()),
            e.public_key.as_deref().map_or_else(dash, key_prefix),
        ]
    }));
    out
}

fn readiness(status: Option<&str>, reason: Option<&str>) -> String {
    match (status, reason) {
        (None, _) => dash(),
        (Some("True"), _) | (Some(_), None) => status.unwrap_or_default().to_owned(),
        (Some(s), Some(r)) => format!("{s} ({r})"),
    }
}

fn key_prefix(key: &str) -> String {
    key.chars().take(KEY_PREFIX).collect()
}

fn seconds_since(t: &Time, now: Timestamp) -> i64 {
    now.duration_since(t.0).as_secs()
}

/// `42s`, `5m`, `3h`, `2d`, like kubectl's ages; a time in the future (clock skew) is `0s`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
#[path = "views_tests.rs"]
mod tests;
