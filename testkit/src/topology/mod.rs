//! `ue ↔ edge ↔ super 1..n ↔ service`: the namespace chain HSN's datapath runs on in tests
//! and benchmarks, built once here with one addressing plan ([`plan`]: interface names,
//! MACs, addresses). Datapath-agnostic: it builds namespaces, links, addresses and routes;
//! what runs on them is the caller's.
//!
//! ```text
//!  ue: ue0 ══ e-ue :edge: e-s1 ══ s1-e :super 0: s1-svc ══ svc-s1 :service
//!                        e-s2 ══ s2-e :super 1: s2-svc ══ svc-s2
//! ```
//!
//! * Links are quiet: namespaces are created quiet, routers are set before their links
//!   exist, veths have no ARP/ND and static neighbours, so they carry only what a test sends.
//! * The UE's `ue0` and the service's links have offloads off (they send like hosts on a
//!   wire: a frame the edge or a super node redirects would lose an offloaded checksum);
//!   the UE has default routes via the edge.
//! * The edge has its own address ([`EDGE_V4`], [`EDGE_V6`]) on its loopback: the tunnel's
//!   outer source toward any super node.
//! * The super nodes route the UE subnets and the edge's own address to the edge, and
//!   [`SERVICE_NETS`] to the service.
//! * The edge has no route to the service: what it must not forward by itself (tenant
//!   traffic) gets no route; [`ChainBuilder::edge_route`] adds host routes via super 0.
//! * The service answers on [`ChainBuilder::service_addr`]s (its loopback) and routes
//!   replies via super 0.
//!
//! ```no_run
//! # fn demo() -> Result<(), hsn_testkit::netns::Error> {
//! use hsn_testkit::topology::Chain;
//!
//! let chain = Chain::builder()
//!     .supers(2)
//!     .service_addr("10.7.0.10")
//!     .service_addr("198.51.100.10")
//!     .edge_route("198.51.100.10")
//!     .build()?;
//! let before = chain.link_stats()?;
//! // ... attach programs in chain.edge and chain.supers[i], send from chain.ue ...
//! assert!(chain.lost_since(&before)?.is_empty());
//! # Ok(())
//! # }
//! ```

pub mod plan;
pub mod routed;

use std::collections::BTreeMap;

pub use plan::*;

use crate::netns::{Error, LinkStats, Netns, VethEnd, veth};

/// What to build: how many super nodes, the service's addresses, the edge's own routes.
#[derive(Clone, Debug)]
pub struct ChainBuilder {
    supers: usize,
    service_addrs: Vec<String>,
    edge_routes: Vec<String>,
}

impl Default for ChainBuilder {
    fn default() -> Self {
        Self {
            supers: 1,
            service_addrs: Vec::new(),
            edge_routes: Vec::new(),
        }
    }
}

impl ChainBuilder {
    /// The number of super nodes (default 1, at most 9: names and addresses use one digit).
    pub fn supers(mut self, n: usize) -> Self {
        self.supers = n;
        self
    }

    /// An address the service answers on (added to its loopback); it must be in one of
    /// [`SERVICE_NETS`], which the super nodes route to the service.
    pub fn service_addr(mut self, addr: &str) -> Self {
        self.service_addrs.push(addr.to_owned());
        self
    }

    /// A host route on the edge's kernel to `addr` via super 0 (traffic the edge forwards
    /// itself, as for a destination of no tenant).
    pub fn edge_route(mut self, addr: &str) -> Self {
        self.edge_routes.push(addr.to_owned());
        self
    }

