//! Spool files → the ledger's signed types: an edge signs a `SignedRecord` per spool record;
//! a super signs a `SignedObservation` per record, about the edge that sent the traffic.
//!
//! Gap: a super's spool names edges by IP address (what its datapath sees), but the ledger
//! keys entries by the edge's public key, and the routes table carries neither edge addresses
//! nor keys. Until it does, the super is told the mapping (`--edge-key <addr>=<hex>`); records
//! of edges it cannot map are reported and their file stays unsent.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use ed25519_dalek::SigningKey;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_ledger_api::record::{ObservationBody, RecordBody};

use crate::spool::EpochFile;
use hsn_core::Role;

/// Edge address → edge public key, for a super's observations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeKeys(pub BTreeMap<IpAddr, NodeKey>);

/// One `--edge-key <addr>=<hex key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeKeyFlag(pub IpAddr, pub NodeKey);

impl FromStr for EdgeKeyFlag {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, key) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not <address>=<hex public key>"))?;
        let addr = addr
            .trim()
            .parse()
            .map_err(|e| format!("address {addr:?}: {e}"))?;
        let bytes = hex::decode(key.trim()).map_err(|e| format!("key {key:?}: {e}"))?;
        let key = NodeKey::from_slice(&bytes).map_err(|e| format!("key {key:?}: {e}"))?;
        Ok(Self(addr, key))
    }
}

impl FromIterator<EdgeKeyFlag> for EdgeKeys {
    fn from_iter<T: IntoIterator<Item = EdgeKeyFlag>>(iter: T) -> Self {
        Self(iter.into_iter().map(|EdgeKeyFlag(a, k)| (a, k)).collect())
    }
}

/// Why a spool file cannot be turned into ledger items.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    /// The file was written under another identity (key replaced?); signing it with ours
    /// would misattribute it.
    #[error("spool file of key {file}, this agent's key is {ours}")]
    KeyMismatch {
        /// `publicKey` in the file.
        file: String,
        /// This agent's key.
        ours: String,
    },
    /// The file belongs to another network or role than this agent.
    #[error("spool file of {file_network}/{file_role}, this agent is {network}/{role}")]
    Foreign {
        /// The file's network.
        file_network: String,
        /// The file's role.
        file_role: String,
        /// `--network`.
        network: String,
        /// `--role`.
        role: &'static str,
    },
}

impl ConvertError {
    /// Every label [`ConvertError::label`] returns.
    pub const LABELS: &[&'static str] = &["key_mismatch", "foreign_file"];

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::Foreign { .. } => "foreign_file",
        }
    }
}

/// The ledger items of one spool file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Items {
    /// Edge: its signed records.
    pub records: Vec<pb::SignedRecord>,
    /// Super: its signed observations.
    pub observations: Vec<pb::SignedObservation>,
    /// Super: edge addresses (or `None`: no address) whose records could not be mapped to a
    /// key; the file must stay unsent.
    pub unmapped: Vec<Option<IpAddr>>,
}

impl Items {
    /// Records plus observations.
    pub fn len(&self) -> usize {
        self.records.len() + self.observations.len()
    }

    /// Nothing to submit.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requests of at most `max` items each (at least 1), in order.
    pub fn batches(&self, max: usize) -> Vec<pb::SubmitRecordsRequest> {
        let max = max.max(1);
        let records = self.records.chunks(max).map(|c| pb::SubmitRecordsRequest {
            records: c.to_vec(),
            observations: Vec::new(),
        });
        let observations = self
            .observations
            .chunks(max)
            .map(|c| pb::SubmitRecordsRequest {
                records: Vec::new(),
                observations: c.to_vec(),
            });
        records.chain(observations).collect()
    }
}

