//! Names and annotations of the Leases agents renew in their member namespace: the operator
//! creates each Lease its plan wants, the agent placed for it renews it (never creates one),
//! and the operator reads it back, both through [`Annotations`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use hsn_core::{Role, SuperId};

use crate::network::LedgerHead;

/// Annotation: the agent's ed25519 public key, hex.
pub const PUBLIC_KEY_ANNOTATION: &str = "hsn.io/public-key";
/// Annotation: the agent's role, `super` or `edge`.
pub const ROLE_ANNOTATION: &str = "hsn.io/role";
/// Annotation: the datapath mode the agent attached, e.g. `xdp-native`.
pub const DATAPATH_ANNOTATION: &str = "hsn.io/datapath";
/// Annotation: the last metering epoch the agent closed.
pub const LAST_EPOCH_ANNOTATION: &str = "hsn.io/last-epoch";
/// Annotation: why the agent could not use its latest routes table, if it could not.
pub const ROUTES_ERROR_ANNOTATION: &str = "hsn.io/routes-error";
/// Annotation: the address the agent receives datapath traffic on (a super node: edge
/// uplink and ledger submissions; an edge: the outer source of its tunnel, by which its
/// super node recognises it and attributes its traffic).
pub const ADDRESS_ANNOTATION: &str = "hsn.io/address";
/// Annotation: the UID of the agent's pod (the holder identity names the pod). The operator
/// trusts a Lease only when that pod, this very one, is one it placed for the Lease.
pub const POD_UID_ANNOTATION: &str = "hsn.io/pod-uid";
/// Annotation (super nodes): the network's chain as the super node's own ledger replica
/// reports it, a [`LedgerHead`] in JSON (without `reportedBy`).
pub const LEDGER_ANNOTATION: &str = "hsn.io/ledger";

/// Every annotation of [`Annotations`], so a writer can remove those it no longer sets.
pub const KEYS: [&str; 8] = [
    PUBLIC_KEY_ANNOTATION,
    ROLE_ANNOTATION,
    DATAPATH_ANNOTATION,
    ADDRESS_ANNOTATION,
    LAST_EPOCH_ANNOTATION,
    ROUTES_ERROR_ANNOTATION,
    POD_UID_ANNOTATION,
    LEDGER_ANNOTATION,
];

/// Annotations older agents wrote that nothing reads any more, so a writer removes them
/// too: `hsn.io/mac`, the source MAC an edge redirected to its super node with before
/// edges tunnelled to it (a super node now knows an edge by its address).
pub const RETIRED_KEYS: [&str; 1] = ["hsn.io/mac"];

/// Lease name of super node `ordinal` ([`SuperId::local_name`]).
pub fn super_lease(ordinal: u32) -> String {
    SuperId::local_name(ordinal)
}

/// Lease name of the edge agent on `node`.
pub fn edge_lease(node: &str) -> String {
    format!("{EDGE_PREFIX}{node}")
}

/// The node of an edge Lease name ([`edge_lease`]).
pub fn edge_node_of(lease: &str) -> Option<&str> {
    lease.strip_prefix(EDGE_PREFIX).filter(|n| !n.is_empty())
}

const EDGE_PREFIX: &str = "edge-";

/// What an agent's Lease annotations say, each under its `*_ANNOTATION` key; an absent
/// value has no annotation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// The agent's ed25519 public key, hex.
    pub public_key: Option<String>,
    /// The agent's role.
    pub role: Option<Role>,
    /// The datapath mode the agent attached, e.g. `xdp-native`.
    pub datapath: Option<String>,
    /// The address the agent receives datapath traffic on.
    pub address: Option<IpAddr>,
    /// The last metering epoch the agent closed.
    pub last_epoch: Option<u64>,
    /// Why the agent could not use its latest routes table.
    pub routes_error: Option<String>,
    /// The UID of the agent's pod.
    pub pod_uid: Option<String>,
    /// Super nodes: their ledger replica's view of the chain.
    pub ledger: Option<LedgerHead>,
}

