//! Typed values exchanged with the datapath.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::Error;
use crate::abi::{DIR_DOWNLINK, DIR_UPLINK};

/// Direction of tenant traffic as the programs classify it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Towards a tenant prefix (matched by destination address).
    Uplink,
    /// From a tenant prefix (matched by source address).
    Downlink,
}

impl Direction {
    pub(crate) fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            DIR_UPLINK => Some(Self::Uplink),
            DIR_DOWNLINK => Some(Self::Downlink),
            _ => None,
        }
    }

    /// A short lowercase name, for labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uplink => "uplink",
            Self::Downlink => "downlink",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidMac {
            input: s.to_owned(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        match parts.next() {
            Some(_) => Err(invalid()),
            None => Ok(Self(out)),
        }
    }
}

/// Monotonic edge counter for one (tenant, direction), summed over CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantCounter {
    /// Tenant id.
    pub tenant: u32,
    /// Traffic direction.
    pub direction: Direction,
    /// Packets since the counter was created.
    pub packets: u64,
    /// IP bytes (IPv4 total length, IPv6 header + payload) since the counter was created.
    pub bytes: u64,
}

/// Monotonic super-node counter for one (edge, tenant, direction), summed over CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeTenantCounter {
    /// The edge node, by its address.
    pub edge: IpAddr,
    /// Tenant id.
    pub tenant: u32,
    /// Traffic direction.
    pub direction: Direction,
    /// Packets since the counter was created.
    pub packets: u64,
    /// IP bytes since the counter was created.
    pub bytes: u64,
}

/// An edge node as the super node recognises it on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeNode {
    /// The source MAC the edge writes when redirecting to this super node.
    pub mac: MacAddr,
    /// The edge's address, the key its counters are reported under.
    pub addr: IpAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_and_rejects_junk() {
        let mac: MacAddr = "02:00:5e:10:00:ff".parse().unwrap();
        assert_eq!(mac, MacAddr([0x02, 0, 0x5e, 0x10, 0, 0xff]));
        assert_eq!(mac.to_string(), "02:00:5e:10:00:ff");
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:ff:01",
            "2:00:5e:10:00:ff",
            "zz:00:5e:10:00:ff",
            "+2:00:5e:10:00:ff",
        ] {
            assert!(
                matches!(bad.parse::<MacAddr>(), Err(Error::InvalidMac { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn raw_directions_map_to_variants() {
        assert_eq!(Direction::from_raw(DIR_UPLINK), Some(Direction::Uplink));
        assert_eq!(Direction::from_raw(DIR_DOWNLINK), Some(Direction::Downlink));
        assert_eq!(Direction::from_raw(7), None);
    }
}
