//! `ue <-> edge <-> super{1,2} <-> service` (hsn-testkit's [`Chain`]) with the edge and
//! super-node programs attached, and the end-to-end tests' traffic (hsn-testkit's
//! `traffic`) with this crate's tenants.
//!
//! The edge has no kernel route to any tenant prefix: tenant uplink reaches the service only
//! through the XDP redirect to a super node, which routes it (one TTL hop). Non-tenant
//! traffic is routed by the edge's kernel via super 1 (two hops). The service answers via
//! super 1, so downlink always enters the edge from super 1.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use hsn_core::TenantId;
use hsn_ebpf::{
    AttachMode, EdgeConfig, EdgeDatapath, EdgeNode, Hook, NextHop, SuperConfig, SuperDatapath,
};
use hsn_testkit::netns::{Frame, LinkStats};
pub use hsn_testkit::topology::{
    Chain, EDGE_V4, edge_super_if, edge_super_mac, super_edge_if, super_edge_mac, super_edge_v4,
    super_service_if,
};
pub use hsn_testkit::traffic::UeTraffic;
use hsn_testkit::traffic::{self, TcpFlow, UdpEcho};

use super::{A_V4, A_V6, B_V4, B_V6, attach_mode, tenants};

/// A destination in no tenant prefix.
pub const NT_V4: &str = "198.51.100.10";
pub const NT_V6: &str = "2001:db8:ff::10";
/// The edge's identity on the super nodes: its tunnels' outer source.
pub const EDGE_ID: &str = EDGE_V4;
/// Every service address: tenant A, tenant B, non-tenant; IPv4 then IPv6.
pub const SERVICE_ADDRS: [&str; 6] = [A_V4, B_V4, NT_V4, A_V6, B_V6, NT_V6];

/// Two super nodes, the service on [`SERVICE_ADDRS`], the edge routing non-tenant only.
pub fn build_chain() -> anyhow::Result<Chain> {
    let mut chain = Chain::builder().supers(2);
    for addr in SERVICE_ADDRS {
        chain = chain.service_addr(addr);
    }
    // Non-tenant only: the edge's kernel must not be able to route tenant traffic.
    Ok(chain.edge_route(NT_V4).edge_route(NT_V6).build()?)
}

/// Fails naming every veth end that dropped or errored since `before`.
pub fn assert_nothing_dropped(
    chain: &Chain,
    before: &BTreeMap<String, LinkStats>,
) -> anyhow::Result<()> {
    let lost = chain.lost_since(before)?;
    ensure!(lost.is_empty(), "veths dropped or errored: {lost:#?}");
    Ok(())
}

/// The programs, attached: the edge on its UE-facing veth (uplink) and both super-facing
/// veths (tunnelled downlink); each super node on its edge-facing veth (tunnelled uplink)
/// and its service-facing veth (downlink to tunnel back).
#[derive(Debug)]
pub struct Datapaths {
    pub edge: EdgeDatapath,
    pub supers: [SuperDatapath; 2],
}

/// The edge's tunnel to super `i`: out of `e-s<i+1>`, IPv4 from [`EDGE_ID`].
pub fn edge_hop(i: usize) -> anyhow::Result<NextHop> {
    Ok(NextHop::via(
        &edge_super_if(i),
        super_edge_mac(i),
        EDGE_ID.parse()?,
        super_edge_v4(i).parse()?,
    )?)
}

impl Datapaths {
    /// The edge on `e-ue`, `e-s1`, `e-s2`, each super node on its edge- and service-facing
    /// veths, all at `hook` (XDP natively, or TC through tcx ingress links).
    pub fn attach(chain: &Chain, hook: Hook) -> anyhow::Result<Self> {
        let mode = attach_mode(hook);
        let edge = chain.edge.run(|| -> anyhow::Result<_> {
            let mut dp = EdgeDatapath::load_with_hook(&EdgeConfig::default(), hook)?;
            for dev in ["e-ue", "e-s1", "e-s2"] {
                ensure!(dp.attach(dev)? == mode, "{dev}: not {mode:?}");
            }
            dp.set_tenants(&tenants())?;
            dp.set_supers(&[super_edge_v4(0).parse()?, super_edge_v4(1).parse()?])?;
            dp.set_next_hop(edge_hop(0)?)?;
            Ok(dp)
        })??;
        let load_super = |i: usize| {
            chain.supers[i].run(|| -> anyhow::Result<_> {
                let mut dp = SuperDatapath::load_with_hook(&SuperConfig::default(), hook)?;
                // Native XDP also gives the veths the NAPI the redirects need.
                for dev in [super_edge_if(i), super_service_if(i)] {
                    ensure!(dp.attach(&dev)? == mode, "{dev}: not {mode:?}");
                }
                dp.set_tenants(&tenants())?;
                let edge = EDGE_ID.parse()?;
                let back = NextHop::via(
                    &super_edge_if(i),
                    edge_super_mac(i),
                    super_edge_v4(i).parse()?,
                    edge,
                )?;
                dp.set_edges(&[EdgeNode {
                    addr: edge,
                    route: Some(back),
                }])?;
                Ok(dp)
            })?
        };
        Ok(Self {
            edge,
            supers: [load_super(0)?, load_super(1)?],
        })
    }

    /// Points tenant uplink at super `i` (0 or 1): one map write from inside the edge's
    /// namespace, where the devmap resolves the egress ifindex.
    pub fn switch_to(&mut self, chain: &Chain, i: usize) -> anyhow::Result<()> {
        let edge = &mut self.edge;
        chain.edge.run(|| -> anyhow::Result<()> {
            edge.set_next_hop(edge_hop(i)?)?;
            Ok(())
        })?
    }
}

/// Longest-prefix tenant of an address, as the programs decide it.
pub fn tenant_of(addr: IpAddr) -> Option<TenantId> {
    tenants()
        .into_iter()
        .flat_map(|t| t.prefixes.into_iter().map(move |p| (t.tenant, p)))
        .filter(|(_, p)| p.contains(&addr))
        .max_by_key(|(_, p)| p.prefix_len())
        .map(|(tenant, _)| tenant)
}

/// What crossed the UE's link, per tenant and direction as the programs classify it.
pub fn ue_traffic(frames: &[Frame]) -> anyhow::Result<UeTraffic> {
    traffic::ue_traffic(frames, tenant_of)
}

/// Polls `read` until it returns `expected`, at most `timeout`; fails with both values.
pub fn eventually<T: PartialEq + Debug>(
    what: &str,
    timeout: Duration,
    expected: &T,
    mut read: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = read()?;
        if &got == expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{what}: after {timeout:?}\n expected {expected:#?}\n      got {got:#?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One UDP datagram per size from the UE to `dst`, each echoed back, in lock step.
pub fn udp_exchange(chain: &Chain, dst: &str, sizes: &[usize]) -> anyhow::Result<()> {
    let echo = UdpEcho::bind(chain, dst)?;
    for (i, &size) in (0u64..).zip(sizes) {
        echo.round_trip(i, size)?;
    }
    Ok(())
}

/// Sends `len` bytes from the UE to `addr` and closes; returns what the service received.
pub fn tcp_stream(chain: &Chain, addr: &str, len: usize) -> anyhow::Result<u64> {
    let mut flow = TcpFlow::open(chain, addr)?;
    flow.write(len)?;
    flow.close()
}
