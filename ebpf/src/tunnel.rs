//! The edge ↔ super tunnel's ends as the agents program them (`include/hsn_tunnel.h`): the
//! edge's next hop toward its super node, a super node's way back to each edge, and the
//! peer sets each side takes tunnel packets from.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use aya::maps::xdp::DevMapHash;
use aya::maps::{HashMap, MapData};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::if_nametoindex;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use crate::Error;
use crate::abi::{Addr, HSN_MAX_EDGES, HSN_TUNNEL_V4_OVERHEAD, HSN_TUNNEL_V6_OVERHEAD, RawNextHop};
use crate::abi::{addr16, ip_from16, pod_bytes};
use crate::outer;
use crate::replace::replace_entries;
use hsn_core::MacAddr;

/// Smallest tunnel MTU accepted: an IPv6 outer header around a minimal IPv6 packet (the
/// IPv6 minimum link MTU, RFC 8200, plus the outer header).
const MIN_TUNNEL_MTU: u32 = 1280 + HSN_TUNNEL_V6_OVERHEAD;

/// One end of an edge ↔ super tunnel, toward the other: the edge's next hop to its super
/// node, or a super node's way back to one of its edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Egress interface index.
    pub ifindex: u32,
    /// The MAC address of the peer, or of the router on the way to it.
    pub dst_mac: MacAddr,
    /// The MAC address to send from (normally the egress interface's).
    pub src_mac: MacAddr,
    /// This node's address: the outer source. The peer knows this node by it.
    pub local: IpAddr,
    /// The peer's address: the outer destination.
    pub remote: IpAddr,
    /// The largest outer packet the path carries (the egress device's MTU unless a route
    /// says less).
    pub mtu: u32,
}

impl NextHop {
    /// A hop out of `ifname` (in the caller's network namespace) to `dst_mac`, tunnelling
    /// from `local` to `remote`, sending from the device's MAC, with the device's MTU.
    pub fn via(
        ifname: &str,
        dst_mac: MacAddr,
        local: IpAddr,
        remote: IpAddr,
    ) -> Result<Self, Error> {
        let interface_err = |source: io::Error| Error::Interface {
            ifname: ifname.to_owned(),
            source,
        };
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(Error::TunnelFamilies { local, remote });
        }
        let ifindex = if_nametoindex(ifname).map_err(|e| interface_err(e.into()))?;
        let src_mac = getifaddrs()
            .map_err(|e| interface_err(e.into()))?
            .filter(|a| a.interface_name == ifname)
            .find_map(|a| a.address?.as_link_addr()?.addr())
            .ok_or_else(|| interface_err(io::Error::other("no link-layer address")))?;
        let hop = Self {
            ifindex,
            dst_mac,
            src_mac: MacAddr(src_mac),
            local,
            remote,
            mtu: device_mtu(ifname).map_err(interface_err)?,
        };
        hop.check_mtu(ifname)?;
        Ok(hop)
    }

    /// The same hop over a path carrying at most `mtu` bytes (a route's MTU below the
    /// device's); never raises it.
    pub fn with_path_mtu(mut self, mtu: u32) -> Result<Self, Error> {
        self.mtu = self.mtu.min(mtu);
        self.check_mtu("path")?;
        Ok(self)
    }

    /// Bytes the outer header adds to every packet.
    pub fn overhead(&self) -> u32 {
        if self.remote.is_ipv4() {
            HSN_TUNNEL_V4_OVERHEAD
        } else {
            HSN_TUNNEL_V6_OVERHEAD
        }
    }

    /// The largest tenant packet the tunnel carries whole.
    pub fn inner_mtu(&self) -> u32 {
        self.mtu - self.overhead()
    }

    fn check_mtu(&self, ifname: &str) -> Result<(), Error> {
        if self.mtu < MIN_TUNNEL_MTU {
            return Err(Error::TunnelMtu {
                ifname: ifname.to_owned(),
                mtu: self.mtu,
                min: MIN_TUNNEL_MTU,
            });
        }
        Ok(())
    }

    pub(crate) fn to_raw(self) -> RawNextHop {
        let (hdr, hdr_sum) = outer::template(self.dst_mac, self.src_mac, self.local, self.remote);
        RawNextHop {
            ifindex: self.ifindex,
            dst_mac: self.dst_mac.0,
            src_mac: self.src_mac.0,
            local: addr16(self.local),
            remote: addr16(self.remote),
            // Device MTUs fit 16 bits (IP's total length does too).
            mtu: u16::try_from(self.mtu).unwrap_or(u16::MAX),
            outer_v6: u8::from(self.remote.is_ipv6()),
            pad: 0,
            hdr_sum,
            hdr: outer::words(&hdr),
        }
    }

    /// Size of the map value the programs read for a hop (`struct hsn_next_hop`).
    #[doc(hidden)]
    pub const VALUE_SIZE: usize = size_of::<RawNextHop>();

    /// The map value the programs read for this hop, as bytes: for code that loads the
    /// objects itself (the datapath bench) and writes the next hop as the agent would.
    #[doc(hidden)]
    pub fn map_value(self) -> [u8; Self::VALUE_SIZE] {
        let raw = self.to_raw();
        let mut out = [0u8; Self::VALUE_SIZE];
        out.copy_from_slice(pod_bytes(&raw));
        out
    }

    /// `None` for the empty entry (ifindex 0).
    pub(crate) fn from_raw(raw: &RawNextHop) -> Option<Self> {
        (raw.ifindex != 0).then(|| Self {
            ifindex: raw.ifindex,
            dst_mac: MacAddr(raw.dst_mac),
            src_mac: MacAddr(raw.src_mac),
            local: ip_from16(raw.local),
            remote: ip_from16(raw.remote),
            mtu: u32::from(raw.mtu),
        })
    }
}

