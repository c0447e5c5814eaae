//! A small frame writer for packet fixtures and benchmarks: Ethernet, 802.1Q/802.1ad, IPv4
//! (options, fragments), IPv6 (extension headers), TCP (flags, options)/UDP/ICMP/ICMPv6,
//! and IP in IP: an outer IPv4 or IPv6 header around any of these, as the edge ↔ super
//! tunnel writes it, or made wrong on purpose. It only writes; tests never parse with it.
//! Lengths are right unless made wrong on purpose. Checksums are left zero (XDP programs
//! do not verify them) unless asked for ([`Packet::checksums`]); an outer IPv4 header's is
//! always computed, as a tunnel end computes it, so expected frames compare byte for byte.
//!
//! ```
//! use hsn_testkit::packet::Packet;
//!
//! let frame = Packet::v4("100.64.0.10", "10.7.0.10").udp(32).build();
//! assert_eq!(frame.len(), 14 + 20 + 8 + 32);
//! let tunnelled = Packet::v6("fd00::10", "2001:db8:7::10")
//!     .udp(32)
//!     .tunnel("192.0.2.1", "198.51.100.2")
//!     .build();
//! assert_eq!(tunnelled.len(), 14 + 20 + 40 + 8 + 32);
//! ```

mod ip;
mod tunnel;

use ip::{Ip, set_v4_checksum};
pub use ip::{internet_checksum, l4_checksum, mss_option};
use tunnel::Tunnel;

/// EtherType IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// EtherType ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// TPID of an 802.1Q (customer) VLAN tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad (service) VLAN tag.
pub const ETH_P_8021AD: u16 = 0x88a8;

/// IPv6 hop-by-hop options header.
pub const IPPROTO_HOPOPTS: u8 = 0;
/// ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IPv4 in IP (RFC 2003): the outer protocol around an IPv4 packet.
pub const IPPROTO_IPIP: u8 = 4;
/// TCP.
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 in IP (RFC 2473, RFC 4213): the outer protocol around an IPv6 packet.
pub const IPPROTO_IPV6: u8 = 41;
/// IPv6 routing header.
pub const IPPROTO_ROUTING: u8 = 43;
/// IPv6 fragment header.
pub const IPPROTO_FRAGMENT: u8 = 44;
/// IPsec authentication header (its length is counted in 4-byte units).
pub const IPPROTO_AH: u8 = 51;
/// ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// IPv6 destination options header.
pub const IPPROTO_DSTOPTS: u8 = 60;

/// TCP flag SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP flag ACK.
pub const TCP_ACK: u8 = 0x10;

/// Where a byte of a built frame belongs, for naming truncation cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Ethernet header (and the first VLAN tag's TPID).
    Ethernet,
    /// VLAN tags.
    Vlan,
    /// The outer IP header of a tunnelled packet, its options or extension headers
    /// included.
    Tunnel,
    /// The fixed IPv4 or IPv6 header (the inner one when tunnelled).
    IpHeader,
    /// IPv4 options.
    IpOptions,
    /// IPv6 extension headers.
    Ipv6Ext,
    /// TCP, UDP or ICMP header.
    L4Header,
    /// Payload and Ethernet padding.
    Payload,
}

/// A frame under construction.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Destination MAC address (default [`IN_DST_MAC`]).
    pub dst_mac: [u8; 6],
    /// Source MAC address (default [`IN_SRC_MAC`]).
    pub src_mac: [u8; 6],
    vlans: Vec<u16>,
    ip: Ip,
    tos: u8,
    proto: u8,
    l4_header: Vec<u8>,
    payload: Vec<u8>,
    pad_to: usize,
    checksums: bool,
    tunnel: Option<Tunnel>,
}

/// The destination MAC of a frame unless set.
pub const IN_DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xee];
/// The source MAC of a frame unless set.
pub const IN_SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

impl Packet {
    fn new(ip: Ip) -> Self {
        Self {
            dst_mac: IN_DST_MAC,
            src_mac: IN_SRC_MAC,
            vlans: Vec::new(),
            ip,
            tos: 0,
            proto: IPPROTO_UDP,
            l4_header: udp_header(),
            payload: Vec::new(),
            pad_to: 0,
            checksums: false,
            tunnel: None,
        }
    }

    /// IPv4 from `src` to `dst`, UDP without payload until told otherwise; panics on an
    /// address that does not parse.
    pub fn v4(src: &str, dst: &str) -> Self {
        let ip = Ip::parse(src, dst);
        assert!(matches!(ip, Ip::V4 { .. }), "{src} -> {dst}: not IPv4");
        Self::new(ip)
    }

    /// IPv6 from `src` to `dst`, UDP without payload until told otherwise; panics on an
    /// address that does not parse.
    pub fn v6(src: &str, dst: &str) -> Self {
        let ip = Ip::parse(src, dst);
        assert!(matches!(ip, Ip::V6 { .. }), "{src} -> {dst}: not IPv6");
        Self::new(ip)
    }

