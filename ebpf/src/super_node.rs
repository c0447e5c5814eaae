//! The super-node datapath: meters tenant traffic per sending edge, to attest edge claims.

use std::collections::BTreeMap;
use std::fmt;

use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap};

use crate::abi::{
    Counter, EdgeAddr, EdgeKey, HSN_MAX_EDGES, MacKey, addr16, direction_from_raw, ip_from16,
};
use crate::bpffs::{OnMismatch, PinDir, PinnedMap};
use crate::datapath::{self, Datapath, Role};
use crate::layout::Layout;
use crate::prefixes::TenantTable;
use crate::replace::replace_entries;
use crate::stats::{read_counters, read_stats};
use crate::tenants::tenant_pins;
use crate::xdp::{Loaded, ObjectSpec};
use crate::{EdgeNode, EdgeTenantCounter, Error, SuperStats, TenantPrefixes};
use hsn_core::{MacAddr, TenantId};

static SUPER: ObjectSpec = ObjectSpec {
    program: "hsn_super",
    bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/super.bpf.o")),
    pinned: &[
        PinnedMap {
            name: "super_counters",
            pin: "super_counters",
            on_mismatch: OnMismatch::Refuse,
        },
        PinnedMap {
            name: "super_stats",
            pin: "super_stats",
            on_mismatch: OnMismatch::Refuse,
        },
        PinnedMap {
            name: "edge_by_mac",
            pin: "super_edge_by_mac",
            on_mismatch: OnMismatch::Replace,
        },
    ],
    tenant_pins: &SUPER_TENANT_PINS,
};

static SUPER_TENANT_PINS: [PinnedMap; 6] = tenant_pins!("super");

/// Load-time settings of the super-node program.
#[derive(Clone, Debug)]
pub struct SuperConfig {
    /// Where counters, state maps and XDP links are pinned; `None` keeps them only as long
    /// as the datapath (and detaches on drop).
    pub pin: Option<PinDir>,
    /// When a frame's source MAC is no known edge, count it under its IP source address
    /// (edges that route or tunnel); `false` counts it as `unknown_edge` instead.
    pub edge_by_addr: bool,
}

impl Default for SuperConfig {
    fn default() -> Self {
        Self {
            pin: None,
            edge_by_addr: true,
        }
    }
}

/// The loaded super-node program (`hsn_super`) and its maps: meters tenant traffic per
/// (edge, tenant, direction).
pub type SuperDatapath = Datapath<SuperMaps>;

/// The maps only the super-node program has.
pub struct SuperMaps {
    counters: PerCpuHashMap<MapData, EdgeKey, Counter>,
    stats: PerCpuArray<MapData, u64>,
    edges: HashMap<MapData, MacKey, EdgeAddr>,
}

impl Role for SuperMaps {
    const NAME: &'static str = "SuperDatapath";

    fn take(loaded: &mut Loaded) -> Result<Self, Error> {
        Ok(Self {
            counters: loaded.take_map("super_counters")?,
            stats: loaded.take_map("super_stats")?,
            edges: loaded.take_map("edge_by_mac")?,
        })
    }
}

// Manual: aya's per-CPU types have no Debug.
impl fmt::Debug for SuperMaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuperMaps").finish_non_exhaustive()
    }
}

impl SuperDatapath {
    /// Loads and verifies the program, reusing pinned counters when `config.pin` has them.
    pub fn load(config: &SuperConfig) -> Result<Self, Error> {
        let globals = [("cfg_edge_by_addr", u8::from(config.edge_by_addr))];
        datapath::load(&SUPER, config.pin.as_ref(), &globals)
    }

    /// Replaces the whole tenant prefix set; no packet sees a prefix missing mid-update.
    pub fn set_tenants(&mut self, tenants: &[TenantPrefixes]) -> Result<(), Error> {
        let table = TenantTable::build(tenants)?;
        // The super node counts per (edge, tenant) in a hash: no slots.
        self.tenants.replace(Layout::build(&table, |_| 0))
    }

    /// Replaces the set of edges recognised by source MAC.
    pub fn set_edges(&mut self, edges: &[EdgeNode]) -> Result<(), Error> {
        let desired = edge_table(edges)?;
        let current = self
            .maps
            .edges
            .keys()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::ReadMap {
                map: "edge_by_mac",
                source,
            })?;
        replace_entries(
            &mut self.maps.edges,
            current,
            &desired,
            |map, key, addr| {
                map.insert(key, addr, 0).map_err(|source| Error::WriteEdge {
                    mac: MacAddr(key.mac),
                    source,
                })
            },
            |map, key| {
                map.remove(key).map_err(|source| Error::WriteEdge {
                    mac: MacAddr(key.mac),
                    source,
                })
            },
        )
    }

    /// Monotonic per (edge, tenant, direction) counters, summed over CPUs, sorted by key.
    pub fn counters(&self) -> Result<Vec<EdgeTenantCounter>, Error> {
        let raw = read_counters(&self.maps.counters, "super_counters")?;
        Ok(raw
            .into_iter()
            // The program only writes known directions; skip anything else in a pinned map.
            .filter_map(|(key, c)| {
                Some(EdgeTenantCounter {
                    edge: ip_from16(key.edge),
                    tenant: TenantId::new(key.tenant)?,
                    direction: direction_from_raw(key.dir)?,
                    packets: c.packets,
                    bytes: c.bytes,
                })
            })
            .collect())
    }

    /// Monotonic outcome counts, summed over CPUs.
    pub fn stats(&self) -> Result<SuperStats, Error> {
        read_stats(&self.maps.stats, "super_stats").map(SuperStats::from_raw)
    }
}

/// Validated MAC → edge table: one edge per MAC, bounded by the map size.
fn edge_table(edges: &[EdgeNode]) -> Result<BTreeMap<MacKey, EdgeAddr>, Error> {
    let mut table = BTreeMap::new();
    for edge in edges {
        let key = MacKey {
            mac: edge.mac.0,
            pad: [0; 2],
        };
        let addr = EdgeAddr {
            addr: addr16(edge.addr),
        };
        if let Some(prev) = table.insert(key, addr).filter(|p| *p != addr) {
            return Err(Error::ConflictingEdge {
                mac: edge.mac,
                first: ip_from16(prev.addr),
                second: edge.addr,
            });
        }
    }
    if table.len() > HSN_MAX_EDGES as usize {
        return Err(Error::TooManyEdges {
            count: table.len(),
            max: HSN_MAX_EDGES,
        });
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn edge(mac: &str, addr: &str) -> EdgeNode {
        EdgeNode {
            mac: mac.parse().unwrap(),
            addr: addr.parse::<IpAddr>().unwrap(),
        }
    }

    #[test]
    fn edge_table_maps_ipv4_and_refuses_a_mac_with_two_addresses() {
        let table = edge_table(&[
            edge("02:00:00:00:00:01", "192.0.2.1"),
            edge("02:00:00:00:00:02", "2001:db8::2"),
            edge("02:00:00:00:00:01", "192.0.2.1"),
        ])
        .unwrap();
        assert_eq!(table.len(), 2);
        let first = table.values().next().unwrap();
        assert_eq!(
            ip_from16(first.addr),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );

        let err = edge_table(&[
            edge("02:00:00:00:00:01", "192.0.2.1"),
            edge("02:00:00:00:00:01", "192.0.2.9"),
        ])
        .unwrap_err();
        assert!(matches!(err, Error::ConflictingEdge { .. }), "{err}");
    }
}
