//! Edge records and super-node observations: validated domain types over the protobuf wire
//! types, their canonical signing bytes, and the key that makes an entry unique.

mod key;

use ed25519_dalek::{Signature, Signer, SigningKey};
use hsn_core::Direction;
pub use key::{RecordKey, direction_code, direction_from_pb, direction_to_pb};

use crate::canonical::Canonical;
use crate::keys::{KeyError, NodeKey};
use crate::pb;
use crate::refusal::Reason;

/// Schema version of records and observations this crate writes and accepts.
pub const RECORD_VERSION: u32 = 1;
/// Domain tag of a record's signing bytes.
pub const RECORD_DOMAIN: &str = "HSN-LEDGER/RECORD/V1";
/// Domain tag of an observation's signing bytes.
pub const OBSERVATION_DOMAIN: &str = "HSN-LEDGER/OBSERVATION/V1";

/// What an edge node claims for one tenant and direction in one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBody {
    /// The HsnNetwork's name.
    pub network: String,
    /// The epoch.
    pub epoch: u64,
    /// The edge node; its key signs the record.
    pub node: NodeKey,
    /// Tenant name, a DNS label.
    pub tenant: String,
    /// Traffic direction.
    pub direction: Direction,
    /// Bytes counted.
    pub bytes: u64,
    /// Packets counted.
    pub packets: u64,
    /// The node's own record counter.
    pub sequence: u64,
}

impl RecordBody {
    /// The entry this record belongs to.
    pub fn key(&self) -> RecordKey {
        RecordKey {
            epoch: self.epoch,
            node: self.node,
            direction: self.direction,
            tenant: self.tenant.clone(),
        }
    }

    /// The bytes the edge node signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let key = self.key();
        counted(RECORD_DOMAIN, &self.network, &key, self.bytes, self.packets)
            .u64(self.sequence)
            .finish()
    }

    /// Signs the record; the key should be the one in `node`.
    pub fn sign(self, key: &SigningKey) -> SignedRecord {
        let signature = key.sign(&self.signing_bytes());
        SignedRecord {
            body: self,
            signature,
        }
    }
}

/// A record with its edge node's signature (not yet verified by this type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRecord {
    /// The claim.
    pub body: RecordBody,
    /// ed25519 signature by `body.node` over `body.signing_bytes()`.
    pub signature: Signature,
}

impl SignedRecord {
    /// Reads and validates a record from the wire; does not check the signature.
    pub fn from_pb(m: &pb::SignedRecord) -> Result<Self, RecordError> {
        let b = m.body.as_ref().ok_or(RecordError::MissingBody)?;
        check_version(b.version)?;
        check_counts(b.bytes, b.packets)?;
        let body = RecordBody {
            network: checked_network(&b.network)?,
            epoch: b.epoch,
            node: NodeKey::from_slice(&b.node_key).map_err(RecordError::Key)?,
            tenant: checked_tenant(&b.tenant)?,
            direction: direction_from_pb(b.direction)?,
            bytes: b.bytes,
            packets: b.packets,
            sequence: b.sequence,
        };
        Ok(Self {
            body,
            signature: parse_signature(&m.signature)?,
        })
    }

    /// The wire form.
    pub fn to_pb(&self) -> pb::SignedRecord {
        let b = &self.body;
        pb::SignedRecord {
            body: Some(pb::RecordBody {
                version: RECORD_VERSION,
                network: b.network.clone(),
                epoch: b.epoch,
                node_key: b.node.0.to_vec(),
                tenant: b.tenant.clone(),
                direction: direction_to_pb(b.direction),
                bytes: b.bytes,
                packets: b.packets,
                sequence: b.sequence,
            }),
            signature: self.signature.to_bytes().to_vec(),
        }
    }
}

/// What a super node observed of one edge node's traffic for one tenant and direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservationBody {
    /// The HsnNetwork's name.
    pub network: String,
    /// The epoch.
    pub epoch: u64,
    /// The observed edge node.
    pub node: NodeKey,
    /// Tenant name.
    pub tenant: String,
    /// Traffic direction.
    pub direction: Direction,
    /// Bytes observed.
    pub bytes: u64,
    /// Packets observed.
    pub packets: u64,
    /// The observing super node; its key signs the observation.
    pub observer: NodeKey,
}

