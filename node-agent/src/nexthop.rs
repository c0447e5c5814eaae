//! Finding a tunnel's next hop toward a peer: an edge's toward its super node, a super
//! node's way back toward each of its edges (egress ifindex, MACs, outer addresses, MTU).
//!
//! The routes table gives only the peer's IP address. In a cluster the kernel already
//! knows how to reach it: `ip route get` names the egress device, the gateway, the
//! preferred source and a route MTU, and the neighbour table has the MAC of the peer (on
//! link) or of the router on the way (routed). When the neighbour is not cached yet, one
//! UDP datagram to the discard port makes the kernel resolve it, and the writer retries.
//! `--next-hop` skips the lookup for standalone set-ups.

use std::collections::BTreeMap;
use std::net::{IpAddr, UdpSocket};

use hsn_core::{MacAddr, ParseMacError, SuperId};
use hsn_ebpf::NextHop;
use serde::Deserialize;
use tokio::process::Command;

use crate::index::SuperTarget;

/// Why no next hop could be found.
#[derive(Debug, thiserror::Error)]
pub enum NextHopError {
    /// `--next-hop` is not `<ifname>,<mac>`.
    #[error("--next-hop {0:?}: want <ifname>,<mac>")]
    Flag(String),
    /// The super node has no address in the routes table yet.
    #[error("super node {0} has no address yet")]
    NoAddress(SuperId),
    /// This node's tunnel address is unknown (no `--advertise-address`, and the kernel
    /// named no preferred source toward the peer).
    #[error("no tunnel address of this node toward {0}: pass --advertise-address")]
    NoLocalAddress(IpAddr),
    /// Running or parsing `ip` failed.
    #[error("`ip {args}`: {reason}")]
    Ip {
        /// The arguments.
        args: String,
        /// What went wrong.
        reason: String,
    },
    /// The kernel has no route to the super node.
    #[error("no route to super node {0}")]
    NoRoute(IpAddr),
    /// The neighbour is not resolved yet (a probe was sent).
    #[error("neighbour {0} on {1} not resolved yet")]
    Unresolved(IpAddr, String),
    /// A MAC (flag or neighbour table) that does not parse.
    #[error(transparent)]
    Mac(#[from] ParseMacError),
    /// The egress device was refused by hsn-ebpf.
    #[error(transparent)]
    Datapath(#[from] hsn_ebpf::Error),
}

impl NextHopError {
    /// Every label [`NextHopError::label`] returns.
    pub const LABELS: &[&'static str] = &[
        "flag",
        "no_address",
        "no_local_address",
        "ip",
        "no_route",
        "unresolved",
        "invalid_mac",
        "datapath",
    ];

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Flag(_) => "flag",
            Self::NoAddress(_) => "no_address",
            Self::NoLocalAddress(_) => "no_local_address",
            Self::Ip { .. } => "ip",
            Self::NoRoute(_) => "no_route",
            Self::Unresolved(..) => "unresolved",
            Self::Mac(_) => "invalid_mac",
            Self::Datapath(_) => "datapath",
        }
    }
}

/// How the map writer turns a peer into a next hop.
#[derive(Clone, Debug)]
pub enum NextHops {
    /// `--next-hop`: the same device and neighbour MAC whatever the peer.
    Fixed {
        /// Egress interface.
        ifname: String,
        /// The neighbour's MAC.
        mac: MacAddr,
    },
    /// Per super-node id (tests and static set-ups); no way back to edges.
    PerSuper(BTreeMap<SuperId, NextHop>),
    /// Route and neighbour tables of the kernel.
    Kernel,
}

impl NextHops {
    /// Parses `--next-hop <ifname>,<mac>` (the interface must exist).
    pub fn from_flag(flag: &str) -> Result<Self, NextHopError> {
        let (ifname, mac) = flag
            .split_once(',')
            .ok_or_else(|| NextHopError::Flag(flag.to_owned()))?;
        let mac: MacAddr = mac.parse()?;
        nix::net::if_::if_nametoindex(ifname).map_err(|e| hsn_ebpf::Error::Interface {
            ifname: ifname.to_owned(),
            source: e.into(),
        })?;
        Ok(Self::Fixed {
            ifname: ifname.to_owned(),
            mac,
        })
    }

    /// An edge's next hop toward its super node `target`, tunnelling from `local`.
    pub async fn resolve(
        &self,
        local: Option<IpAddr>,
        target: &SuperTarget,
    ) -> Result<NextHop, NextHopError> {
        if let Self::PerSuper(hops) = self {
            return hops
                .get(&target.id)
                .copied()
                .ok_or_else(|| NextHopError::NoAddress(target.id.clone()));
        }
        let remote = target
            .address
            .ok_or_else(|| NextHopError::NoAddress(target.id.clone()))?;
        self.toward(local, remote).await
    }