    /// Sets the source MAC address.
    pub fn src_mac(mut self, mac: [u8; 6]) -> Self {
        self.src_mac = mac;
        self
    }

    /// Sets the destination MAC address.
    pub fn dst_mac(mut self, mac: [u8; 6]) -> Self {
        self.dst_mac = mac;
        self
    }

    /// The IPv4 TOS byte or IPv6 traffic class of the packet (the inner one when
    /// tunnelled; the outer header copies it).
    pub fn tos(mut self, tos: u8) -> Self {
        self.tos = tos;
        self
    }

    /// TCP (20-byte header, flags PSH|ACK) with `payload` bytes.
    pub fn tcp(mut self, payload: usize) -> Self {
        self.proto = IPPROTO_TCP;
        self.l4_header = tcp_header(5);
        self.payload = pattern(payload);
        self
    }

    /// TCP with `doff` 32-bit words of header (options are NOPs).
    pub fn tcp_doff(mut self, doff: u8, payload: usize) -> Self {
        self = self.tcp(payload);
        self.l4_header = tcp_header(doff);
        self
    }

    /// Sets the TCP flags byte ([`TCP_SYN`], [`TCP_ACK`], ...); makes the packet TCP
    /// without payload first unless it is TCP already.
    pub fn tcp_flags(mut self, flags: u8) -> Self {
        if self.proto != IPPROTO_TCP || self.l4_header.len() < 20 {
            self = self.tcp(0);
        }
        self.l4_header[13] = flags;
        self
    }

    /// TCP header options, padded with end-of-list zeros to a multiple of 4 bytes (at most
    /// 40); the data offset follows. Ports, flags and payload stay; makes the packet TCP
    /// without payload first unless it is TCP already.
    pub fn tcp_options(mut self, options: &[u8]) -> Self {
        if self.proto != IPPROTO_TCP || self.l4_header.len() < 20 {
            self = self.tcp(0);
        }
        let padded = options.len().div_ceil(4) * 4;
        assert!(padded <= 40, "TCP options are at most 40 bytes");
        self.l4_header.truncate(20);
        self.l4_header[12] = ((5 + padded / 4) as u8) << 4;
        self.l4_header.extend_from_slice(options);
        self.l4_header.resize(20 + padded, 0);
        self
    }

    /// A TCP SYN without payload announcing `mss` (its only option).
    pub fn tcp_syn(self, mss: u16) -> Self {
        self.tcp(0).tcp_flags(TCP_SYN).tcp_options(&mss_option(mss))
    }

    /// UDP with `payload` bytes.
    pub fn udp(mut self, payload: usize) -> Self {
        self.proto = IPPROTO_UDP;
        self.l4_header = udp_header();
        self.payload = pattern(payload);
        self
    }

    /// ICMP echo request, or ICMPv6 echo request on IPv6.
    pub fn icmp(mut self, payload: usize) -> Self {
        let (proto, ty) = match self.ip {
            Ip::V4 { .. } => (IPPROTO_ICMP, 8),
            Ip::V6 { .. } => (IPPROTO_ICMPV6, 128),
        };
        self.proto = proto;
        self.l4_header = vec![ty, 0, 0, 0, 0x12, 0x34, 0, 1];
        self.payload = pattern(payload);
        self
    }

    /// An L4 protocol number with an arbitrary header (possibly too short).
    pub fn raw_l4(mut self, proto: u8, header: Vec<u8>) -> Self {
        self.proto = proto;
        self.l4_header = header;
        self.payload.clear();
        self
    }

    /// Adds a VLAN tag with this TPID (outermost first); VLAN ids are 100, 101, ... Tags
    /// belong to the frame: the outer one when tunnelled.
    pub fn vlan(mut self, tpid: u16) -> Self {
        self.vlans.push(tpid);
        self
    }

    /// Removes every VLAN tag.
    pub fn untagged(mut self) -> Self {
        self.vlans.clear();
        self
    }

    /// IPv4 options (NOP-padded to a multiple of 4 bytes).
    pub fn ip_options(mut self, len: usize) -> Self {
        self.ip.set_options(len);
        self
    }

    /// IPv4: flags/offset; IPv6: appends a fragment header. `offset` is in 8-byte units.
    pub fn fragment(mut self, offset: u16, more: bool) -> Self {
        self.ip.add_fragment(offset, more);
        self
    }

    /// Non-first fragments carry payload only; drops the L4 header.
    pub fn without_l4_header(mut self) -> Self {
        self.l4_header.clear();
        self
    }

    /// Appends an IPv6 extension header of `units` (hdrlen field) with PadN-style zeros.
    pub fn ext(mut self, kind: u8, units: u8) -> Self {
        self.ip.add_ext(kind, units);
        self
    }

    /// Ethernet padding up to `len` bytes (not covered by the IP length).
    pub fn pad_to(mut self, len: usize) -> Self {
        self.pad_to = len;
        self
    }

