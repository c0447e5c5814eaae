//! Reading per-CPU counters and stats, summed over CPUs.

use std::collections::BTreeMap;

use aya::Pod;
use aya::maps::{MapData, PerCpuArray, PerCpuHashMap};

use crate::Error;
use crate::abi::{Counter, EDGE_STAT_COUNT, SUPER_STAT_COUNT};

/// Declares one program's outcome counts: a `u64` field per entry of its C stats enum, in
/// the enum's order, each with the entry's name (`stat_order_matches_header` checks them).
macro_rules! outcome_stats {
    (
        $(#[$meta:meta])*
        pub struct $name:ident[$count:ident] {
            $( $(#[$fmeta:meta])* $field:ident = $stat:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: u64, )+
        }

        impl $name {
            /// The C enum's entries, in field order.
            #[cfg(test)]
            const NAMES: [&'static str; $count] = [$($stat),+];

            /// What happened between `earlier` and `self` (the counts only grow).
            pub fn since(&self, earlier: &Self) -> Self {
                Self {
                    $( $field: self.$field.wrapping_sub(earlier.$field), )+
                }
            }

            pub(crate) fn from_raw(v: [u64; $count]) -> Self {
                let [$($field),+] = v;
                Self { $($field),+ }
            }
        }
    };
}

outcome_stats! {
    /// Edge program outcomes since its stats map was created (`enum hsn_edge_stat`).
    pub struct EdgeStats[EDGE_STAT_COUNT] {
        /// Every packet seen.
        packets = "PACKETS",
        /// Malformed or truncated packets (passed, never metered).
        parse_errors = "PARSE_ERROR",
        /// Non-IP packets (ARP, LLDP, ...).
        non_ip = "NON_IP",
        /// IP packets of no tenant.
        non_tenant = "NON_TENANT",
        /// Metered tenant packets.
        tenant = "TENANT",
        /// Tenant uplink packets redirected to the super node.
        redirected = "REDIRECTED",
        /// Tenant uplink packets passed because no super node is set.
        no_next_hop = "NO_NEXT_HOP",
        /// Tenant uplink packets passed because the next hop's device is not usable.
        redirect_errors = "REDIRECT_ERROR",
        /// Every XDP_PASS verdict.
        passed = "PASSED",
        /// Tenant packets not metered because the counter map is full.
        counter_full = "COUNTER_FULL",
        /// Tenant downlink taken out of a super node's tunnel.
        decapsulated = "DECAPSULATED",
        /// Tunnel packets of no known super node (passed untouched, not metered).
        unknown_peer = "UNKNOWN_PEER",
        /// Tenant uplink too big for the tunnel (dropped, not metered).
        too_big = "TOO_BIG",
        /// TCP SYNs whose MSS was lowered to fit the tunnel.
        mss_clamped = "MSS_CLAMPED",
    }
}

outcome_stats! {
    /// Super-node program outcomes since its stats map was created (`enum hsn_super_stat`).
    pub struct SuperStats[SUPER_STAT_COUNT] {
        /// Every packet seen.
        packets = "PACKETS",
        /// Malformed or truncated packets.
        parse_errors = "PARSE_ERROR",
        /// Non-IP packets.
        non_ip = "NON_IP",
        /// IP packets of no tenant.
        non_tenant = "NON_TENANT",
        /// Metered tenant packets.
        tenant = "TENANT",
        /// Tenant uplink taken out of a known edge's tunnel.
        decapsulated = "DECAPSULATED",
        /// Tenant downlink tunnelled to its edge.
        encapsulated = "ENCAPSULATED",
        /// Tunnel packets of no known edge, and plain tenant uplink (not metered).
        unknown_edge = "UNKNOWN_EDGE",
        /// Tenant downlink to a UE no edge is known to serve (passed, not metered).
        unknown_ue = "UNKNOWN_UE",
        /// Tenant downlink whose edge has no way back yet (passed, not metered).
        no_route = "NO_ROUTE",
        /// Tenant downlink too big for the tunnel (dropped, not metered).
        too_big = "TOO_BIG",
        /// Tenant packets not metered because the counter map is full.
        counter_full = "COUNTER_FULL",
    }
}

/// Every entry of a per-CPU stats array, summed over CPUs.
pub(crate) fn read_stats<const N: usize>(
    map: &PerCpuArray<MapData, u64>,
    name: &'static str,
) -> Result<[u64; N], Error> {
    let mut out = [0u64; N];
    for (i, slot) in (0u32..).zip(out.iter_mut()) {
        let per_cpu = map
            .get(&i, 0)
            .map_err(|source| Error::ReadMap { map: name, source })?;
        *slot = per_cpu.iter().fold(0u64, |acc, v| acc.wrapping_add(*v));
    }
    Ok(out)
}

fn sum(per_cpu: &[Counter]) -> Counter {
    per_cpu.iter().fold(Counter::default(), |acc, c| Counter {
        packets: acc.packets.wrapping_add(c.packets),
        bytes: acc.bytes.wrapping_add(c.bytes),
    })
}

/// One counter of a per-CPU array, summed over CPUs.
pub(crate) fn read_array_counter(
    map: &PerCpuArray<MapData, Counter>,
    index: u32,
    name: &'static str,
) -> Result<Counter, Error> {
    let per_cpu = map
        .get(&index, 0)
        .map_err(|source| Error::ReadMap { map: name, source })?;
    Ok(sum(&per_cpu))
}

/// Every counter of a per-CPU hash, summed over CPUs.
pub(crate) fn read_counters<K: Pod + Ord>(
    map: &PerCpuHashMap<MapData, K, Counter>,
    name: &'static str,
) -> Result<BTreeMap<K, Counter>, Error> {
    let mut out = BTreeMap::new();
    for entry in map.iter() {
        let (key, per_cpu) = entry.map_err(|source| Error::ReadMap { map: name, source })?;
        out.insert(key, sum(&per_cpu));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_enum(prefix: &str) -> Vec<String> {
        let header = include_str!("../include/hsn_types.h");
        header
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix(prefix))
            .filter_map(|rest| rest.split(',').next())
            .map(|name| name.trim().to_owned())
            .filter(|name| name != "MAX")
            .collect()
    }

    #[test]
    fn stat_order_matches_header() {
        assert_eq!(header_enum("HSN_EDGE_STAT_"), EdgeStats::NAMES);
        assert_eq!(header_enum("HSN_SUPER_STAT_"), SuperStats::NAMES);
        assert_eq!(EdgeStats::NAMES.len(), EDGE_STAT_COUNT);
        assert_eq!(SuperStats::NAMES.len(), SUPER_STAT_COUNT);
    }

    #[test]
    fn from_raw_maps_positions_to_fields() {
        let s = EdgeStats::from_raw([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(
            (s.packets, s.parse_errors, s.redirect_errors, s.counter_full),
            (1, 2, 8, 10)
        );
        assert_eq!((s.decapsulated, s.mss_clamped), (11, 14));
        let s = SuperStats::from_raw([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!((s.decapsulated, s.unknown_edge, s.too_big), (6, 8, 11));
    }

    #[test]
    fn since_subtracts_every_field() {
        let earlier = EdgeStats::from_raw([1; EDGE_STAT_COUNT]);
        let later = EdgeStats::from_raw(std::array::from_fn(|i| i as u64 + 2));
        assert_eq!(
            later.since(&earlier),
            EdgeStats::from_raw(std::array::from_fn(|i| i as u64 + 1))
        );
        let earlier = SuperStats::from_raw([1; SUPER_STAT_COUNT]);
        let later = SuperStats::from_raw(std::array::from_fn(|i| i as u64 + 2));
        assert_eq!(
            later.since(&earlier),
            SuperStats::from_raw(std::array::from_fn(|i| i as u64 + 1))
        );
    }
}
