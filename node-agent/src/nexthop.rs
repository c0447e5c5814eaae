//! Finding the next hop (egress ifindex + MACs) of an edge's super node.
//!
//! The routes table gives only the super's IP address. In a cluster the kernel already
//! knows how to reach it: `ip route get` names the egress device (and gateway), and the
//! neighbour table has the MAC. When the neighbour is not cached yet, one UDP datagram to
//! the discard port makes the kernel resolve it, and the writer retries. `--next-hop` skips
//! all of this for standalone set-ups.

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
            Self::Ip { .. } => "ip",
            Self::NoRoute(_) => "no_route",
            Self::Unresolved(..) => "unresolved",
            Self::Mac(_) => "invalid_mac",
            Self::Datapath(_) => "datapath",
        }
    }
}

/// How the map writer turns a super node into a next hop.
#[derive(Clone, Debug)]
pub enum NextHops {
    /// `--next-hop`: the same hop whatever the super node.
    Fixed(NextHop),
    /// Per super-node id (tests and static set-ups).
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
        Ok(Self::Fixed(NextHop::via(ifname, mac)?))
    }

    /// The next hop of `target`.
    pub async fn resolve(&self, target: &SuperTarget) -> Result<NextHop, NextHopError> {
        match self {
            Self::Fixed(hop) => Ok(*hop),
            Self::PerSuper(hops) => hops
                .get(&target.id)
                .copied()
                .ok_or_else(|| NextHopError::NoAddress(target.id.clone())),
            Self::Kernel => {
                let addr = target
                    .address
                    .ok_or_else(|| NextHopError::NoAddress(target.id.clone()))?;
                kernel_next_hop(addr).await
            }
        }
    }
}

#[derive(Deserialize)]
struct RouteEntry {
    dev: Option<String>,
    gateway: Option<IpAddr>,
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

async fn kernel_next_hop(addr: IpAddr) -> Result<NextHop, NextHopError> {
    let addr_s = addr.to_string();
    let routes: Vec<RouteEntry> = ip_json(&["route", "get", &addr_s]).await?;
    let route = routes.first().ok_or(NextHopError::NoRoute(addr))?;
    let dev = route.dev.clone().ok_or(NextHopError::NoRoute(addr))?;
    let neighbour = route.gateway.unwrap_or(addr);
    let neighbour_s = neighbour.to_string();
    let neighs: Vec<NeighEntry> =
        ip_json(&["neigh", "show", "to", &neighbour_s, "dev", &dev]).await?;
    match neighs.iter().find_map(|n| n.lladdr.as_deref()) {
        Some(mac) => Ok(NextHop::via(&dev, mac.parse()?)?),
        None => {
            probe(addr);
            Err(NextHopError::Unresolved(neighbour, dev))
        }
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
        let err = NextHops::Kernel.resolve(&target).await.unwrap_err();
        assert_eq!(err.label(), "no_address");
    }
}