    /// A super node's way back to its edge at `edge`, tunnelling from `local`.
    pub async fn way_back(
        &self,
        local: Option<IpAddr>,
        edge: IpAddr,
    ) -> Result<NextHop, NextHopError> {
        match self {
            Self::PerSuper(_) => Err(NextHopError::NoRoute(edge)),
            _ => self.toward(local, edge).await,
        }
    }

    async fn toward(&self, local: Option<IpAddr>, remote: IpAddr) -> Result<NextHop, NextHopError> {
        match self {
            Self::Fixed { ifname, mac } => {
                let local = local.ok_or(NextHopError::NoLocalAddress(remote))?;
                Ok(NextHop::via(ifname, *mac, local, remote)?)
            }
            Self::PerSuper(_) => Err(NextHopError::NoRoute(remote)),
            Self::Kernel => kernel_next_hop(local, remote).await,
        }
    }
}

#[derive(Deserialize)]
struct RouteEntry {
    dev: Option<String>,
    gateway: Option<IpAddr>,
    prefsrc: Option<IpAddr>,
    #[serde(default)]
    metrics: Vec<RouteMetric>,
}

/// One of `ip -j route get`'s metrics; only the MTU matters here.
#[derive(Deserialize)]
struct RouteMetric {
    mtu: Option<u32>,
}

#[derive(Deserialize)]
struct NeighEntry {
    lladdr: Option<String>,
}

async fn ip_json<T: for<'de> Deserialize<'de>>(args: &[&str]) -> Result<Vec<T>, NextHopError> {
    let err = |reason: String| NextHopError::Ip {
        args: args.join(" "),
        reason,
    };
    let out = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .await
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| err(e.to_string()))
}

async fn kernel_next_hop(local: Option<IpAddr>, addr: IpAddr) -> Result<NextHop, NextHopError> {
    let addr_s = addr.to_string();
    let routes: Vec<RouteEntry> = ip_json(&["route", "get", &addr_s]).await?;
    let route = routes.first().ok_or(NextHopError::NoRoute(addr))?;
    let dev = route.dev.clone().ok_or(NextHopError::NoRoute(addr))?;
    let local = local
        .or(route.prefsrc)
        .ok_or(NextHopError::NoLocalAddress(addr))?;
    let neighbour = route.gateway.unwrap_or(addr);
    let neighbour_s = neighbour.to_string();
    let neighs: Vec<NeighEntry> =
        ip_json(&["neigh", "show", "to", &neighbour_s, "dev", &dev]).await?;
    let Some(mac) = neighs.iter().find_map(|n| n.lladdr.as_deref()) else {
        probe(addr);
        return Err(NextHopError::Unresolved(neighbour, dev));
    };
    let hop = NextHop::via(&dev, mac.parse()?, local, addr)?;
    match route.metrics.iter().find_map(|m| m.mtu) {
        Some(mtu) => Ok(hop.with_path_mtu(mtu)?),
        None => Ok(hop),
    }
}

/// Makes the kernel resolve the neighbour: one datagram to the discard port.
fn probe(addr: IpAddr) {
    let bind: IpAddr = if addr.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        [0u16; 8].into()
    };
    if let Ok(socket) = UdpSocket::bind((bind, 0)) {
        let _ = socket.send_to(b"hsn", (addr, 9));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_needs_an_interface_and_a_mac() {
        assert!(matches!(
            NextHops::from_flag("lo"),
            Err(NextHopError::Flag(_))
        ));
        assert!(matches!(
            NextHops::from_flag("lo,zz"),
            Err(NextHopError::Mac(_))
        ));
        assert!(matches!(
            NextHops::from_flag("no-such-if0,02:00:00:00:00:01"),
            Err(NextHopError::Datapath(_))
        ));
    }

    #[tokio::test]
    async fn a_target_without_address_has_no_kernel_next_hop() {
        let target = SuperTarget {
            id: SuperId::new("a", 0),
            address: None,
        };
        let err = NextHops::Kernel.resolve(None, &target).await.unwrap_err();
        assert_eq!(err.label(), "no_address");
    }

    #[tokio::test]
    async fn a_fixed_hop_needs_this_nodes_address() {
        let hops = NextHops::from_flag("lo,02:00:00:00:00:01").unwrap();
        let err = hops
            .way_back(None, "192.0.2.9".parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.label(), "no_local_address");
        let hop = hops
            .way_back(
                Some("192.0.2.1".parse().unwrap()),
                "192.0.2.9".parse().unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(hop.remote.to_string(), "192.0.2.9");
    }
}
