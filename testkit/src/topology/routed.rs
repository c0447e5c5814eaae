//! `ue ↔ edge ↔ router ↔ super A1 | super B1 ↔ service`: the edge and its super nodes in
//! different subnets with a router between them, super A1 and super B1 standing for two
//! clusters ("sites"). The tunnel crosses the router; nothing else of the tenants' may.
//! Datapath-agnostic like [`Chain`](super::Chain): namespaces, links, addresses, routes.
//!
//! ```text
//!                     100.64.0.0/24        E: 172.16.1.0/24
//!  ue: ue0 .10 ══════ .1 e-ue :edge: e-r .2 ══════ .1 r-e :router:
//!      fd00::10/64       fd00::1     fd10:1::2         fd10:1::1
//!                                               A: 172.16.2.0/24
//!  router: r-a1 .1 ══════ .2 a1-r :super A1: a1-svc .1 ══ .2 svc-a1 :service
//!          fd10:2::1         fd10:2::2      192.168.21.0/24, fd20:1::/64
//!                                               B: 172.16.3.0/24
//!  router: r-b1 .1 ══════ .2 b1-r :super B1: b1-svc .1 ══ .2 svc-b1 :service
//!          fd10:3::1         fd10:3::2      192.168.22.0/24, fd20:2::/64
//! ```
//!
//! * Links are quiet as in the chain: no ARP/ND, static neighbours, no link-locals; every
//!   link is 1500 bytes.
//! * The UE has default routes via the edge; `ue0` and the service's links have offloads
//!   off (they send into programs that redirect).
//! * The edge's own address is its router-facing one ([`EDGE_V4`], [`EDGE_V6`]): the
//!   tunnel's outer source. Its only routes beyond its links are to the transport network
//!   ([`TRANSPORT_V4`], [`TRANSPORT_V6`]) via the router: no route to any service address,
//!   so tenant uplink reaches the service through the tunnel or not at all.
//! * The router knows its three subnets and nothing else: it cannot forward a plain UE or
//!   service packet, only tunnel packets between the edge and the super nodes.
//! * Each super node routes the transport network via the router and [`SERVICE_NETS`] to
//!   the service; it has no route to the UEs (downlink leaves it only through the tunnel).
//! * The service routes the UE subnets via super A1 ([`Routed::route_ues_via`] moves them):
//!   in the product that route is what the serving super node advertises.
//! * The router's ends ([`Routed::router_ifs`]) take the frames a program redirects into
//!   their links only when NAPI runs on them: the caller attaches an XDP program there
//!   (a bare `XDP_PASS` will do). Not GRO, which would give them NAPI too: GRO merges the
//!   tunnelled segments of a flow, so the router would forward (and a capture there see)
//!   64 KiB frames no wire carries; the router's egress veth re-segments them only because
//!   its peer runs XDP.

use std::collections::BTreeMap;

use hsn_core::MacAddr;

pub use super::plan::{
    EDGE_UE_IF, EDGE_UE_MAC, EDGE_UE_V4, EDGE_UE_V6, UE_IF, UE_MAC, UE_NET_V4, UE_NET_V6, UE_V4,
    UE_V6,
};
use super::{host_prefix, is_v6};
use crate::netns::{Error, LinkStats, Netns, VethEnd, veth};

/// The edge's address on its router-facing link: the tunnel's outer source (IPv4 outer).
pub const EDGE_V4: &str = "172.16.1.2";
/// The edge's IPv6 address on its router-facing link (IPv6 outer).
pub const EDGE_V6: &str = "fd10:1::2";
/// The router's address on the edge's subnet: the edge's gateway to the super nodes.
pub const ROUTER_EDGE_V4: &str = "172.16.1.1";
/// The router's IPv6 address on the edge's subnet.
pub const ROUTER_EDGE_V6: &str = "fd10:1::1";
/// The transport network: the edge's subnet and every site's.
pub const TRANSPORT_V4: &str = "172.16.0.0/16";
/// The transport network, IPv6.
pub const TRANSPORT_V6: &str = "fd10::/16";
/// What every super node routes to the service: service addresses must be in one of them.
pub const SERVICE_NETS: [&str; 3] = ["10.0.0.0/8", "198.51.100.0/24", "2001:db8::/32"];

/// The edge's router-facing interface.
pub const EDGE_ROUTER_IF: &str = "e-r";
/// The router's edge-facing interface.
pub const ROUTER_EDGE_IF: &str = "r-e";