    /// Creates the namespaces, links, addresses and routes.
    pub fn build(self) -> Result<Chain, Error> {
        if !(1..=9).contains(&self.supers) {
            return Err(Error::Invalid {
                what: "number of super nodes (1 to 9)",
                input: self.supers.to_string(),
            });
        }
        let chain = Chain {
            ue: Netns::unique("ue")?,
            edge: Netns::unique("edge")?,
            supers: (1..=self.supers)
                .map(|n| Netns::unique(&format!("super{n}")))
                .collect::<Result<_, _>>()?,
            service: Netns::unique("svc")?,
        };
        // Before the links exist, so they stay quiet (see Netns::set_router).
        chain.edge.set_router()?;
        for sup in &chain.supers {
            sup.set_router()?;
        }
        for cidr in [host_prefix(EDGE_V4), host_prefix(EDGE_V6)] {
            chain.edge.ip(&["addr", "add", &cidr, "dev", "lo"])?;
        }
        chain.ue_link()?;
        for i in 0..self.supers {
            chain.super_links(i)?;
        }
        for addr in &self.edge_routes {
            let via = if is_v6(addr) {
                super_edge_v6(0)
            } else {
                super_edge_v4(0)
            };
            let dst = host_prefix(addr);
            chain.edge.ip(&["route", "add", &dst, "via", &via])?;
        }
        for addr in &self.service_addrs {
            let cidr = host_prefix(addr);
            chain.service.ip(&["addr", "add", &cidr, "dev", "lo"])?;
        }
        let svc = &chain.service;
        svc.ip(&["route", "add", UE_NET_V4, "via", &super_service_v4(0)])?;
        svc.ip(&["route", "add", UE_NET_V6, "via", &super_service_v6(0)])?;
        Ok(chain)
    }
}

fn is_v6(addr: &str) -> bool {
    addr.contains(':')
}

/// `addr/32` or `addr/128`.
fn host_prefix(addr: &str) -> String {
    format!("{addr}/{}", if is_v6(addr) { 128 } else { 32 })
}

/// The namespaces of a built chain; dropping it removes every link and route.
#[derive(Debug)]
pub struct Chain {
    /// The user equipment.
    pub ue: Netns,
    /// The edge node.
    pub edge: Netns,
    /// The super nodes, `supers[0]` first.
    pub supers: Vec<Netns>,
    /// The tenants' services.
    pub service: Netns,
}

impl Chain {
    /// One super node, no service address, no edge route: add what the test needs.
    pub fn builder() -> ChainBuilder {
        ChainBuilder::default()
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

    fn super_links(&self, i: usize) -> Result<(), Error> {
        let sup = &self.supers[i];
        veth(
            VethEnd::new(&self.edge, &edge_super_if(i))
                .mac(edge_super_mac(i))
                .addr(&format!("{}/24", edge_super_v4(i)))
                .addr(&format!("{}/64", edge_super_v6(i))),
            VethEnd::new(sup, &super_edge_if(i))
                .mac(super_edge_mac(i))
                .addr(&format!("{}/24", super_edge_v4(i)))
                .addr(&format!("{}/64", super_edge_v6(i))),
        )?
        .static_neighbours()?;
        veth(
            VethEnd::new(sup, &super_service_if(i))
                .mac(super_service_mac(i))
                .addr(&format!("{}/24", super_service_v4(i)))
                .addr(&format!("{}/64", super_service_v6(i))),
            VethEnd::new(&self.service, &service_super_if(i))
                .no_offloads()
                .mac(service_super_mac(i))
                .addr(&format!("{}/24", service_super_v4(i)))
                .addr(&format!("{}/64", service_super_v6(i))),
        )?
        .static_neighbours()?;
        let routes = [
            (UE_NET_V4, edge_super_v4(i)),
            (UE_NET_V6, edge_super_v6(i)),
            (EDGE_V4, edge_super_v4(i)),
            (EDGE_V6, edge_super_v6(i)),
        ]
        .into_iter()
        .chain(SERVICE_NETS.iter().map(|&net| {
            let via = if is_v6(net) {
                service_super_v6(i)
            } else {
                service_super_v4(i)
            };
            (net, via)
        }));
        for (dst, via) in routes {
            sup.ip(&["route", "add", dst, "via", &via])?;
        }
        Ok(())
    }

    /// Every veth end: (namespace, interface), the UE link first.
    pub fn links(&self) -> Vec<(&Netns, String)> {
        let mut out = vec![
            (&self.ue, UE_IF.to_owned()),
            (&self.edge, EDGE_UE_IF.into()),
        ];
        for (i, sup) in self.supers.iter().enumerate() {
            out.push((&self.edge, edge_super_if(i)));
            out.push((sup, super_edge_if(i)));
            out.push((sup, super_service_if(i)));
            out.push((&self.service, service_super_if(i)));
        }
        out
    }

    /// Every veth end's counters, by interface name.
    pub fn link_stats(&self) -> Result<BTreeMap<String, LinkStats>, Error> {
        self.links()
            .into_iter()
            .map(|(ns, dev)| Ok((dev.clone(), ns.link_stats(&dev)?)))
            .collect()
    }

    /// The veth ends that dropped or errored since `before` ([`Chain::link_stats`]), each
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