impl Annotations {
    /// The annotations to write.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        [
            (PUBLIC_KEY_ANNOTATION, self.public_key.clone()),
            (ROLE_ANNOTATION, self.role.map(|r| r.as_str().to_owned())),
            (DATAPATH_ANNOTATION, self.datapath.clone()),
            (ADDRESS_ANNOTATION, self.address.map(|a| a.to_string())),
            (
                LAST_EPOCH_ANNOTATION,
                self.last_epoch.map(|e| e.to_string()),
            ),
            (ROUTES_ERROR_ANNOTATION, self.routes_error.clone()),
            (POD_UID_ANNOTATION, self.pod_uid.clone()),
            (
                LEDGER_ANNOTATION,
                self.ledger
                    .as_ref()
                    .and_then(|l| serde_json::to_string(l).ok()),
            ),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_owned(), value?)))
        .collect()
    }

    /// Reads a Lease's annotations; a value that does not parse reads as absent.
    pub fn from_map(annotations: &BTreeMap<String, String>) -> Self {
        let text = |key: &str| annotations.get(key).cloned();
        Self {
            public_key: text(PUBLIC_KEY_ANNOTATION),
            role: parsed(annotations, ROLE_ANNOTATION),
            datapath: text(DATAPATH_ANNOTATION),
            address: parsed(annotations, ADDRESS_ANNOTATION),
            last_epoch: parsed(annotations, LAST_EPOCH_ANNOTATION),
            routes_error: text(ROUTES_ERROR_ANNOTATION),
            pod_uid: text(POD_UID_ANNOTATION),
            ledger: annotations
                .get(LEDGER_ANNOTATION)
                .and_then(|v| serde_json::from_str(v).ok()),
        }
    }
}

fn parsed<T: FromStr>(annotations: &BTreeMap<String, String>, key: &str) -> Option<T> {
    annotations.get(key)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_read_back_as_written_and_absent_values_write_nothing() {
        let all = Annotations {
            public_key: Some("ab".repeat(32)),
            role: Some(Role::Edge),
            datapath: Some("xdp-native".into()),
            address: Some("10.1.0.7".parse().unwrap()),
            last_epoch: Some(9),
            routes_error: Some("bad".into()),
            pod_uid: Some("0c1d".into()),
            ledger: Some(LedgerHead {
                height: 4,
                head_hash: "ab".repeat(32),
                chain_height: 19,
                validators: 3,
                last_final_epoch: Some(7),
                reported_by: None,
            }),
        };
        let map = all.to_map();
        assert_eq!(map.len(), KEYS.len());
        assert!(map.keys().all(|k| KEYS.contains(&k.as_str())));
        assert_eq!(map[ROLE_ANNOTATION], "edge");
        assert_eq!(map[LAST_EPOCH_ANNOTATION], "9");
        assert_eq!(Annotations::from_map(&map), all);
        assert!(Annotations::default().to_map().is_empty());
        assert_eq!(edge_node_of(&edge_lease("n-1")), Some("n-1"));
        assert_eq!(edge_node_of("edge-"), None);
        assert_eq!(edge_node_of("super-0"), None);

        let junk = BTreeMap::from([
            (ADDRESS_ANNOTATION.to_owned(), "nowhere".to_owned()),
            (LAST_EPOCH_ANNOTATION.to_owned(), "-1".to_owned()),
            (ROLE_ANNOTATION.to_owned(), "relay".to_owned()),
            (
                LEDGER_ANNOTATION.to_owned(),
                "{\"height\": \"tall\"}".to_owned(),
            ),
        ]);
        assert_eq!(Annotations::from_map(&junk), Annotations::default());
    }

    #[test]
    fn an_older_agents_retired_annotations_are_ignored() {
        assert!(RETIRED_KEYS.iter().all(|k| !KEYS.contains(k)));
        let mut old = Annotations {
            address: Some("10.1.0.7".parse().unwrap()),
            ..Annotations::default()
        }
        .to_map();
        old.insert("hsn.io/mac".to_owned(), "02:00:00:00:00:07".to_owned());
        let read = Annotations::from_map(&old);
        assert_eq!(read.address, Some("10.1.0.7".parse().unwrap()));
        assert!(!read.to_map().contains_key("hsn.io/mac"));
    }
}
