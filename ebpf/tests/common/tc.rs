//! The chain of `topology.rs` with the programs loaded for TC (`Hook::Tc`: tcx ingress)
//! instead of XDP, on the same interfaces with the same tenants, next hop and ways back.

use anyhow::ensure;
use aya::programs::{SchedClassifier, TcAttachType};
use hsn_ebpf::{
    AttachMode, EdgeConfig, EdgeDatapath, EdgeNode, Hook, NextHop, SuperConfig, SuperDatapath,
};
use hsn_testkit::netns::Netns;

use super::tenants;
use super::topology::{
    Chain, Datapaths, EDGE_ID, edge_hop, edge_super_mac, super_edge_if, super_edge_v4,
    super_service_if,
};

/// [`Datapaths::attach`] for TC: the edge on `e-ue`, `e-s1`, `e-s2`, each super node on its
/// edge- and service-facing veths, every one a tcx ingress link.
pub fn attach_tc(chain: &Chain) -> anyhow::Result<Datapaths> {
    let edge = chain.edge.run(|| -> anyhow::Result<_> {
        let mut dp = EdgeDatapath::load_with_hook(&EdgeConfig::default(), Hook::Tc)?;
        for dev in ["e-ue", "e-s1", "e-s2"] {
            ensure!(dp.attach(dev)? == AttachMode::Tcx, "{dev}: not tcx");
        }
        dp.set_tenants(&tenants())?;
        dp.set_supers(&[super_edge_v4(0).parse()?, super_edge_v4(1).parse()?])?;
        dp.set_next_hop(edge_hop(0)?)?;
        Ok(dp)
    })??;
    let load_super = |i: usize| {
        chain.supers[i].run(|| -> anyhow::Result<_> {
            let mut dp = SuperDatapath::load_with_hook(&SuperConfig::default(), Hook::Tc)?;
            for dev in [super_edge_if(i), super_service_if(i)] {
                ensure!(dp.attach(&dev)? == AttachMode::Tcx, "{dev}: not tcx");
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
    Ok(Datapaths {
        edge,
        supers: [load_super(0)?, load_super(1)?],
    })
}

/// The ids of the programs at the tcx ingress of `ifname` in `ns`, first to last.
pub fn tcx_prog_ids(ns: &Netns, ifname: &str) -> anyhow::Result<Vec<u32>> {
    ns.run(|| -> anyhow::Result<Vec<u32>> {
        let (_, progs) = SchedClassifier::query_tcx(ifname, TcAttachType::Ingress)?;
        Ok(progs.iter().map(|p| p.id()).collect())
    })?
}

/// Turns GRO on (or off) on `dev` in `ns` (`ethtool -K`): a veth then merges the TCP
/// segments it receives, as a NIC's driver does, before TC sees them.
pub fn set_gro(ns: &Netns, dev: &str, on: bool) -> anyhow::Result<()> {
    ns.exec(
        "ethtool",
        &["-K", dev, "gro", if on { "on" } else { "off" }],
    )?;
    Ok(())
}