/// Signs every record of `file` with `key`, as `role` of `network`.
pub fn items(
    file: &EpochFile,
    network: &str,
    role: Role,
    key: &SigningKey,
    edges: &EdgeKeys,
) -> Result<Items, ConvertError> {
    let me = NodeKey::of(key);
    if file.header.network != network || file.header.role != role.as_str() {
        return Err(ConvertError::Foreign {
            file_network: file.header.network.clone(),
            file_role: file.header.role.clone(),
            network: network.to_owned(),
            role: role.as_str(),
        });
    }
    if !file.header.public_key.eq_ignore_ascii_case(&me.to_hex()) {
        return Err(ConvertError::KeyMismatch {
            file: file.header.public_key.clone(),
            ours: me.to_hex(),
        });
    }
    let mut out = Items::default();
    for r in &file.records {
        match role {
            Role::Edge => out.records.push(
                RecordBody {
                    network: network.to_owned(),
                    epoch: file.epoch,
                    node: me,
                    tenant: r.tenant.clone(),
                    direction: r.direction,
                    bytes: r.bytes,
                    packets: r.packets,
                    sequence: r.sequence,
                }
                .sign(key)
                .to_pb(),
            ),
            Role::Super => {
                let Some(edge) = r.edge.and_then(|a| edges.0.get(&a)) else {
                    out.unmapped.push(r.edge);
                    continue;
                };
                out.observations.push(
                    ObservationBody {
                        network: network.to_owned(),
                        epoch: file.epoch,
                        node: *edge,
                        tenant: r.tenant.clone(),
                        direction: r.direction,
                        bytes: r.bytes,
                        packets: r.packets,
                        observer: me,
                    }
                    .sign(key)
                    .to_pb(),
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Verifier as _;
    use hsn_ledger_api::record::{SignedObservation, SignedRecord};

    use super::*;
    use crate::spool::{SPOOL_FORMAT, SpoolHeader, SpoolRecord};
    use hsn_core::Direction;

    fn file(role: Role, key: &SigningKey, edge: Option<IpAddr>) -> EpochFile {
        let rec = |sequence, tenant: &str, direction, bytes| SpoolRecord {
            sequence,
            tenant: tenant.into(),
            tenant_id: hsn_core::TenantId::new(7).unwrap(),
            direction,
            edge,
            bytes,
            packets: bytes / 100,
        };
        EpochFile {
            format: SPOOL_FORMAT,
            header: SpoolHeader {
                network: "metro".into(),
                role: role.as_str().into(),
                agent: "a".into(),
                public_key: hex::encode(key.verifying_key().as_bytes()),
            },
            epoch: 29_928_026,
            epoch_seconds: 60,
            records: vec![
                rec(12, "acme", Direction::Uplink, 25_600),
                rec(13, "acme", Direction::Downlink, 9_000),
            ],
            snapshot: Vec::new(),
        }
    }

    #[test]
    fn an_edge_file_becomes_records_signed_by_the_edge() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let items = items(
            &file(Role::Edge, &key, None),
            "metro",
            Role::Edge,
            &key,
            &EdgeKeys::default(),
        )
        .unwrap();
        assert!(items.observations.is_empty() && items.unmapped.is_empty());
        let got: Vec<SignedRecord> = items
            .records
            .iter()
            .map(|m| SignedRecord::from_pb(m).unwrap())
            .collect();
        let b = &got[0].body;
        assert_eq!(
            (b.network.as_str(), b.epoch, b.tenant.as_str(), b.direction),
            ("metro", 29_928_026, "acme", Direction::Uplink)
        );
        assert_eq!((b.bytes, b.packets, b.sequence), (25_600, 256, 12));
        assert_eq!(b.node, NodeKey::of(&key));
        assert_eq!(got[1].body.direction, Direction::Downlink);
        assert_eq!(got[1].body.sequence, 13);
        for r in &got {
            key.verifying_key()
                .verify(&r.body.signing_bytes(), &r.signature)
                .unwrap();
        }
        assert_eq!(items.batches(1).len(), 2);
        assert_eq!(items.batches(10_000).len(), 1);
    }

    #[test]
    fn a_super_file_becomes_observations_of_the_mapped_edge() {
        let sup = SigningKey::from_bytes(&[4; 32]);
        let edge = NodeKey::of(&SigningKey::from_bytes(&[5; 32]));
        let addr: IpAddr = "10.0.0.5".parse().unwrap();
        let flag: EdgeKeyFlag = format!("10.0.0.5={}", edge.to_hex()).parse().unwrap();
        let edges: EdgeKeys = [flag].into_iter().collect();
        // What the super signs of a file in which it observed the edge at `addr`.
        let observed = |addr| {
            let f = file(Role::Super, &sup, Some(addr));
            items(&f, "metro", Role::Super, &sup, &edges).unwrap()
        };
        let got = observed(addr);
        assert!(got.records.is_empty() && got.unmapped.is_empty());
        let o = SignedObservation::from_pb(&got.observations[0]).unwrap();
        assert_eq!(o.body.node, edge, "keyed by the observed edge");
        assert_eq!(o.body.observer, NodeKey::of(&sup));
        assert_eq!((o.body.bytes, o.body.packets), (25_600, 256));
        sup.verifying_key()
            .verify(&o.body.signing_bytes(), &o.signature)
            .unwrap();

        // An edge the super cannot map: nothing signed for it, reported.
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        let got = observed(other);
        assert!(got.is_empty());
        assert_eq!(got.unmapped, vec![Some(other), Some(other)]);
    }

    #[test]
    fn foreign_files_and_other_keys_are_refused() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let other = SigningKey::from_bytes(&[9; 32]);
        let f = file(Role::Edge, &key, None);
        let none = EdgeKeys::default();
        let e = items(&f, "metro", Role::Edge, &other, &none).unwrap_err();
        assert_eq!(e.label(), "key_mismatch");
        let e = items(&f, "other", Role::Edge, &key, &none).unwrap_err();
        assert_eq!(e.label(), "foreign_file");
        let e = items(&f, "metro", Role::Super, &key, &none).unwrap_err();
        assert_eq!(e.label(), "foreign_file");
        assert!("10.0.0.1".parse::<EdgeKeyFlag>().is_err());
        assert!("10.0.0.1=abcd".parse::<EdgeKeyFlag>().is_err());
    }
}
