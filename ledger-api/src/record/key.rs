//! Traffic direction and the key that makes an entry unique.

use std::fmt;
use std::str::FromStr;

use hsn_core::Direction;

use super::{RecordError, check_tenant};
use crate::keys::NodeKey;
use crate::pb;

/// Reads the protobuf enum; unspecified and unknown values are malformed.
pub fn direction_from_pb(v: i32) -> Result<Direction, RecordError> {
    match pb::Direction::try_from(v) {
        Ok(pb::Direction::Uplink) => Ok(Direction::Uplink),
        Ok(pb::Direction::Downlink) => Ok(Direction::Downlink),
        _ => Err(RecordError::Direction(v)),
    }
}

/// The protobuf enum value.
pub fn direction_to_pb(d: Direction) -> i32 {
    match d {
        Direction::Uplink => pb::Direction::Uplink as i32,
        Direction::Downlink => pb::Direction::Downlink as i32,
    }
}

/// The byte used in canonical encodings and store keys.
pub fn direction_code(d: Direction) -> u8 {
    match d {
        Direction::Uplink => 1,
        Direction::Downlink => 2,
    }
}

fn direction_from_code(code: u8) -> Option<Direction> {
    Direction::ALL
        .into_iter()
        .find(|d| direction_code(*d) == code)
}

/// What makes an entry unique within a network: (epoch, node, direction, tenant). Field
/// order is the sort order, and [`RecordKey::to_bytes`] sorts the same way.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    /// The epoch.
    pub epoch: u64,
    /// The edge node the counts are about.
    pub node: NodeKey,
    /// Traffic direction.
    pub direction: Direction,
    /// Tenant name.
    pub tenant: String,
}

impl RecordKey {
    /// Store key: epoch (big-endian) first, so one epoch is one contiguous range.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(41 + self.tenant.len());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.node.0);
        out.push(direction_code(self.direction));
        out.extend_from_slice(self.tenant.as_bytes());
        out
    }

    /// Reads a store key back.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 42 {
            return None;
        }
        let epoch = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let node = NodeKey(bytes[8..40].try_into().ok()?);
        let direction = direction_from_code(bytes[40])?;
        let tenant = std::str::from_utf8(&bytes[41..]).ok()?.to_owned();
        Some(Self {
            epoch,
            node,
            direction,
            tenant,
        })
    }

    /// Reads a key from the wire.
    pub fn from_pb(key: &pb::RecordKey) -> Result<Self, RecordError> {
        check_tenant(&key.tenant)?;
        Ok(Self {
            epoch: key.epoch,
            node: NodeKey::from_slice(&key.node_key).map_err(RecordError::Key)?,
            direction: direction_from_pb(key.direction)?,
            tenant: key.tenant.clone(),
        })
    }

    /// The wire form.
    pub fn to_pb(&self) -> pb::RecordKey {
        pb::RecordKey {
            epoch: self.epoch,
            node_key: self.node.0.to_vec(),
            tenant: self.tenant.clone(),
            direction: direction_to_pb(self.direction),
        }
    }
}

/// `<epoch>/<node hex>/<tenant>/<up|down>`, the form `hsnctl ledger proof` takes.
impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.epoch,
            self.node,
            self.tenant,
            self.direction.short()
        )
    }
}

impl FromStr for RecordKey {
    type Err = RecordError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RecordError::KeySyntax(s.to_owned());
        let parts: Vec<&str> = s.split('/').collect();
        let [epoch, node, tenant, direction] = parts.as_slice() else {
            return Err(bad());
        };
        check_tenant(tenant)?;
        Ok(Self {
            epoch: epoch.parse().map_err(|_| bad())?,
            node: node.parse().map_err(RecordError::Key)?,
            direction: direction.parse().map_err(|_| RecordError::Direction(-1))?,
            tenant: (*tenant).to_owned(),
        })
    }
}
