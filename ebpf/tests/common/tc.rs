//! What the TC tests need beyond `topology.rs` (whose `Datapaths::attach` takes the hook):
//! the programs at an interface's tcx ingress, and GRO switched on or off.

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