/// `02:48:53:4e:01:<last>`: locally administered, "HSN", plan 1 (the chain's is 0).
const fn mac(last: u8) -> MacAddr {
    MacAddr([0x02, 0x48, 0x53, 0x4e, 0x01, last])
}

/// The MAC of the edge's router-facing interface.
pub const EDGE_ROUTER_MAC: MacAddr = mac(0x01);
/// The MAC of the router's edge-facing interface: the L2 next hop of the edge's tunnel.
pub const ROUTER_EDGE_MAC: MacAddr = mac(0x02);

/// One super node's site ("cluster"): its subnet behind the router and its link to the
/// service. Every subnet is a /24 and a /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    /// `A1`, `B1`.
    pub name: &'static str,
    /// The router's interface to the site.
    pub router_if: &'static str,
    /// Its MAC: the L2 next hop of the super node's way back to the edge.
    pub router_mac: MacAddr,
    /// The router's IPv4 address on the site's subnet.
    pub router_v4: &'static str,
    /// The router's IPv6 address on the site's subnet.
    pub router_v6: &'static str,
    /// The super node's router-facing interface.
    pub super_if: &'static str,
    /// Its MAC.
    pub super_mac: MacAddr,
    /// The super node's IPv4 address: the tunnel's far end (IPv4 outer).
    pub super_v4: &'static str,
    /// The super node's IPv6 address: the tunnel's far end (IPv6 outer).
    pub super_v6: &'static str,
    /// The super node's service-facing interface.
    pub super_service_if: &'static str,
    /// Its MAC.
    pub super_service_mac: MacAddr,
    /// Its IPv4 address: the service's gateway to the UEs while the site serves them.
    pub super_service_v4: &'static str,
    /// Its IPv6 address.
    pub super_service_v6: &'static str,
    /// The service's interface to the site.
    pub service_if: &'static str,
    /// Its MAC.
    pub service_mac: MacAddr,
    /// Its IPv4 address.
    pub service_v4: &'static str,
    /// Its IPv6 address.
    pub service_v6: &'static str,
}

/// Cluster A's super node.
pub const A1: Site = Site {
    name: "A1",
    router_if: "r-a1",
    router_mac: mac(0x11),
    router_v4: "172.16.2.1",
    router_v6: "fd10:2::1",
    super_if: "a1-r",
    super_mac: mac(0x12),
    super_v4: "172.16.2.2",
    super_v6: "fd10:2::2",
    super_service_if: "a1-svc",
    super_service_mac: mac(0x13),
    super_service_v4: "192.168.21.1",
    super_service_v6: "fd20:1::1",
    service_if: "svc-a1",
    service_mac: mac(0x14),
    service_v4: "192.168.21.2",
    service_v6: "fd20:1::2",
};

/// Cluster B's super node, in another subnet behind the same router.
pub const B1: Site = Site {
    name: "B1",
    router_if: "r-b1",
    router_mac: mac(0x21),
    router_v4: "172.16.3.1",
    router_v6: "fd10:3::1",
    super_if: "b1-r",
    super_mac: mac(0x22),
    super_v4: "172.16.3.2",
    super_v6: "fd10:3::2",
    super_service_if: "b1-svc",
    super_service_mac: mac(0x23),
    super_service_v4: "192.168.22.1",
    super_service_v6: "fd20:2::1",
    service_if: "svc-b1",
    service_mac: mac(0x24),
    service_v4: "192.168.22.2",
    service_v6: "fd20:2::2",
};

/// The sites, in the order of [`Routed::supers`].
pub const SITES: [Site; 2] = [A1, B1];

/// What to build: the service's addresses.
#[derive(Clone, Debug, Default)]
pub struct RoutedBuilder {
    service_addrs: Vec<String>,
}

impl RoutedBuilder {
    /// An address the service answers on (added to its loopback); it must be in one of
    /// [`SERVICE_NETS`].
    pub fn service_addr(mut self, addr: &str) -> Self {
        self.service_addrs.push(addr.to_owned());
        self
    }

