//! One probe of a member cluster: version, identity, nodes, allocatable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hsn_api::cluster::NodeCounts;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::plan::NodeView;

pub use hsn_api::cluster::EDGE_CAPABLE_LABEL;

/// What a successful probe found.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Kubernetes version, e.g. `v1.36.2`.
    pub version: String,
    /// The cluster's identity: its `kube-system` UID ([`cluster_identity`]).
    pub identity: String,
    /// Nodes, sorted by name.
    pub nodes: Vec<NodeView>,
    /// Counts of all, ready and edge-capable nodes.
    pub counts: NodeCounts,
    /// CPU and memory summed over ready nodes.
    pub allocatable: BTreeMap<String, Quantity>,
    /// Round trip of the probe.
    pub latency: Duration,
}

/// The identity of the cluster `client` reaches, whatever address, name or credential
/// reaches it: the UID of its `kube-system` namespace, which lives as long as the cluster.
/// (The API server sets every UID; an empty one would make unrelated clusters equal, so it
/// counts as an answer without one.)
pub async fn cluster_identity(client: &Client) -> Result<String, kube::Error> {
    let ns = Api::<Namespace>::all(client.clone())
        .get("kube-system")
        .await?;
    match ns.metadata.uid {
        Some(uid) if !uid.is_empty() => Ok(uid),
        _ => Err(kube::Error::Api(Box::new(
            kube::core::Status::failure("namespace kube-system has no uid", "NoUid").with_code(500),
        ))),
    }
}

/// Probes `client`: the version endpoint, the cluster's identity, then the node list.
pub async fn probe(client: &Client) -> Result<Probe, kube::Error> {
    let started = Instant::now();
    let version = client.apiserver_version().await?.git_version;
    let identity = cluster_identity(client).await?;
    // Of a node only its labels, conditions and allocatable count here; its image list
    // (long on real nodes) goes with the page.
    let items = crate::lists::list(
        &Api::<Node>::all(client.clone()),
        &ListParams::default(),
        |mut n| {
            if let Some(status) = n.status.as_mut() {
                status.images = None;
            }
            n
        },
    )
    .await?;
    let latency = started.elapsed();

    let mut views: Vec<NodeView> = items
        .iter()
        .map(|n| NodeView {
            name: n.name_any(),
            labels: n.labels().clone(),
            ready: is_ready(n),
        })
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    let ready: Vec<&Node> = items.iter().filter(|n| is_ready(n)).collect();
    let counts = NodeCounts {
        total: count(items.len()),
        ready: count(ready.len()),
        edge_capable: count(
            ready
                .iter()
                .filter(|n| {
                    n.labels()
                        .get(EDGE_CAPABLE_LABEL)
                        .is_some_and(|v| v == "true")
                })
                .count(),
        ),
    };
    Ok(Probe {
        version,
        identity,
        nodes: views,
        counts,
        allocatable: sum_allocatable(&ready),
        latency,
    })
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// CPU in millicores and memory in bytes, summed; other resources are left out.
fn sum_allocatable(nodes: &[&Node]) -> BTreeMap<String, Quantity> {
    let (mut cpu_milli, mut mem_bytes) = (0u128, 0u128);
    for node in nodes {
        let Some(alloc) = node.status.as_ref().and_then(|s| s.allocatable.as_ref()) else {
            continue;
        };
        cpu_milli += alloc
            .get("cpu")
            .and_then(|q| parse_quantity(&q.0, true))
            .unwrap_or(0);
        mem_bytes += alloc
            .get("memory")
            .and_then(|q| parse_quantity(&q.0, false))
            .unwrap_or(0);
    }
    BTreeMap::from([
        ("cpu".to_string(), Quantity(format!("{cpu_milli}m"))),
        ("memory".to_string(), Quantity(mem_bytes.to_string())),
    ])
}

/// Parses the common Kubernetes quantity forms (`8`, `500m`, `32Gi`, `1G`) into an integer:
/// millis when `milli`, else units.
fn parse_quantity(q: &str, milli: bool) -> Option<u128> {
    const SUFFIXES: &[(&str, u128)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let scale = if milli { 1000 } else { 1 };
    if let Some(n) = q.strip_suffix('m') {
        let v: u128 = n.parse().ok()?;
        return Some(if milli { v } else { v / 1000 });
    }
    for (suffix, mult) in SUFFIXES {
        if let Some(n) = q.strip_suffix(suffix) {
            return Some(n.parse::<u128>().ok()? * mult * scale);
        }
    }
    Some(q.parse::<u128>().ok()? * scale)
}

#[cfg(test)]
mod tests {
    use super::parse_quantity;

    #[test]
    fn quantities_parse_in_the_common_forms() {
        assert_eq!(parse_quantity("8", true), Some(8000));
        assert_eq!(parse_quantity("500m", true), Some(500));
        assert_eq!(parse_quantity("32Gi", false), Some(32 << 30));
        assert_eq!(parse_quantity("1G", false), Some(1_000_000_000));
        assert_eq!(parse_quantity("1.5", true), None);
    }
}