impl ObservationBody {
    /// The entry this observation belongs to.
    pub fn key(&self) -> RecordKey {
        RecordKey {
            epoch: self.epoch,
            node: self.node,
            direction: self.direction,
            tenant: self.tenant.clone(),
        }
    }

    /// The bytes the super node signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let key = self.key();
        counted(
            OBSERVATION_DOMAIN,
            &self.network,
            &key,
            self.bytes,
            self.packets,
        )
        .fixed(&self.observer.0)
        .finish()
    }

    /// Signs the observation; the key should be the one in `observer`.
    pub fn sign(self, key: &SigningKey) -> SignedObservation {
        let signature = key.sign(&self.signing_bytes());
        SignedObservation {
            body: self,
            signature,
        }
    }
}

/// An observation with its super node's signature (not yet verified by this type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedObservation {
    /// The observation.
    pub body: ObservationBody,
    /// ed25519 signature by `body.observer` over `body.signing_bytes()`.
    pub signature: Signature,
}

impl SignedObservation {
    /// Reads and validates an observation from the wire; does not check the signature.
    pub fn from_pb(m: &pb::SignedObservation) -> Result<Self, RecordError> {
        let b = m.body.as_ref().ok_or(RecordError::MissingBody)?;
        check_version(b.version)?;
        check_counts(b.bytes, b.packets)?;
        let body = ObservationBody {
            network: checked_network(&b.network)?,
            epoch: b.epoch,
            node: NodeKey::from_slice(&b.node_key).map_err(RecordError::Key)?,
            tenant: checked_tenant(&b.tenant)?,
            direction: direction_from_pb(b.direction)?,
            bytes: b.bytes,
            packets: b.packets,
            observer: NodeKey::from_slice(&b.observer_key).map_err(RecordError::Key)?,
        };
        Ok(Self {
            body,
            signature: parse_signature(&m.signature)?,
        })
    }

    /// The wire form.
    pub fn to_pb(&self) -> pb::SignedObservation {
        let b = &self.body;
        pb::SignedObservation {
            body: Some(pb::ObservationBody {
                version: RECORD_VERSION,
                network: b.network.clone(),
                epoch: b.epoch,
                node_key: b.node.0.to_vec(),
                tenant: b.tenant.clone(),
                direction: direction_to_pb(b.direction),
                bytes: b.bytes,
                packets: b.packets,
                observer_key: b.observer.0.to_vec(),
            }),
            signature: self.signature.to_bytes().to_vec(),
        }
    }
}

/// The signing bytes records and observations share: domain tag, schema version, network,
/// the entry's key (epoch, node, tenant, direction) and the counts. A record then appends
/// its sequence, an observation its observer.
fn counted(domain: &str, network: &str, key: &RecordKey, bytes: u64, packets: u64) -> Canonical {
    Canonical::new(domain)
        .u32(RECORD_VERSION)
        .str(network)
        .u64(key.epoch)
        .fixed(&key.node.0)
        .str(&key.tenant)
        .u8(direction_code(key.direction))
        .u64(bytes)
        .u64(packets)
}

/// Why a record or observation is malformed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No body.
    #[error("missing body")]
    MissingBody,
    /// A schema version this ledger does not know.
    #[error("unsupported schema version {0} (this ledger accepts {RECORD_VERSION})")]
    Version(u32),
    /// Not a DNS subdomain of at most 253 bytes.
    #[error("network {0:?} is not a DNS subdomain name")]
    Network(String),
    /// Not a DNS label.
    #[error("tenant {0:?} is not a DNS label")]
    Tenant(String),
    /// A key field of the wrong size or form.
    #[error("key: {0}")]
    Key(KeyError),
    /// Unspecified or unknown direction.
    #[error("direction {0} is neither uplink (1) nor downlink (2)")]
    Direction(i32),
    /// More packets than bytes: every packet carries at least one byte.
    #[error("{packets} packets cannot fit in {bytes} bytes")]
    Counts {
        /// Bytes claimed.
        bytes: u64,
        /// Packets claimed.
        packets: u64,
    },
    /// No signature at all.
    #[error("no signature")]
    Unsigned,
    /// A signature that is not 64 bytes.
    #[error("signature must be 64 bytes, got {0}")]
    SignatureLength(usize),
    /// A record id that is not `<epoch>/<node hex>/<tenant>/<up|down>`.
    #[error("{0:?} is not <epoch>/<node hex>/<tenant>/<up|down>")]
    KeySyntax(String),
}