    /// Creates the namespaces, links, addresses and routes.
    pub fn build(self) -> Result<Routed, Error> {
        let net = Routed {
            ue: Netns::unique("ue")?,
            edge: Netns::unique("edge")?,
            router: Netns::unique("router")?,
            supers: [Netns::unique("superA1")?, Netns::unique("superB1")?],
            service: Netns::unique("svc")?,
        };
        // Before the links exist, so they stay quiet (see Netns::set_router).
        for ns in [&net.edge, &net.router, &net.supers[0], &net.supers[1]] {
            ns.set_router()?;
        }
        net.ue_link()?;
        net.edge_link()?;
        for i in 0..SITES.len() {
            net.site_links(i)?;
        }
        for addr in &self.service_addrs {
            let cidr = host_prefix(addr);
            net.service.ip(&["addr", "add", &cidr, "dev", "lo"])?;
        }
        net.route_ues_via(0)?;
        Ok(net)
    }
}

/// The namespaces of a built topology; dropping it removes every link and route.
#[derive(Debug)]
pub struct Routed {
    /// The user equipment.
    pub ue: Netns,
    /// The edge node.
    pub edge: Netns,
    /// The router between the edge's subnet and the sites'.
    pub router: Netns,
    /// Super A1 and super B1, as [`SITES`].
    pub supers: [Netns; 2],
    /// The tenants' service, linked to both super nodes.
    pub service: Netns,
}

impl Routed {
    /// No service address: add what the test needs.
    pub fn builder() -> RoutedBuilder {
        RoutedBuilder::default()
    }

    /// The router's interfaces: to the edge, then to each site.
    pub fn router_ifs() -> [&'static str; 3] {
        [ROUTER_EDGE_IF, A1.router_if, B1.router_if]
    }

    fn ue_link(&self) -> Result<(), Error> {
        veth(
            VethEnd::new(&self.ue, UE_IF)
                .no_offloads()
                .mac(UE_MAC)
                .addr(&format!("{UE_V4}/24"))
                .addr(&format!("{UE_V6}/64")),
            VethEnd::new(&self.edge, EDGE_UE_IF)
                .mac(EDGE_UE_MAC)
                .addr(&format!("{EDGE_UE_V4}/24"))
                .addr(&format!("{EDGE_UE_V6}/64")),
        )?
        .static_neighbours()?;
        self.ue
            .ip(&["route", "add", "default", "via", EDGE_UE_V4])?;
        self.ue
            .ip(&["-6", "route", "add", "default", "via", EDGE_UE_V6])?;
        Ok(())
    }

    fn edge_link(&self) -> Result<(), Error> {
        veth(
            VethEnd::new(&self.edge, EDGE_ROUTER_IF)
                .mac(EDGE_ROUTER_MAC)
                .addr(&format!("{EDGE_V4}/24"))
                .addr(&format!("{EDGE_V6}/64")),
            VethEnd::new(&self.router, ROUTER_EDGE_IF)
                .mac(ROUTER_EDGE_MAC)
                .addr(&format!("{ROUTER_EDGE_V4}/24"))
                .addr(&format!("{ROUTER_EDGE_V6}/64")),
        )?
        .static_neighbours()?;
        self.edge
            .ip(&["route", "add", TRANSPORT_V4, "via", ROUTER_EDGE_V4])?;
        self.edge
            .ip(&["route", "add", TRANSPORT_V6, "via", ROUTER_EDGE_V6])?;
        Ok(())
    }

    fn site_links(&self, i: usize) -> Result<(), Error> {
        let (site, sup) = (&SITES[i], &self.supers[i]);
        veth(
            VethEnd::new(&self.router, site.router_if)
                .mac(site.router_mac)
                .addr(&format!("{}/24", site.router_v4))
                .addr(&format!("{}/64", site.router_v6)),
            VethEnd::new(sup, site.super_if)
                .mac(site.super_mac)
                .addr(&format!("{}/24", site.super_v4))
                .addr(&format!("{}/64", site.super_v6)),
        )?
        .static_neighbours()?;
        veth(
            VethEnd::new(sup, site.super_service_if)
                .mac(site.super_service_mac)
                .addr(&format!("{}/24", site.super_service_v4))
                .addr(&format!("{}/64", site.super_service_v6)),
            VethEnd::new(&self.service, site.service_if)
                .no_offloads()
                .mac(site.service_mac)
                .addr(&format!("{}/24", site.service_v4))
                .addr(&format!("{}/64", site.service_v6)),
        )?
        .static_neighbours()?;
        let routes = [
            (TRANSPORT_V4, site.router_v4),
            (TRANSPORT_V6, site.router_v6),
        ]
        .into_iter()
        .chain(SERVICE_NETS.iter().map(|&net| {
            let via = if is_v6(net) {
                site.service_v6
            } else {
                site.service_v4
            };
            (net, via)
        }));
        for (dst, via) in routes {
            sup.ip(&["route", "add", dst, "via", via])?;
        }
        Ok(())
    }

