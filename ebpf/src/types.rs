//! Typed values exchanged with the datapath.

use std::net::IpAddr;

use hsn_core::{Direction, TenantId};

use crate::NextHop;

/// Monotonic edge counter for one (tenant, direction), summed over CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantCounter {
    /// Tenant id.
    pub tenant: TenantId,
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
    pub tenant: TenantId,
    /// Traffic direction.
    pub direction: Direction,
    /// Packets since the counter was created.
    pub packets: u64,
    /// IP bytes since the counter was created.
    pub bytes: u64,
}

/// An edge node of a super node: who it takes tunnelled uplink from, and how it sends
/// downlink back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeNode {
    /// The edge's address: its tunnel's outer source, the key its counters are reported
    /// under.
    pub addr: IpAddr,
    /// The way back to the edge (its `remote` is `addr`), once resolved.
    pub route: Option<NextHop>,
}