impl RecordError {
    /// The refusal reason of an item this error refuses.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Unsigned => Reason::Unsigned,
            _ => Reason::Malformed,
        }
    }

    /// Short label for metrics: the [`reason`](Self::reason)'s.
    pub fn label(&self) -> &'static str {
        self.reason().label()
    }
}

fn check_version(version: u32) -> Result<(), RecordError> {
    if version == RECORD_VERSION {
        Ok(())
    } else {
        Err(RecordError::Version(version))
    }
}

fn check_counts(bytes: u64, packets: u64) -> Result<(), RecordError> {
    if packets <= bytes {
        Ok(())
    } else {
        Err(RecordError::Counts { bytes, packets })
    }
}

fn parse_signature(bytes: &[u8]) -> Result<Signature, RecordError> {
    if bytes.is_empty() {
        return Err(RecordError::Unsigned);
    }
    Signature::from_slice(bytes).map_err(|_| RecordError::SignatureLength(bytes.len()))
}

fn checked_network(name: &str) -> Result<String, RecordError> {
    let ok = (1..=253).contains(&name.len())
        && name.split('.').all(is_dns_label)
        && !name.starts_with('.')
        && !name.ends_with('.');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(RecordError::Network(name.to_owned()))
    }
}

fn checked_tenant(name: &str) -> Result<String, RecordError> {
    check_tenant(name).map(|()| name.to_owned())
}

pub(crate) fn check_tenant(name: &str) -> Result<(), RecordError> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(RecordError::Tenant(name.to_owned()))
    }
}

