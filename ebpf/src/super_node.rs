//! The super-node datapath: meters tenant traffic per edge, to attest edge claims. Uplink
//! comes out of its edges' tunnels, downlink goes back into them.

use std::collections::BTreeMap;
use std::fmt;

use aya::maps::xdp::DevMapHash;
use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap};

use crate::abi::{Addr, Counter, EdgeKey, RawNextHop, direction_from_raw, ip_from16};
use crate::bpffs::{OnMismatch, PinDir, PinnedMap};
use crate::datapath::{self, Datapath, Role};
use crate::layout::Layout;
use crate::prefixes::TenantTable;
use crate::stats::{read_counters, read_stats};
use crate::tenants::tenant_pins;
use crate::tunnel::{add_tx_port, peer_key, set_peers};
use crate::xdp::{Loaded, ObjectSpec};
use crate::{EdgeNode, EdgeTenantCounter, Error, Hook, SuperStats, TenantPrefixes};
use hsn_core::TenantId;

static SUPER: ObjectSpec = ObjectSpec {
    program: "hsn_super",
    bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/super.bpf.o")),
    tc_bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/super_tc.bpf.o")),
    pinned: &[
        PinnedMap {
            name: "super_counters",
            pin: "super_counters",
            on_mismatch: OnMismatch::Refuse,
        },
        // Outcome counts, not metering: a build with other outcomes starts them afresh.
        PinnedMap {
            name: "super_stats",
            pin: "super_stats",
            on_mismatch: OnMismatch::Replace,
        },
        PinnedMap {
            name: "super_edges",
            pin: "super_edges",
            on_mismatch: OnMismatch::Replace,
        },
        PinnedMap {
            name: "super_tx_ports",
            pin: "super_tx_ports",
            on_mismatch: OnMismatch::Replace,
        },
        // Learned UE → edge: a restarted agent keeps sending downlink where it went.
        PinnedMap {
            name: "ue_edge",
            pin: "super_ue_edge",
            on_mismatch: OnMismatch::Replace,
        },
    ],
    tenant_pins: &SUPER_TENANT_PINS,
};

static SUPER_TENANT_PINS: [PinnedMap; 6] = tenant_pins!("super");

/// Load-time settings of the super-node program.
#[derive(Clone, Debug, Default)]
pub struct SuperConfig {
    /// Where counters, state maps and XDP links are pinned; `None` keeps them only as long
    /// as the datapath (and detaches on drop).
    pub pin: Option<PinDir>,
}

/// The loaded super-node program (`hsn_super`) and its maps: meters tenant traffic per
/// (edge, tenant, direction).
pub type SuperDatapath = Datapath<SuperMaps>;

/// The maps only the super-node program has.
pub struct SuperMaps {
    counters: PerCpuHashMap<MapData, EdgeKey, Counter>,
    stats: PerCpuArray<MapData, u64>,
    edges: HashMap<MapData, Addr, RawNextHop>,
    tx_ports: DevMapHash<MapData>,
    ue_edge: HashMap<MapData, Addr, Addr>,
}

impl Role for SuperMaps {
    const NAME: &'static str = "SuperDatapath";

    fn take(loaded: &mut Loaded) -> Result<Self, Error> {
        Ok(Self {
            counters: loaded.take_map("super_counters")?,
            stats: loaded.take_map("super_stats")?,
            edges: loaded.take_map("super_edges")?,
            tx_ports: loaded.take_map("super_tx_ports")?,
            ue_edge: loaded.take_map("ue_edge")?,
        })
    }
}

// Manual: aya's per-CPU and devmap types have no Debug.
impl fmt::Debug for SuperMaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuperMaps").finish_non_exhaustive()
    }
}

impl SuperDatapath {
    /// Loads and verifies the XDP program, reusing pinned counters when `config.pin` has
    /// them.
    pub fn load(config: &SuperConfig) -> Result<Self, Error> {
        Self::load_with_hook(config, Hook::Xdp)
    }

    /// Loads and verifies the program built for `hook`. Both hooks' programs share the pinned
    /// maps (counters, edges, learned UEs, tenants) of `config.pin`.
    pub fn load_with_hook(config: &SuperConfig, hook: Hook) -> Result<Self, Error> {
        datapath::load(&SUPER, hook, config.pin.as_ref(), &[])
    }

    /// Replaces the whole tenant prefix set; no packet sees a prefix missing mid-update.
    pub fn set_tenants(&mut self, tenants: &[TenantPrefixes]) -> Result<(), Error> {
        let table = TenantTable::build(tenants)?;
        // The super node counts per (edge, tenant) in a hash: no slots.
        self.tenants.replace(Layout::build(&table, |_| 0))
    }

    /// Replaces the edges this super node serves: their tunnels' uplink is counted and
    /// relayed, downlink to their UEs is tunnelled back along each one's
    /// [`route`](EdgeNode::route) (an edge without one is still counted, its downlink is
    /// left to the kernel).
    pub fn set_edges(&mut self, edges: &[EdgeNode]) -> Result<(), Error> {
        let mut desired = BTreeMap::new();
        for edge in edges {
            let raw = match edge.route {
                Some(route) if route.remote != edge.addr => {
                    return Err(Error::EdgeRouteMismatch {
                        edge: edge.addr,
                        remote: route.remote,
                    });
                }
                Some(route) => {
                    add_tx_port(&mut self.maps.tx_ports, route.ifindex)?;
                    route.to_raw()
                }
                None => RawNextHop::default(),
            };
            desired.insert(peer_key(edge.addr), raw);
        }
        set_peers(&mut self.maps.edges, &desired, "super_edges")
    }

    /// The edge each UE's downlink goes to, as the program learned it from uplink.
    pub fn ue_edges(&self) -> Result<BTreeMap<std::net::IpAddr, std::net::IpAddr>, Error> {
        self.maps
            .ue_edge
            .iter()
            .map(|entry| {
                entry
                    .map(|(ue, edge)| (ip_from16(ue.addr), ip_from16(edge.addr)))
                    .map_err(|source| Error::ReadMap {
                        map: "ue_edge",
                        source,
                    })
            })
            .collect()
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