    /// Payload so the whole frame is exactly `len` bytes.
    pub fn frame_len(mut self, len: usize) -> Self {
        self.payload.clear();
        let without = self.build().len();
        self.payload = pattern(len - without);
        self
    }

    /// Writes the IPv4 header checksum and the TCP, UDP, ICMP or ICMPv6 checksum (over
    /// the pseudo-header of the IP header's addresses; a fragment's over its own bytes) of
    /// the packet (the inner one when tunnelled).
    pub fn checksums(mut self) -> Self {
        self.checksums = true;
        self
    }

    /// Offset of the first IP header in the frame (the outer one when tunnelled).
    pub fn l3_offset(&self) -> usize {
        14 + 4 * self.vlans.len()
    }

    /// Offset of the packet the programs meter: the inner one when tunnelled.
    pub fn inner_offset(&self) -> usize {
        self.l3_offset()
            + self
                .outer_parts()
                .iter()
                .map(|(b, _)| b.len())
                .sum::<usize>()
    }

    /// Bytes the programs meter for this packet: the IP total length (of the whole inner
    /// packet when tunnelled).
    pub fn l3_len(&self) -> u64 {
        self.l3().len() as u64
    }

    /// The frame.
    pub fn build(&self) -> Vec<u8> {
        self.build_layers().0
    }

    /// The frame and the layer of each byte.
    pub fn build_layers(&self) -> (Vec<u8>, Vec<Layer>) {
        let mut out = Vec::new();
        let mut layers = Vec::new();
        let mut push = |bytes: &[u8], layer: Layer| {
            out.extend_from_slice(bytes);
            layers.extend(std::iter::repeat_n(layer, bytes.len()));
        };
        push(&self.dst_mac, Layer::Ethernet);
        push(&self.src_mac, Layer::Ethernet);
        for (i, tpid) in self.vlans.iter().enumerate() {
            push(
                &tpid.to_be_bytes(),
                if i == 0 { Layer::Ethernet } else { Layer::Vlan },
            );
            push(&(100 + i as u16).to_be_bytes(), Layer::Vlan);
        }
        push(
            &self.ethertype().to_be_bytes(),
            if self.vlans.is_empty() {
                Layer::Ethernet
            } else {
                Layer::Vlan
            },
        );
        let mut frame_len = self.l3_offset();
        for (bytes, layer) in self.ip_parts() {
            frame_len += bytes.len();
            push(&bytes, layer);
        }
        push(
            &vec![0; self.pad_to.saturating_sub(frame_len)],
            Layer::Payload,
        );
        (out, layers)
    }

    fn l3(&self) -> Vec<u8> {
        self.l3_parts().into_iter().flat_map(|(b, _)| b).collect()
    }

    fn l3_parts(&self) -> Vec<(Vec<u8>, Layer)> {
        let mut l4 = self.l4_header.clone();
        let l4_len = l4.len() + self.payload.len();
        if self.proto == IPPROTO_UDP && l4.len() == 8 {
            l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        }
        let mut parts = self.ip.header(self.proto, l4_len, self.tos, 0x1234, false);
        if self.checksums {
            if matches!(self.ip, Ip::V4 { .. }) {
                set_v4_checksum(&mut parts);
            }
            let (src, dst) = self.ip.addrs();
            let at = match self.proto {
                IPPROTO_TCP => Some(16),
                IPPROTO_UDP => Some(6),
                IPPROTO_ICMP | IPPROTO_ICMPV6 => Some(2),
                _ => None,
            };
            if let Some(at) = at.filter(|at| at + 2 <= l4.len()) {
                l4[at..at + 2].fill(0);
                let segment = [l4.as_slice(), &self.payload].concat();
                let mut sum = if self.proto == IPPROTO_ICMP {
                    internet_checksum(&segment)
                } else {
                    l4_checksum(src, dst, self.proto, &segment)
                };
                if sum == 0 && self.proto == IPPROTO_UDP {
                    sum = 0xffff; // 0 means "no checksum" in UDP
                }
                l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
            }
        }
        parts.push((l4, Layer::L4Header));
        parts.push((self.payload.clone(), Layer::Payload));
        parts
    }
}

/// A non-IP frame (ARP request body, zeros).
pub fn arp_frame() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&IN_SRC_MAC);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.resize(60, 0);
    f
}

fn tcp_header(doff: u8) -> Vec<u8> {
    let len = (usize::from(doff) * 4).max(20);
    let mut h = vec![0u8; len];
    h[0..2].copy_from_slice(&40000u16.to_be_bytes());
    h[2..4].copy_from_slice(&443u16.to_be_bytes());
    h[12] = doff << 4;
    h[13] = 0x18; // PSH|ACK
    for b in h.iter_mut().skip(20) {
        *b = 1; // NOP options
    }
    h
}

fn udp_header() -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[0..2].copy_from_slice(&40000u16.to_be_bytes());
    h[2..4].copy_from_slice(&4789u16.to_be_bytes());
    h
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[cfg(test)]
mod tests;
