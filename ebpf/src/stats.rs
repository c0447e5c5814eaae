//! Reading per-CPU counters and stats, summed over CPUs.

use std::collections::BTreeMap;

use aya::Pod;
use aya::maps::{MapData, PerCpuArray, PerCpuHashMap};

use crate::Error;
use crate::abi::{Counter, EDGE_STAT_COUNT, SUPER_STAT_COUNT};

/// Edge program outcomes since its stats map was created (`enum hsn_edge_stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeStats {
    /// Every packet seen.
    pub packets: u64,
    /// Malformed or truncated packets (passed, never metered).
    pub parse_errors: u64,
    /// Non-IP packets (ARP, LLDP, ...).
    pub non_ip: u64,
    /// IP packets of no tenant.
    pub non_tenant: u64,
    /// Metered tenant packets.
    pub tenant: u64,
    /// Tenant uplink packets redirected to the super node.
    pub redirected: u64,
    /// Tenant uplink packets passed because no super node is set.
    pub no_next_hop: u64,
    /// Tenant uplink packets passed because the next hop's device is not usable.
    pub redirect_errors: u64,
    /// Every XDP_PASS verdict.
    pub passed: u64,
    /// Tenant packets not metered because the counter map is full.
    pub counter_full: u64,
}

impl EdgeStats {
    /// Field order is `enum hsn_edge_stat`'s; `stat_order_matches_header` checks it.
    #[cfg(test)]
    const NAMES: [&'static str; EDGE_STAT_COUNT] = [
        "PACKETS",
        "PARSE_ERROR",
        "NON_IP",
        "NON_TENANT",
        "TENANT",
        "REDIRECTED",
        "NO_NEXT_HOP",
        "REDIRECT_ERROR",
        "PASSED",
        "COUNTER_FULL",
    ];

    /// What happened between `earlier` and `self` (the counts only grow).
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            packets: self.packets.wrapping_sub(earlier.packets),
            parse_errors: self.parse_errors.wrapping_sub(earlier.parse_errors),
            non_ip: self.non_ip.wrapping_sub(earlier.non_ip),
            non_tenant: self.non_tenant.wrapping_sub(earlier.non_tenant),
            tenant: self.tenant.wrapping_sub(earlier.tenant),
            redirected: self.redirected.wrapping_sub(earlier.redirected),
            no_next_hop: self.no_next_hop.wrapping_sub(earlier.no_next_hop),
            redirect_errors: self.redirect_errors.wrapping_sub(earlier.redirect_errors),
            passed: self.passed.wrapping_sub(earlier.passed),
            counter_full: self.counter_full.wrapping_sub(earlier.counter_full),
        }
    }

    pub(crate) fn from_raw(v: [u64; EDGE_STAT_COUNT]) -> Self {
        let [
            packets,
            parse_errors,
            non_ip,
            non_tenant,
            tenant,
            redirected,
            no_next_hop,
            redirect_errors,
            passed,
            counter_full,
        ] = v;
        Self {
            packets,
            parse_errors,
            non_ip,
            non_tenant,
            tenant,
            redirected,
            no_next_hop,
            redirect_errors,
            passed,
            counter_full,
        }
    }
}

/// Super-node program outcomes since its stats map was created (`enum hsn_super_stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SuperStats {
    /// Every packet seen.
    pub packets: u64,
    /// Malformed or truncated packets.
    pub parse_errors: u64,
    /// Non-IP packets.
    pub non_ip: u64,
    /// IP packets of no tenant.
    pub non_tenant: u64,
    /// Metered tenant packets.
    pub tenant: u64,
    /// Tenant packets whose edge was known by source MAC.
    pub edge_by_mac: u64,
    /// Tenant packets whose edge was taken from the IP source address.
    pub edge_by_addr: u64,
    /// Tenant packets from an unknown edge (not metered).
    pub unknown_edge: u64,
    /// Tenant packets not metered because the counter map is full.
    pub counter_full: u64,
}

impl SuperStats {
    /// Field order is `enum hsn_super_stat`'s; `stat_order_matches_header` checks it.
    #[cfg(test)]
    const NAMES: [&'static str; SUPER_STAT_COUNT] = [
        "PACKETS",
        "PARSE_ERROR",
        "NON_IP",
        "NON_TENANT",
        "TENANT",
        "EDGE_BY_MAC",
        "EDGE_BY_ADDR",
        "UNKNOWN_EDGE",
        "COUNTER_FULL",
    ];

    /// What happened between `earlier` and `self` (the counts only grow).
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            packets: self.packets.wrapping_sub(earlier.packets),
            parse_errors: self.parse_errors.wrapping_sub(earlier.parse_errors),
            non_ip: self.non_ip.wrapping_sub(earlier.non_ip),
            non_tenant: self.non_tenant.wrapping_sub(earlier.non_tenant),
            tenant: self.tenant.wrapping_sub(earlier.tenant),
            edge_by_mac: self.edge_by_mac.wrapping_sub(earlier.edge_by_mac),
            edge_by_addr: self.edge_by_addr.wrapping_sub(earlier.edge_by_addr),
            unknown_edge: self.unknown_edge.wrapping_sub(earlier.unknown_edge),
            counter_full: self.counter_full.wrapping_sub(earlier.counter_full),
        }
    }

    pub(crate) fn from_raw(v: [u64; SUPER_STAT_COUNT]) -> Self {
        let [
            packets,
            parse_errors,
            non_ip,
            non_tenant,
            tenant,
            edge_by_mac,
            edge_by_addr,
            unknown_edge,
            counter_full,
        ] = v;
        Self {
            packets,
            parse_errors,
            non_ip,
            non_tenant,
            tenant,
            edge_by_mac,
            edge_by_addr,
            unknown_edge,
            counter_full,
        }
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
        let s = EdgeStats::from_raw([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(
            (s.packets, s.parse_errors, s.redirect_errors, s.counter_full),
            (1, 2, 8, 10)
        );
        let s = SuperStats::from_raw([1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!((s.edge_by_mac, s.edge_by_addr, s.unknown_edge), (6, 7, 8));
    }

    #[test]
    fn since_subtracts_every_field() {
        let earlier = EdgeStats::from_raw([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        let later = EdgeStats::from_raw([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(
            later.since(&earlier),
            EdgeStats::from_raw([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        );
        let earlier = SuperStats::from_raw([1; 9]);
        let later = SuperStats::from_raw([2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(
            later.since(&earlier),
            SuperStats::from_raw([1, 2, 3, 4, 5, 6, 7, 8, 9])
        );
    }
}
