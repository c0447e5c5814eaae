//! veth pairs between namespaces, with MACs and addresses.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hsn_core::MacAddr;

use super::ns::run_ip;
use super::{Error, Netns};

/// Linux interface names are at most 15 bytes.
const IFNAMSIZ: usize = 15;

/// An interface address with its prefix length, `192.0.2.1/24` or `2001:db8::1/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length of the on-link subnet.
    pub prefix: u8,
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IfAddr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::Invalid {
            what: "interface address (ADDR/PREFIX)",
            input: s.to_owned(),
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(invalid)?;
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(invalid());
        }
        Ok(Self { addr, prefix })
    }
}

/// One end of a veth pair: which namespace, its name, and optionally MAC, addresses, MTU.
#[derive(Debug)]
pub struct VethEnd<'a> {
    ns: &'a Netns,
    ifname: String,
    mac: Option<MacAddr>,
    addrs: Vec<String>,
    mtu: Option<u32>,
    arp: bool,
    offloads: bool,
}

impl<'a> VethEnd<'a> {
    /// The end named `ifname` (at most 15 bytes) in `ns`.
    pub fn new(ns: &'a Netns, ifname: &str) -> Self {
        Self {
            ns,
            ifname: ifname.to_owned(),
            mac: None,
            addrs: Vec::new(),
            mtu: None,
            arp: false,
            offloads: true,
        }
    }

    /// Its MAC address (default: random).
    pub fn mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }

    /// Adds an address, `ADDR/PREFIX`, IPv4 or IPv6 (IPv6 ones without DAD); checked by
    /// [`veth`].
    pub fn addr(mut self, cidr: &str) -> Self {
        self.addrs.push(cidr.to_owned());
        self
    }

    /// Its MTU (default 1500).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Resolve neighbours with ARP/ND and join the IPv6 solicited-node groups (announced
    /// with MLD reports). Off by default (`arp off`): the link then carries only what a test
    /// sends, and every neighbour must be static ([`VethPair::static_neighbours`],
    /// [`Netns::neigh`]).
    pub fn arp(mut self, on: bool) -> Self {
        self.arp = on;
        self
    }

    /// Turns off checksum offload, segmentation offloads and GRO on this end (`ethtool -K
    /// <dev> tx off gso off gro off`; needs `ethtool`), so it sends like a host on a wire:
    /// checksums filled in, one packet per frame. Needed on the sending side of a veth whose
    /// peer XDP-redirects the frames: a redirected frame loses the kernel's "checksum still
    /// to do" mark and arrives with a wrong checksum.
    pub fn no_offloads(mut self) -> Self {
        self.offloads = false;
        self
    }

    fn check(&self) -> Result<Vec<IfAddr>, Error> {
        if self.ifname.is_empty() || self.ifname.len() > IFNAMSIZ || self.ifname.contains('/') {
            return Err(Error::Invalid {
                what: "interface name (1-15 bytes)",
                input: self.ifname.clone(),
            });
        }
        self.addrs.iter().map(|a| a.parse()).collect()
    }

    fn configure(&self, addrs: &[IfAddr]) -> Result<MacAddr, Error> {
        let dev = self.ifname.as_str();
        // No link-local address and (without ARP) no solicited-node groups: nothing for the
        // kernel to announce on its own.
        let arp = if self.arp { "on" } else { "off" };
        self.ns
            .ip(&["link", "set", "dev", dev, "addrgenmode", "none", "arp", arp])?;
        if let Some(mtu) = self.mtu {
            self.ns
                .ip(&["link", "set", "dev", dev, "mtu", &mtu.to_string()])?;
        }
        for addr in addrs {
            let cidr = addr.to_string();
            let mut args = vec!["addr", "add", cidr.as_str(), "dev", dev];
            if addr.addr.is_ipv6() {
                args.push("nodad");
            }
            self.ns.ip(&args)?;
        }
        if !self.offloads {
            self.ns.exec(
                "ethtool",
                &["-K", dev, "tx", "off", "gso", "off", "gro", "off"],
            )?;
        }
        self.ns.ip(&["link", "set", "dev", dev, "up"])?;
        self.ns.mac(dev)
    }
}