/// RFC 1123 label: 1-63 of `[a-z0-9-]`, starting and ending alphanumeric.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Verifier;

    use super::*;

    fn body(key: &SigningKey) -> RecordBody {
        RecordBody {
            network: "net-a".into(),
            epoch: 42,
            node: NodeKey::of(key),
            tenant: "tenant-a".into(),
            direction: Direction::Uplink,
            bytes: 1500,
            packets: 3,
            sequence: 7,
        }
    }

    /// What `observer` saw of the record's traffic: the same slot and counts.
    fn observed(b: &RecordBody, observer: NodeKey) -> ObservationBody {
        ObservationBody {
            network: b.network.clone(),
            epoch: b.epoch,
            node: b.node,
            tenant: b.tenant.clone(),
            direction: b.direction,
            bytes: b.bytes,
            packets: b.packets,
            observer,
        }
    }

    #[test]
    fn wire_round_trip_keeps_signature_valid() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = body(&key).sign(&key);
        let back = SignedRecord::from_pb(&signed.to_pb()).unwrap();
        assert_eq!(back, signed);
        let bytes = back.body.signing_bytes();
        assert!(key.verifying_key().verify(&bytes, &back.signature).is_ok());
    }

    #[test]
    fn every_field_is_covered_by_the_signing_bytes() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let base = body(&key);
        let variants = [
            RecordBody {
                network: "net-b".into(),
                ..base.clone()
            },
            RecordBody {
                epoch: 43,
                ..base.clone()
            },
            RecordBody {
                node: NodeKey([9; 32]),
                ..base.clone()
            },
            RecordBody {
                tenant: "tenant-b".into(),
                ..base.clone()
            },
            RecordBody {
                direction: Direction::Downlink,
                ..base.clone()
            },
            RecordBody {
                bytes: 1501,
                ..base.clone()
            },
            RecordBody {
                packets: 4,
                ..base.clone()
            },
            RecordBody {
                sequence: 8,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.signing_bytes(), base.signing_bytes(), "{v:?}");
        }
    }

    #[test]
    fn record_and_observation_bytes_never_coincide() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let b = body(&key);
        let obs = observed(&b, b.node);
        assert_ne!(obs.signing_bytes()[..20], b.signing_bytes()[..20]);
    }

    /// Signatures depend on these bytes: a change here breaks every signed record.
    #[test]
    fn signing_bytes_are_pinned() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let b = body(&key);
        let obs = observed(&b, NodeKey([9; 32]));
        let node = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
        // Version 1, "net-a", epoch 42, the node, "tenant-a"; uplink (1) and the counts follow.
        let shared = format!(
            "000000010005{}000000000000002a{node}0008{}",
            hex::encode("net-a"),
            hex::encode("tenant-a")
        );
        let counts = "00000000000005dc0000000000000003";
        assert_eq!(
            hex::encode(b.signing_bytes()),
            format!(
                "{}00{shared}01{counts}0000000000000007",
                hex::encode(RECORD_DOMAIN)
            )
        );
        assert_eq!(
            hex::encode(obs.signing_bytes()),
            format!(
                "{}00{shared}01{counts}{}",
                hex::encode(OBSERVATION_DOMAIN),
                "09".repeat(32)
            )
        );
    }

    #[test]
    fn malformed_records_are_refused_with_reasons() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let good = body(&key).sign(&key).to_pb();
        type Mutation = fn(&mut pb::SignedRecord);
        let cases: Vec<(Mutation, &str)> = vec![
            (|m| m.body = None, "missing body"),
            (|m| m.body.as_mut().unwrap().version = 2, "version"),
            (
                |m| m.body.as_mut().unwrap().network = "Net_A".into(),
                "network",
            ),
            (|m| m.body.as_mut().unwrap().tenant = "-x".into(), "tenant"),
            (
                |m| m.body.as_mut().unwrap().tenant = String::new(),
                "tenant",
            ),
            (|m| m.body.as_mut().unwrap().node_key = vec![1; 31], "key"),
            (|m| m.body.as_mut().unwrap().direction = 0, "direction"),
            (|m| m.body.as_mut().unwrap().packets = 2000, "packets"),
            (|m| m.signature = vec![1; 63], "64 bytes"),
        ];
        for (mutate, want) in cases {
            let mut m = good.clone();
            mutate(&mut m);
            let err = SignedRecord::from_pb(&m).unwrap_err();
            assert!(
                err.to_string().contains(want),
                "{err} should mention {want}"
            );
            assert_eq!(err.label(), "malformed");
        }
        let mut unsigned = good;
        unsigned.signature.clear();
        assert_eq!(
            SignedRecord::from_pb(&unsigned).unwrap_err().label(),
            "unsigned"
        );
    }

    #[test]
    fn record_key_bytes_sort_like_keys_and_round_trip() {
        let k = |epoch, node: u8, direction, tenant: &str| RecordKey {
            epoch,
            node: NodeKey([node; 32]),
            direction,
            tenant: tenant.into(),
        };
        let mut keys = vec![
            k(2, 1, Direction::Uplink, "a"),
            k(1, 2, Direction::Uplink, "a"),
            k(1, 1, Direction::Downlink, "a"),
            k(1, 1, Direction::Uplink, "ab"),
            k(1, 1, Direction::Uplink, "a"),
            k(256, 0, Direction::Uplink, "z"),
        ];
        let mut by_bytes = keys.clone();
        keys.sort();
        by_bytes.sort_by_key(RecordKey::to_bytes);
        assert_eq!(keys, by_bytes);
        for key in &keys {
            assert_eq!(RecordKey::from_bytes(&key.to_bytes()).as_ref(), Some(key));
            assert_eq!(key.to_string().parse::<RecordKey>().unwrap(), *key);
        }
        assert!("1/xx/a/up".parse::<RecordKey>().is_err());
        assert!("1/a/up".parse::<RecordKey>().is_err());
    }
}
