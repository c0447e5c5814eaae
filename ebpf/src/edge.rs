//! The edge datapath: meters tenant traffic and steers uplink to the assigned super node.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use aya::maps::xdp::DevMapHash;
use aya::maps::{Array, HashMap, MapData, PerCpuArray};

use crate::abi::{Addr, Counter, HSN_DIR_DOWNLINK, HSN_DIR_UPLINK, RawNextHop};
use crate::bpffs::{OnMismatch, PinDir, PinnedMap};
use crate::datapath::{self, Datapath, Role};
use crate::generation::Generation;
use crate::layout::Layout;
use crate::prefixes::TenantTable;
use crate::slots::Slots;
use crate::stats::{read_array_counter, read_stats};
use crate::tenants::tenant_pins;
use crate::tunnel::{NextHop, add_tx_port, peer_key, set_peers};
use crate::xdp::{Loaded, ObjectSpec};
use crate::{EdgeStats, Error, Hook, TenantCounter, TenantPrefixes};
use hsn_core::{Direction, TenantId};

static EDGE: ObjectSpec = ObjectSpec {
    program: "hsn_edge",
    bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/edge.bpf.o")),
    tc_bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/edge_tc.bpf.o")),
    pinned: &[
        // Renamed from `edge_counters` when it became a slot-indexed array: a pin of the
        // per-tenant hash it replaced is left alone (`hsn-agent cleanup` removes it).
        PinnedMap {
            name: "edge_counters",
            pin: "edge_slot_counters",
            on_mismatch: OnMismatch::Refuse,
        },
        PinnedMap {
            name: "edge_slots",
            pin: "edge_slots",
            on_mismatch: OnMismatch::Refuse,
        },
        // Outcome counts, not metering: a build with other outcomes starts them afresh.
        PinnedMap {
            name: "edge_stats",
            pin: "edge_stats",
            on_mismatch: OnMismatch::Replace,
        },
        PinnedMap {
            name: "next_hop",
            pin: "edge_next_hop",
            on_mismatch: OnMismatch::Replace,
        },
        PinnedMap {
            name: "next_hop_gen",
            pin: "edge_next_hop_gen",
            on_mismatch: OnMismatch::Replace,
        },
        PinnedMap {
            name: "tx_ports",
            pin: "edge_tx_ports",
            on_mismatch: OnMismatch::Replace,
        },
        PinnedMap {
            name: "edge_supers",
            pin: "edge_supers",
            on_mismatch: OnMismatch::Replace,
        },
    ],
    tenant_pins: &EDGE_TENANT_PINS,
};

static EDGE_TENANT_PINS: [PinnedMap; 6] = tenant_pins!("edge");

/// Load-time settings of the edge program.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// Where counters, state maps and XDP links are pinned; `None` keeps them only as long
    /// as the datapath (and detaches on drop).
    pub pin: Option<PinDir>,
    /// Redirect tenant uplink traffic to the super node; `false` meters only.
    pub redirect_uplink: bool,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            pin: None,
            redirect_uplink: true,
        }
    }
}

/// The loaded edge program (`hsn_edge`) and its maps: meters tenant traffic per (tenant,
/// direction), tunnels tenant uplink to the [`NextHop`] and takes tenant downlink out of
/// the tunnels of the network's super nodes.
pub type EdgeDatapath = Datapath<EdgeMaps>;

/// The maps only the edge program has.
pub struct EdgeMaps {
    slots: Slots,
    counters: PerCpuArray<MapData, Counter>,
    stats: PerCpuArray<MapData, u64>,
    next_hop: Array<MapData, RawNextHop>,
    next_hop_gen: Generation,
    tx_ports: DevMapHash<MapData>,
    supers: HashMap<MapData, Addr, u32>,
}

impl Role for EdgeMaps {
    const NAME: &'static str = "EdgeDatapath";

    fn take(loaded: &mut Loaded) -> Result<Self, Error> {
        Ok(Self {
            slots: Slots::load(loaded.take_map("edge_slots")?)?,
            counters: loaded.take_map("edge_counters")?,
            stats: loaded.take_map("edge_stats")?,
            next_hop: loaded.take_map("next_hop")?,
            next_hop_gen: Generation::load(loaded.take_map("next_hop_gen")?, "next_hop_gen")?,
            tx_ports: loaded.take_map("tx_ports")?,
            supers: loaded.take_map("edge_supers")?,
        })
    }
}

// Manual: aya's per-CPU and devmap types have no Debug.
impl fmt::Debug for EdgeMaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeMaps").finish_non_exhaustive()
    }
}

impl EdgeDatapath {
    /// Loads and verifies the XDP program, reusing pinned counters when `config.pin` has
    /// them.
    pub fn load(config: &EdgeConfig) -> Result<Self, Error> {
        Self::load_with_hook(config, Hook::Xdp)
    }

