//! The routes table the operator writes into each member cluster's routes ConfigMap and
//! the agents program into their datapath. One type, so both sides agree on the format.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hsn_core::SuperId;
use serde::{Deserialize, Serialize};

use crate::network::Tenant;

/// Name of the routes ConfigMap in each member cluster's network namespace.
pub const ROUTES_CONFIGMAP: &str = "hsn-routes";

/// The namespace of `network` in every member cluster.
pub fn member_namespace(network: &str) -> String {
    format!("hsn-{network}")
}

/// Name of the ConfigMap of the network's chain in each member cluster's network namespace:
/// what every super node's ledger needs (genesis, peers) and the registry change the
/// operator last published, which super agents hand to their ledger as soon as it changes.
pub const LEDGER_CONFIGMAP: &str = "hsn-ledger";
/// Key of the last registry change in [`LEDGER_CONFIGMAP`] (a signed transaction, hex).
pub const REGISTRY_KEY: &str = "registry";
/// Key of the network's genesis.json in [`LEDGER_CONFIGMAP`] (also its file name where it is
/// mounted or relayed).
pub const GENESIS_KEY: &str = "genesis.json";
/// Key of the validators' P2P addresses in [`LEDGER_CONFIGMAP`], one
/// `<node id>@<address>:<port>` a line.
pub const PEERS_KEY: &str = "peers";
/// Key in [`LEDGER_CONFIGMAP`] present once the network's chain has committed a block (what
/// the operator saw, for people): a super node's ledger that finds it, a CometBFT home that
/// never signed a block and no peer to sync from does not start a second chain.
pub const HISTORY_KEY: &str = "history";

/// Key of the table (JSON) in the routes ConfigMap's data.
pub const ROUTES_KEY: &str = "routes.json";
/// Version of the table format; agents refuse tables of a version they do not know.
pub const ROUTES_VERSION: u32 = 1;

/// Routes of one network in one member cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RoutesTable {
    /// Format version, [`ROUTES_VERSION`].
    pub version: u32,
    /// The HsnNetwork's name.
    pub network: String,
    /// The member cluster this table is written into (empty in tables of older operators).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Length of a metering epoch in seconds.
    pub epoch_seconds: u32,
    /// Every live super node of the network, in every cluster.
    pub supers: Vec<SuperRoute>,
    /// Edge nodes of this cluster and the super node each one sends to, plus the edges of
    /// other clusters routed to a super node of this cluster (so that super node knows them).
    pub edges: Vec<EdgeRoute>,
    /// Tenants and their prefixes.
    pub tenants: Vec<Tenant>,
}

/// A super node edges can be routed to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SuperRoute {
    /// Stable id, `<cluster>/super-<ordinal>`.
    pub id: SuperId,
    /// Address the super node receives edge traffic and ledger submissions on, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

/// The super node of one edge node, and what that super node needs to know of the edge.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EdgeRoute {
    /// Kubernetes node name of the edge.
    pub node: String,
    /// The edge's cluster when it is not the table's own (an edge of another cluster
    /// routed to a super node of this one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Id of its super node, one of [`RoutesTable::supers`].
    pub super_id: SuperId,
    /// The edge's address, from its Lease: the outer source of its tunnel, by which its
    /// super node recognises its traffic and names it in observations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The edge's ed25519 public key (hex), from its Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

impl EdgeRoute {
    /// Edge `node` of the table's own cluster, routed to `super_id`, nothing else known yet.
    pub fn new(node: impl Into<String>, super_id: SuperId) -> Self {
        Self {
            node: node.into(),
            cluster: String::new(),
            super_id,
            address: None,
            public_key: None,
        }
    }
}

/// Why a routes table cannot be used. Agents keep their last good table when they get one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoutesError {
    /// Not JSON, or not the shape of a table.
    #[error("routes table is malformed: {0}")]
    Malformed(String),
    /// A format version this build does not know.
    #[error(
        "routes table version {found} is not supported (this agent reads version {ROUTES_VERSION})"
    )]
    Version {
        /// The version found.
        found: u32,
    },
    /// An edge points at a super node the table does not list.
    #[error("edge {node} is routed to unknown super node {super_id}")]
    UnknownSuper {
        /// The edge's node.
        node: String,
        /// The missing super node id.
        super_id: SuperId,
    },
    /// A tenant prefix is not a CIDR.
    #[error("tenant {tenant} has an invalid prefix {prefix:?}")]
    BadPrefix {
        /// The tenant's name.
        tenant: String,
        /// The prefix as written.
        prefix: String,
    },
}