    /// Points the service's routes to the UE subnets at site `i`'s super node (`ip route
    /// replace`): what a re-home does to the route the serving super node advertises.
    pub fn route_ues_via(&self, i: usize) -> Result<(), Error> {
        let site = SITES.get(i).ok_or_else(|| Error::Invalid {
            what: "site index (0 or 1)",
            input: i.to_string(),
        })?;
        for (net, via) in [
            (UE_NET_V4, site.super_service_v4),
            (UE_NET_V6, site.super_service_v6),
        ] {
            self.service.ip(&["route", "replace", net, "via", via])?;
        }
        Ok(())
    }

    /// Every veth end: (namespace, interface), the UE link first. Interface names are
    /// unique across the topology.
    pub fn links(&self) -> Vec<(&Netns, &'static str)> {
        let mut out = vec![
            (&self.ue, UE_IF),
            (&self.edge, EDGE_UE_IF),
            (&self.edge, EDGE_ROUTER_IF),
            (&self.router, ROUTER_EDGE_IF),
        ];
        for (site, sup) in SITES.iter().zip(&self.supers) {
            out.push((&self.router, site.router_if));
            out.push((sup, site.super_if));
            out.push((sup, site.super_service_if));
            out.push((&self.service, site.service_if));
        }
        out
    }

    /// Every veth end's counters, by interface name.
    pub fn link_stats(&self) -> Result<BTreeMap<String, LinkStats>, Error> {
        self.links()
            .into_iter()
            .map(|(ns, dev)| Ok((dev.to_owned(), ns.link_stats(dev)?)))
            .collect()
    }

    /// The veth ends that dropped or errored since `before` ([`Routed::link_stats`]), each
    /// with what it lost.
    pub fn lost_since(
        &self,
        before: &BTreeMap<String, LinkStats>,
    ) -> Result<Vec<(String, LinkStats)>, Error> {
        Ok(self
            .link_stats()?
            .into_iter()
            .filter_map(|(dev, now)| {
                let delta = now.since(before.get(&dev)?);
                (delta.lost() != 0).then_some((dev, delta))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_macs_are_distinct() {
        let mut names = vec![UE_IF, EDGE_UE_IF, EDGE_ROUTER_IF, ROUTER_EDGE_IF];
        let mut macs = vec![UE_MAC, EDGE_UE_MAC, EDGE_ROUTER_MAC, ROUTER_EDGE_MAC];
        for s in SITES {
            names.extend([s.router_if, s.super_if, s.super_service_if, s.service_if]);
            macs.extend([
                s.router_mac,
                s.super_mac,
                s.super_service_mac,
                s.service_mac,
            ]);
        }
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "interface names are unique");
        let macs: std::collections::BTreeSet<_> = macs.iter().map(ToString::to_string).collect();
        assert_eq!(macs.len(), n, "MACs are unique");
    }

    #[test]
    fn the_transport_network_holds_every_tunnel_end_and_no_service_net() {
        let contains = |net: &str, addr: &str| {
            let (base, len) = net.split_once('/').unwrap();
            let len: u32 = len.parse().unwrap();
            if is_v6(addr) {
                let (b, a): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
                    (base.parse().unwrap(), addr.parse().unwrap());
                (u128::from(b) ^ u128::from(a)).checked_shr(128 - len) == Some(0)
            } else {
                let (b, a): (std::net::Ipv4Addr, std::net::Ipv4Addr) =
                    (base.parse().unwrap(), addr.parse().unwrap());
                (u32::from(b) ^ u32::from(a)).checked_shr(32 - len) == Some(0)
            }
        };
        for addr in [EDGE_V4, A1.super_v4, B1.super_v4] {
            assert!(contains(TRANSPORT_V4, addr), "{addr}");
            assert!(SERVICE_NETS.iter().all(|n| is_v6(n) || !contains(n, addr)));
        }
        for addr in [EDGE_V6, A1.super_v6, B1.super_v6] {
            assert!(contains(TRANSPORT_V6, addr), "{addr}");
            assert!(SERVICE_NETS.iter().all(|n| !is_v6(n) || !contains(n, addr)));
        }
    }
}