    /// Loads and verifies the program built for `hook`. Both hooks' programs share the pinned
    /// maps (counters, slots, next hop, tenants) of `config.pin`.
    pub fn load_with_hook(config: &EdgeConfig, hook: Hook) -> Result<Self, Error> {
        let globals = [("cfg_redirect_uplink", u8::from(config.redirect_uplink))];
        datapath::load(&EDGE, hook, config.pin.as_ref(), &globals)
    }

    /// Replaces the whole tenant prefix set atomically: a packet is looked up in the old
    /// table or in the new one, never in a mix. On an error the old table stays in use.
    pub fn set_tenants(&mut self, tenants: &[TenantPrefixes]) -> Result<(), Error> {
        let table = TenantTable::build(tenants)?;
        self.maps
            .slots
            .assign(table.v4.values().chain(table.v6.values()).copied())?;
        let slots = &self.maps.slots;
        // Every tenant of the table was just given a slot.
        let layout = Layout::build(&table, |tenant| slots.slot(tenant).unwrap_or_default());
        self.tenants.replace(layout)
    }

    /// Points tenant uplink at a super node: the copy packets do not read is written, then
    /// they are switched to it (no reload; waits up to 10 ms after a previous switch).
    pub fn set_next_hop(&mut self, hop: NextHop) -> Result<(), Error> {
        // The device must be usable before any packet can read a next hop naming it.
        add_tx_port(&mut self.maps.tx_ports, hop.ifindex)?;
        self.write_next_hop(hop.to_raw())
    }

    /// Stops redirecting: tenant uplink goes to the kernel (counted as `no_next_hop`).
    pub fn clear_next_hop(&mut self) -> Result<(), Error> {
        self.write_next_hop(RawNextHop::default())
    }

    /// Writes the copy packets do not read, then switches them to it.
    fn write_next_hop(&mut self, raw: RawNextHop) -> Result<(), Error> {
        let target = self.maps.next_hop_gen.writable();
        self.maps
            .next_hop
            .set(u32::from(target), raw, 0)
            .and_then(|()| self.maps.next_hop_gen.switch_to(target))
            .map_err(|source| Error::WriteNextHop { source })
    }

    /// The current next hop, if any.
    pub fn next_hop(&self) -> Result<Option<NextHop>, Error> {
        let raw = self
            .maps
            .next_hop
            .get(&u32::from(self.maps.next_hop_gen.active()), 0)
            .map_err(|source| Error::ReadMap {
                map: "next_hop",
                source,
            })?;
        Ok(NextHop::from_raw(&raw))
    }

    /// Replaces the super nodes whose tunnels tenant downlink is taken from (every super
    /// node of the network: after a re-home the old one may still have packets in flight).
    pub fn set_supers(&mut self, supers: &[IpAddr]) -> Result<(), Error> {
        let desired: BTreeMap<Addr, u32> = supers.iter().map(|a| (peer_key(*a), 1)).collect();
        set_peers(&mut self.maps.supers, &desired, "edge_supers")
    }

    /// Monotonic per (tenant, direction) counters, summed over CPUs, sorted by key; only
    /// those that counted a packet.
    pub fn counters(&self) -> Result<Vec<TenantCounter>, Error> {
        let mut out = Vec::new();
        for (tenant, slot) in self.maps.slots.iter() {
            for (dir, direction) in [
                (HSN_DIR_UPLINK, Direction::Uplink),
                (HSN_DIR_DOWNLINK, Direction::Downlink),
            ] {
                let c = read_array_counter(&self.maps.counters, slot * 2 + dir, "edge_counters")?;
                // Slots only ever hold tenant ids, never 0.
                if let Some(tenant) = TenantId::new(tenant).filter(|_| c.packets > 0) {
                    out.push(TenantCounter {
                        tenant,
                        direction,
                        packets: c.packets,
                        bytes: c.bytes,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Monotonic outcome counts, summed over CPUs.
    pub fn stats(&self) -> Result<EdgeStats, Error> {
        read_stats(&self.maps.stats, "edge_stats").map(EdgeStats::from_raw)
    }

    /// Runs one frame `repeat` times in the kernel (BPF_PROG_TEST_RUN) and returns the
    /// kernel-measured average time per run, without syscall overhead; for benchmarks.
    /// Maps change as for `repeat` packets; the frame is not handed back. Every repetition
    /// runs on the same buffer, so a frame the program rewrites (a tunnelled hit) is met in
    /// its rewritten form from the second repetition on; the benchmark restores the frame
    /// before each run (`hsn_bench_timed` in `bench.bpf.c`).
    pub fn time_packet(&self, frame: &[u8], repeat: u32) -> Result<Duration, Error> {
        self.loaded.time(frame, repeat)
    }
}
