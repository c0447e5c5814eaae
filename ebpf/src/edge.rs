//! The edge datapath: meters tenant traffic and steers uplink to the assigned super node.

use std::fmt;
use std::io;
use std::time::Duration;

use aya::maps::xdp::DevMapHash;
use aya::maps::{Array, MapData, PerCpuArray};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::if_nametoindex;

use crate::abi::{Counter, HSN_DIR_DOWNLINK, HSN_DIR_UPLINK, RawNextHop};
use crate::bpffs::{OnMismatch, PinDir, PinnedMap};
use crate::datapath::{self, Datapath, Role};
use crate::generation::Generation;
use crate::layout::Layout;
use crate::prefixes::TenantTable;
use crate::slots::Slots;
use crate::stats::{read_array_counter, read_stats};
use crate::tenants::tenant_pins;
use crate::xdp::{Loaded, ObjectSpec};
use crate::{EdgeStats, Error, TenantCounter, TenantPrefixes};
use hsn_core::{Direction, MacAddr, TenantId};

static EDGE: ObjectSpec = ObjectSpec {
    program: "hsn_edge",
    bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/edge.bpf.o")),
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
        PinnedMap {
            name: "edge_stats",
            pin: "edge_stats",
            on_mismatch: OnMismatch::Refuse,
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

/// The super node tenant uplink traffic is sent to: egress device and Ethernet addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Egress interface index.
    pub ifindex: u32,
    /// The super node's MAC address.
    pub dst_mac: MacAddr,
    /// The MAC address to send from (normally the egress interface's).
    pub src_mac: MacAddr,
}

impl NextHop {
    /// A next hop out of `ifname` (in the caller's network namespace), sending from its MAC.
    pub fn via(ifname: &str, dst_mac: MacAddr) -> Result<Self, Error> {
        let interface_err = |source: io::Error| Error::Interface {
            ifname: ifname.to_owned(),
            source,
        };
        let ifindex = if_nametoindex(ifname).map_err(|e| interface_err(e.into()))?;
        let src_mac = getifaddrs()
            .map_err(|e| interface_err(e.into()))?
            .filter(|a| a.interface_name == ifname)
            .find_map(|a| a.address?.as_link_addr()?.addr())
            .ok_or_else(|| interface_err(io::Error::other("no link-layer address")))?;
        Ok(Self {
            ifindex,
            dst_mac,
            src_mac: MacAddr(src_mac),
        })
    }
}

/// The loaded edge program (`hsn_edge`) and its maps: meters tenant traffic per (tenant,
/// direction) and redirects tenant uplink to the [`NextHop`].
pub type EdgeDatapath = Datapath<EdgeMaps>;

/// The maps only the edge program has.
pub struct EdgeMaps {
    slots: Slots,
    counters: PerCpuArray<MapData, Counter>,
    stats: PerCpuArray<MapData, u64>,
    next_hop: Array<MapData, RawNextHop>,
    next_hop_gen: Generation,
    tx_ports: DevMapHash<MapData>,
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
    /// Loads and verifies the program, reusing pinned counters when `config.pin` has them.
    pub fn load(config: &EdgeConfig) -> Result<Self, Error> {
        let globals = [("cfg_redirect_uplink", u8::from(config.redirect_uplink))];
        datapath::load(&EDGE, config.pin.as_ref(), &globals)
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
        self.maps
            .tx_ports
            .insert(hop.ifindex, hop.ifindex, None, 0)
            .map_err(|source| Error::AddTxPort {
                ifindex: hop.ifindex,
                source,
            })?;
        self.write_next_hop(RawNextHop {
            ifindex: hop.ifindex,
            dst_mac: hop.dst_mac.0,
            src_mac: hop.src_mac.0,
        })
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
        Ok((raw.ifindex != 0).then_some(NextHop {
            ifindex: raw.ifindex,
            dst_mac: MacAddr(raw.dst_mac),
            src_mac: MacAddr(raw.src_mac),
        }))
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
    /// Maps change as for `repeat` packets; the frame is not handed back.
    pub fn time_packet(&self, frame: &[u8], repeat: u32) -> Result<Duration, Error> {
        self.loaded.time(frame, repeat)
    }
}
