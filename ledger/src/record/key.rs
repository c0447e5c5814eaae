//! Traffic direction and the key that makes an entry unique.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{RecordError, check_tenant};
use crate::keys::NodeKey;
use crate::pb;

/// Direction of the traffic relative to the tenant's users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Users toward the network.
    Up = 1,
    /// The network toward users.
    Down = 2,
}

impl Direction {
    /// Reads the protobuf enum; unspecified and unknown values are malformed.
    pub fn from_pb(v: i32) -> Result<Self, RecordError> {
        match pb::Direction::try_from(v) {
            Ok(pb::Direction::Uplink) => Ok(Self::Up),
            Ok(pb::Direction::Downlink) => Ok(Self::Down),
            _ => Err(RecordError::Direction(v)),
        }
    }

    /// The protobuf enum value.
    pub fn to_pb(self) -> i32 {
        match self {
            Self::Up => pb::Direction::Uplink as i32,
            Self::Down => pb::Direction::Downlink as i32,
        }
    }

    /// The byte used in canonical encodings and store keys.
    pub fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Up),
            2 => Some(Self::Down),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Down => "down",
        })
    }
}

impl FromStr for Direction {
    type Err = RecordError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "up" | "uplink" => Ok(Self::Up),
            "down" | "downlink" => Ok(Self::Down),
            _ => Err(RecordError::Direction(-1)),
        }
    }
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
        out.push(self.direction.code());
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
        let direction = Direction::from_code(bytes[40])?;
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
            direction: Direction::from_pb(key.direction)?,
            tenant: key.tenant.clone(),
        })
    }

    /// The wire form.
    pub fn to_pb(&self) -> pb::RecordKey {
        pb::RecordKey {
            epoch: self.epoch,
            node_key: self.node.0.to_vec(),
            tenant: self.tenant.clone(),
            direction: self.direction.to_pb(),
        }
    }
}

/// `<epoch>/<node hex>/<tenant>/<up|down>`, the form `hsnctl ledger proof` takes.
impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.epoch, self.node, self.tenant, self.direction
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
            direction: direction.parse()?,
            tenant: (*tenant).to_owned(),
        })
    }
}