/// The MTU of `ifname` in the caller's network namespace (SIOCGIFMTU: sysfs shows the
/// namespace it was mounted in, not the caller's).
fn device_mtu(ifname: &str) -> io::Result<u32> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    #[allow(unsafe_code)]
    let mut req: nix::libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name) {
        *dst = *src as nix::libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads ifr_name (NUL-terminated above) and writes ifr_mtu of the
    // ifreq we own; the socket is open for the call's duration.
    #[allow(unsafe_code)]
    let rc = unsafe { nix::libc::ioctl(sock.as_raw_fd(), nix::libc::SIOCGIFMTU, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl succeeded, so it wrote the ifru_mtu member.
    #[allow(unsafe_code)]
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::other(format!("negative MTU {mtu}")))
}

/// Makes `ifindex` usable as a redirect target (before any entry naming it is written).
pub(crate) fn add_tx_port(tx_ports: &mut DevMapHash<MapData>, ifindex: u32) -> Result<(), Error> {
    tx_ports
        .insert(ifindex, ifindex, None, 0)
        .map_err(|source| Error::AddTxPort { ifindex, source })
}

/// Makes a peer map hold exactly `desired` (address → value), bounded by its capacity.
pub(crate) fn set_peers<V: aya::Pod + PartialEq>(
    map: &mut HashMap<MapData, Addr, V>,
    desired: &BTreeMap<Addr, V>,
    name: &'static str,
) -> Result<(), Error> {
    if desired.len() > HSN_MAX_EDGES as usize {
        return Err(Error::TooManyPeers {
            count: desired.len(),
            max: HSN_MAX_EDGES,
        });
    }
    let current = map
        .keys()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::ReadMap { map: name, source })?;
    let write_err = |key: &Addr, source| Error::WritePeer {
        addr: ip_from16(key.addr),
        source,
    };
    replace_entries(
        map,
        current,
        desired,
        |map, key, value| map.insert(key, value, 0).map_err(|e| write_err(key, e)),
        |map, key| match map.remove(key) {
            Err(e) if !crate::is_not_found(&e) => Err(write_err(key, e)),
            _ => Ok(()),
        },
    )
}

/// The map key of a peer address.
pub(crate) fn peer_key(addr: IpAddr) -> Addr {
    Addr { addr: addr16(addr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hop_needs_one_family_and_a_device() {
        let err = NextHop::via(
            "lo",
            MacAddr([2, 0, 0, 0, 0, 1]),
            "192.0.2.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::TunnelFamilies { .. }), "{err}");
        let err = NextHop::via(
            "no-such-if0",
            MacAddr([2, 0, 0, 0, 0, 1]),
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Interface { .. }), "{err}");
    }

    #[test]
    fn loopback_mtu_is_read() {
        assert!(device_mtu("lo").unwrap() >= 1500);
    }

    #[test]
    fn raw_round_trip_keeps_families_and_clamps_the_path_mtu() {
        let hop = NextHop {
            ifindex: 3,
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            local: "192.0.2.1".parse().unwrap(),
            remote: "198.51.100.2".parse().unwrap(),
            mtu: 1500,
        };
        assert_eq!(hop.overhead(), 20);
        assert_eq!(hop.inner_mtu(), 1480);
        let raw = hop.to_raw();
        assert_eq!(raw.outer_v6, 0);
        assert_eq!(NextHop::from_raw(&raw), Some(hop));
        assert_eq!(hop.with_path_mtu(1400).unwrap().mtu, 1400);
        assert_eq!(hop.with_path_mtu(9000).unwrap().mtu, 1500);
        assert!(matches!(
            hop.with_path_mtu(576),
            Err(Error::TunnelMtu { .. })
        ));
        let v6 = NextHop {
            local: "2001:db8::1".parse().unwrap(),
            remote: "2001:db8::2".parse().unwrap(),
            ..hop
        };
        assert_eq!(v6.to_raw().outer_v6, 1);
        assert_eq!(v6.inner_mtu(), 1460);
        assert_eq!(NextHop::from_raw(&RawNextHop::default()), None);
    }
}