impl RoutesTable {
    /// Parses and checks a table from the ConfigMap's JSON.
    pub fn parse(json: &str) -> Result<Self, RoutesError> {
        let table: Self =
            serde_json::from_str(json).map_err(|e| RoutesError::Malformed(e.to_string()))?;
        table.validate()?;
        Ok(table)
    }

    /// Checks what the schema cannot: version, references and prefixes.
    pub fn validate(&self) -> Result<(), RoutesError> {
        if self.version != ROUTES_VERSION {
            return Err(RoutesError::Version {
                found: self.version,
            });
        }
        let supers: BTreeSet<&SuperId> = self.supers.iter().map(|s| &s.id).collect();
        if let Some(e) = self.edges.iter().find(|e| !supers.contains(&e.super_id)) {
            return Err(RoutesError::UnknownSuper {
                node: e.node.clone(),
                super_id: e.super_id.clone(),
            });
        }
        for t in &self.tenants {
            if let Some(p) = t.prefixes.iter().find(|p| p.net().is_none()) {
                return Err(RoutesError::BadPrefix {
                    tenant: t.name.clone(),
                    prefix: p.0.clone(),
                });
            }
        }
        Ok(())
    }

    /// The super node of `node`, if it is an edge of this table's own cluster.
    pub fn super_of(&self, node: &str) -> Option<&SuperRoute> {
        let edge = self
            .edges
            .iter()
            .find(|e| e.node == node && (e.cluster.is_empty() || e.cluster == self.cluster))?;
        self.supers.iter().find(|s| s.id == edge.super_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Prefix;

    fn table() -> RoutesTable {
        RoutesTable {
            version: ROUTES_VERSION,
            network: "metro".into(),
            epoch_seconds: 60,
            supers: vec![SuperRoute {
                id: SuperId::new("a", 0),
                address: Some("10.0.0.5".parse().unwrap()),
            }],
            cluster: "a".into(),
            edges: vec![
                EdgeRoute::new("n1", SuperId::new("a", 0)),
                // Same node name in another cluster, routed here after a failover.
                EdgeRoute {
                    node: "n3".into(),
                    cluster: "b".into(),
                    super_id: SuperId::new("a", 0),
                    address: Some("10.1.0.3".parse().unwrap()),
                    public_key: Some("ab".repeat(32)),
                },
            ],
            tenants: vec![Tenant {
                name: "acme".into(),
                id: 1,
                prefixes: vec![
                    Prefix("10.20.0.0/16".into()),
                    Prefix("2001:db8::/48".into()),
                ],
            }],
        }
    }

    #[test]
    fn a_table_round_trips_through_json() {
        let json = serde_json::to_string(&table()).unwrap();
        assert_eq!(RoutesTable::parse(&json).unwrap(), table());
        assert_eq!(table().super_of("n1").unwrap().id, "a/super-0");
        assert_eq!(table().super_of("n2"), None);
        // An edge of another cluster is listed for the super node, not routed as our own.
        assert_eq!(table().super_of("n3"), None);
    }

    #[test]
    fn an_older_operators_edge_mac_is_ignored() {
        let mut old = serde_json::to_value(table()).unwrap();
        old["edges"][1]["mac"] = "02:00:00:00:00:03".into();
        assert_eq!(RoutesTable::parse(&old.to_string()).unwrap(), table());
    }

    #[test]
    fn bad_tables_are_refused_with_the_reason() {
        let mut unknown = table();
        unknown.edges[0].super_id = SuperId::new("b", 9);
        assert_eq!(
            unknown.validate(),
            Err(RoutesError::UnknownSuper {
                node: "n1".into(),
                super_id: SuperId::new("b", 9)
            })
        );
        let mut bad_prefix = table();
        bad_prefix.tenants[0]
            .prefixes
            .push(Prefix("10.0.0.0/33".into()));
        assert!(matches!(
            bad_prefix.validate(),
            Err(RoutesError::BadPrefix { .. })
        ));
        let mut future = table();
        future.version = 2;
        assert_eq!(future.validate(), Err(RoutesError::Version { found: 2 }));
        assert!(matches!(
            RoutesTable::parse("{"),
            Err(RoutesError::Malformed(_))
        ));
    }

    #[test]
    fn cidrs_are_checked_per_family() {
        let net = |s: &str| Prefix(s.into()).net();
        assert!(net("10.0.0.0/32").is_some());
        assert!(net("10.0.0.0/33").is_none());
        assert!(net("::/128").is_some());
        assert!(net("::/129").is_none());
        assert!(net("10.0.0.0").is_none());
        assert!(net("x/8").is_none());
    }
}
