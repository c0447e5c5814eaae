//! Ledger test data (feature `ledger-fixtures`, needing only `hsn-ledger-api`, so the
//! ledger's own unit tests can use it): deterministic keys, signed records and
//! observations as agents make them, and a ledger's key files ([`LedgerFiles`]). Used by the
//! tests, the end-to-end suites and the benchmark; an agent would do the same.

mod files;

use ed25519_dalek::SigningKey;
use hsn_core::Direction;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::record::{ObservationBody, RecordBody, SignedObservation, SignedRecord};

pub use files::LedgerFiles;

/// A signing key derived from a number, so tests are reproducible.
pub fn signing_key(seed: u64) -> SigningKey {
    let derived = blake3::derive_key("hsn-ledger testkit signing key", &seed.to_le_bytes());
    SigningKey::from_bytes(&derived)
}

/// What a record or observation is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Network name.
    pub network: String,
    /// Epoch.
    pub epoch: u64,
    /// Tenant name.
    pub tenant: String,
    /// Direction.
    pub direction: Direction,
}

impl Slot {
    /// A slot in `network` for `epoch`, tenant and direction.
    pub fn new(network: &str, epoch: u64, tenant: &str, direction: Direction) -> Self {
        Self {
            network: network.to_owned(),
            epoch,
            tenant: tenant.to_owned(),
            direction,
        }
    }

    /// The edge's signed record of `bytes` (one packet per 1000 bytes, at least one).
    pub fn record(&self, edge: &SigningKey, bytes: u64, sequence: u64) -> SignedRecord {
        RecordBody {
            network: self.network.clone(),
            epoch: self.epoch,
            node: NodeKey::of(edge),
            tenant: self.tenant.clone(),
            direction: self.direction,
            bytes,
            packets: packets(bytes),
            sequence,
        }
        .sign(edge)
    }

    /// The super's signed observation of `edge`'s traffic.
    pub fn observation(&self, sup: &SigningKey, edge: NodeKey, bytes: u64) -> SignedObservation {
        ObservationBody {
            network: self.network.clone(),
            epoch: self.epoch,
            node: edge,
            tenant: self.tenant.clone(),
            direction: self.direction,
            bytes,
            packets: packets(bytes),
            observer: NodeKey::of(sup),
        }
        .sign(sup)
    }
}

fn packets(bytes: u64) -> u64 {
    bytes.div_ceil(1000)
}