/// A created veth pair: each end's namespace name, interface name, MAC and addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VethPair {
    /// Namespace of end `a`.
    pub a_ns: String,
    /// Interface name of end `a`.
    pub a_ifname: String,
    /// MAC address of end `a`.
    pub a_mac: MacAddr,
    /// Addresses of end `a`.
    pub a_addrs: Vec<IfAddr>,
    /// Namespace of end `b`.
    pub b_ns: String,
    /// Interface name of end `b`.
    pub b_ifname: String,
    /// MAC address of end `b`.
    pub b_mac: MacAddr,
    /// Addresses of end `b`.
    pub b_addrs: Vec<IfAddr>,
}

impl VethPair {
    /// Permanent neighbour entries on each end for every address of the other, so traffic
    /// between (or routed via) the two ends needs no ARP/ND.
    pub fn static_neighbours(&self) -> Result<(), Error> {
        let sides = [
            (&self.a_ns, &self.a_ifname, self.b_mac, &self.b_addrs),
            (&self.b_ns, &self.b_ifname, self.a_mac, &self.a_addrs),
        ];
        for (ns, dev, mac, addrs) in sides {
            for addr in addrs {
                let ip = addr.addr.to_string();
                let mac = mac.to_string();
                run_ip(&[
                    "-n",
                    ns,
                    "neigh",
                    "replace",
                    &ip,
                    "lladdr",
                    &mac,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ])?;
            }
        }
        Ok(())
    }
}

/// Creates a veth pair between `a` and `b` (they may be the same namespace), sets MACs,
/// MTUs and addresses, and brings both ends up. It is removed with its namespaces. Unless
/// [`VethEnd::arp`] is set, add neighbours ([`VethPair::static_neighbours`]).
///
/// For native XDP redirects between veths: the program that redirects *into* a veth needs
/// the peer end to run an XDP program (or GRO enabled on it, `ethtool -K <peer> gro on`),
/// otherwise the kernel drops the frames (`tx_dropped`/`rx_dropped`); and whoever sends the
/// frames that get redirected needs [`VethEnd::no_offloads`].
pub fn veth(a: VethEnd<'_>, b: VethEnd<'_>) -> Result<VethPair, Error> {
    let a_addrs = a.check()?;
    let b_addrs = b.check()?;
    let a_mac = a.mac.map(|m| m.to_string());
    let b_mac = b.mac.map(|m| m.to_string());
    let mut args = vec!["link", "add", a.ifname.as_str()];
    if let Some(mac) = &a_mac {
        args.extend(["address", mac.as_str()]);
    }
    args.extend(["type", "veth", "peer", "name", b.ifname.as_str()]);
    args.extend(["netns", b.ns.name()]);
    if let Some(mac) = &b_mac {
        args.extend(["address", mac.as_str()]);
    }
    a.ns.ip(&args)?;
    let a_mac = a.configure(&a_addrs)?;
    let b_mac = b.configure(&b_addrs)?;
    Ok(VethPair {
        a_ns: a.ns.name().to_owned(),
        a_ifname: a.ifname,
        a_mac,
        a_addrs,
        b_ns: b.ns.name().to_owned(),
        b_ifname: b.ifname,
        b_mac,
        b_addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_parses_and_prints() {
        let a: IfAddr = "2001:db8::1/64".parse().unwrap();
        assert_eq!((a.prefix, a.to_string().as_str()), (64, "2001:db8::1/64"));
        for bad in ["10.0.0.1", "10.0.0.1/33", "x/24", "2001:db8::1/129"] {
            assert!(bad.parse::<IfAddr>().is_err(), "{bad:?}");
        }
    }
}
