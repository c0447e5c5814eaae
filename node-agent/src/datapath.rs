//! The datapath as the agent drives it: one trait over the edge and super programs, so the
//! map writer and the epoch loop are the same for both roles (and testable with a fake).

use std::net::IpAddr;

use hsn_core::{Direction, TenantId};
use hsn_ebpf::{
    AttachMode, EdgeDatapath, EdgeNode, Error, NextHop, ReplacedPin, SuperDatapath, TenantPrefixes,
};

/// Identity of one monotonic counter: edges count per (tenant, direction), super nodes per
/// (edge, tenant, direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    /// Tenant id.
    pub tenant: TenantId,
    /// Traffic direction.
    pub direction: Direction,
    /// Super nodes: the sending edge.
    pub edge: Option<IpAddr>,
}

/// Monotonic (packets, bytes) since the pinned map was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Packets.
    pub packets: u64,
    /// IP bytes.
    pub bytes: u64,
}

/// What the agent needs from a loaded program.
pub trait Datapath: Send + 'static {
    /// Replaces the tenant prefixes.
    fn set_tenants(&mut self, tenants: &[TenantPrefixes]) -> Result<(), Error>;
    /// Edge: points uplink at `hop`, or stops redirecting. Super: nothing to do.
    fn set_next_hop(&mut self, hop: Option<NextHop>) -> Result<(), Error>;
    /// Edge: the super nodes tunnelled downlink is taken from. Super: nothing to do.
    /// (No default here or below: a wrapper must forward every call.)
    fn set_supers(&mut self, supers: &[IpAddr]) -> Result<(), Error>;
    /// Super: its edges and the way back to each. Edge: nothing to do.
    fn set_edges(&mut self, edges: &[EdgeNode]) -> Result<(), Error>;
    /// Every counter, summed over CPUs.
    fn counters(&self) -> Result<Vec<(CounterKey, Totals)>, Error>;
    /// Frames the program could not parse (monotonic).
    fn parse_errors(&self) -> Result<u64, Error>;
    /// Attach the program to `ifname`.
    fn attach(&mut self, ifname: &str) -> Result<AttachMode, Error>;
    /// Detach it from `ifname` (its pinned link removed); the maps stay.
    fn detach(&mut self, ifname: &str) -> Result<(), Error>;
}

/// A program as loaded at start, before the agent attaches it or takes over the previous
/// agent's ([`crate::takeover`]).
pub trait Loaded: Datapath {
    /// Pinned state maps of another build that loading replaced.
    fn replaced_pins(&self) -> &[ReplacedPin];
    /// The mode a previous agent's program runs in on `ifname`, through its pinned link.
    fn pinned_attachment(&self, ifname: &str) -> Option<AttachMode>;
}

impl Loaded for EdgeDatapath {
    fn replaced_pins(&self) -> &[ReplacedPin] {
        EdgeDatapath::replaced_pins(self)
    }

    fn pinned_attachment(&self, ifname: &str) -> Option<AttachMode> {
        EdgeDatapath::pinned_attachment(self, ifname)
    }
}

impl Loaded for SuperDatapath {
    fn replaced_pins(&self) -> &[ReplacedPin] {
        SuperDatapath::replaced_pins(self)
    }

    fn pinned_attachment(&self, ifname: &str) -> Option<AttachMode> {
        SuperDatapath::pinned_attachment(self, ifname)
    }
}

impl Datapath for EdgeDatapath {
    fn set_tenants(&mut self, tenants: &[TenantPrefixes]) -> Result<(), Error> {
        EdgeDatapath::set_tenants(self, tenants)
    }

    fn set_next_hop(&mut self, hop: Option<NextHop>) -> Result<(), Error> {
        match hop {
            Some(hop) if self.next_hop()? != Some(hop) => EdgeDatapath::set_next_hop(self, hop),
            Some(_) => Ok(()),
            None => self.clear_next_hop(),
        }
    }

    fn set_supers(&mut self, supers: &[IpAddr]) -> Result<(), Error> {
        EdgeDatapath::set_supers(self, supers)
    }

    fn set_edges(&mut self, _edges: &[EdgeNode]) -> Result<(), Error> {
        Ok(())
    }

    fn counters(&self) -> Result<Vec<(CounterKey, Totals)>, Error> {
        Ok(EdgeDatapath::counters(self)?
            .into_iter()
            .map(|c| counter(c.tenant, c.direction, None, c.packets, c.bytes))
            .collect())
    }

    fn parse_errors(&self) -> Result<u64, Error> {
        Ok(self.stats()?.parse_errors)
    }

    fn attach(&mut self, ifname: &str) -> Result<AttachMode, Error> {
        EdgeDatapath::attach(self, ifname)
    }

    fn detach(&mut self, ifname: &str) -> Result<(), Error> {
        EdgeDatapath::detach(self, ifname)
    }
}

impl Datapath for SuperDatapath {
    fn set_tenants(&mut self, tenants: &[TenantPrefixes]) -> Result<(), Error> {
        SuperDatapath::set_tenants(self, tenants)
    }

    fn set_next_hop(&mut self, _hop: Option<NextHop>) -> Result<(), Error> {
        Ok(())
    }

    fn set_supers(&mut self, _supers: &[IpAddr]) -> Result<(), Error> {
        Ok(())
    }

    fn set_edges(&mut self, edges: &[EdgeNode]) -> Result<(), Error> {
        SuperDatapath::set_edges(self, edges)
    }

    fn counters(&self) -> Result<Vec<(CounterKey, Totals)>, Error> {
        Ok(SuperDatapath::counters(self)?
            .into_iter()
            .map(|c| counter(c.tenant, c.direction, Some(c.edge), c.packets, c.bytes))
            .collect())
    }

    fn parse_errors(&self) -> Result<u64, Error> {
        Ok(self.stats()?.parse_errors)
    }

    fn attach(&mut self, ifname: &str) -> Result<AttachMode, Error> {
        SuperDatapath::attach(self, ifname)
    }

    fn detach(&mut self, ifname: &str) -> Result<(), Error> {
        SuperDatapath::detach(self, ifname)
    }
}

fn counter(
    tenant: TenantId,
    direction: Direction,
    edge: Option<IpAddr>,
    packets: u64,
    bytes: u64,
) -> (CounterKey, Totals) {
    let key = CounterKey {
        tenant,
        direction,
        edge,
    };
    (key, Totals { packets, bytes })
}

/// The Lease annotation value for how the program is attached.
pub fn mode_label(modes: &[AttachMode]) -> String {
    if modes.is_empty() {
        return "detached".into();
    }
    // Report the weakest mode: one generic attachment makes the node generic.
    if modes.contains(&AttachMode::Generic) {
        "xdp-generic".into()
    } else {
        "xdp-native".into()
    }
}
