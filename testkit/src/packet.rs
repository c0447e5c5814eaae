//! A small frame writer for packet fixtures and benchmarks: Ethernet, 802.1Q/802.1ad, IPv4
//! (options, fragments), IPv6 (extension headers), TCP/UDP/ICMP/ICMPv6. It only writes;
//! tests never parse with it. Checksums are left zero (XDP programs do not verify them).
//!
//! ```
//! use hsn_testkit::packet::Packet;
//!
//! let frame = Packet::v4("100.64.0.10", "10.7.0.10").udp(32).build();
//! assert_eq!(frame.len(), 14 + 20 + 8 + 32);
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

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
/// TCP.
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
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

/// Where a byte of a built frame belongs, for naming truncation cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Ethernet header (and the first VLAN tag's TPID).
    Ethernet,
    /// VLAN tags.
    Vlan,
    /// The fixed IPv4 or IPv6 header.
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

#[derive(Clone, Debug)]
enum Ip {
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        options: Vec<u8>,
        frag: u16,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        ext: Vec<(u8, Vec<u8>)>,
    },
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
    proto: u8,
    l4_header: Vec<u8>,
    payload: Vec<u8>,
    pad_to: usize,
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
            proto: IPPROTO_UDP,
            l4_header: udp_header(),
            payload: Vec::new(),
            pad_to: 0,
        }
    }

    /// IPv4 from `src` to `dst`, UDP without payload until told otherwise; panics on an
    /// address that does not parse.
    pub fn v4(src: &str, dst: &str) -> Self {
        Self::new(Ip::V4 {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            options: Vec::new(),
            frag: 0,
        })
    }

    /// IPv6 from `src` to `dst`, UDP without payload until told otherwise; panics on an
    /// address that does not parse.
    pub fn v6(src: &str, dst: &str) -> Self {
        Self::new(Ip::V6 {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            ext: Vec::new(),
        })
    }

    /// Sets the source MAC address.
    pub fn src_mac(mut self, mac: [u8; 6]) -> Self {
        self.src_mac = mac;
        self
    }

    /// TCP (20-byte header) with `payload` bytes.
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

    /// Adds a VLAN tag with this TPID (outermost first); VLAN ids are 100, 101, ...
    pub fn vlan(mut self, tpid: u16) -> Self {
        self.vlans.push(tpid);
        self
    }

    /// IPv4 options (NOP-padded to a multiple of 4 bytes).
    pub fn ip_options(mut self, len: usize) -> Self {
        if let Ip::V4 { options, .. } = &mut self.ip {
            *options = vec![1; len.div_ceil(4) * 4];
        }
        self
    }

    /// IPv4: flags/offset; IPv6: appends a fragment header. `offset` is in 8-byte units.
    pub fn fragment(mut self, offset: u16, more: bool) -> Self {
        match &mut self.ip {
            Ip::V4 { frag, .. } => *frag = (offset & 0x1fff) | if more { 0x2000 } else { 0 },
            Ip::V6 { ext, .. } => {
                let off = (offset << 3) | u16::from(more);
                // After the next-header byte: reserved, offset|M, identification.
                let mut body = vec![0u8; 7];
                body[1..3].copy_from_slice(&off.to_be_bytes());
                body[3..7].copy_from_slice(&0xdead_beefu32.to_be_bytes());
                ext.push((IPPROTO_FRAGMENT, body));
            }
        }
        self
    }

    /// Non-first fragments carry payload only; drops the L4 header.
    pub fn without_l4_header(mut self) -> Self {
        self.l4_header.clear();
        self
    }

    /// Appends an IPv6 extension header of `units` (hdrlen field) with PadN-style zeros.
    pub fn ext(mut self, kind: u8, units: u8) -> Self {
        if let Ip::V6 { ext, .. } = &mut self.ip {
            let len = if kind == IPPROTO_AH {
                (usize::from(units) + 2) * 4
            } else {
                (usize::from(units) + 1) * 8
            };
            // After the next-header byte: hdrlen, then zeros (Pad1/PadN-like).
            let mut body = vec![0u8; len - 1];
            body[0] = units;
            ext.push((kind, body));
        }
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

    /// Offset of the IP header in the frame.
    pub fn l3_offset(&self) -> usize {
        14 + 4 * self.vlans.len()
    }

    /// Bytes the programs meter for this packet: the IP total length.
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
        let ethertype = match self.ip {
            Ip::V4 { .. } => ETH_P_IP,
            Ip::V6 { .. } => ETH_P_IPV6,
        };
        for (i, tpid) in self.vlans.iter().enumerate() {
            push(
                &tpid.to_be_bytes(),
                if i == 0 { Layer::Ethernet } else { Layer::Vlan },
            );
            push(&(100 + i as u16).to_be_bytes(), Layer::Vlan);
        }
        push(
            &ethertype.to_be_bytes(),
            if self.vlans.is_empty() {
                Layer::Ethernet
            } else {
                Layer::Vlan
            },
        );
        for (bytes, layer) in self.l3_parts() {
            push(&bytes, layer);
        }
        let frame_len: usize = self.l3_offset() + self.l3().len();
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
        let l4_len = self.l4_header.len() + self.payload.len();
        let mut parts = match &self.ip {
            Ip::V4 {
                src,
                dst,
                options,
                frag,
            } => {
                let ihl = 5 + options.len() / 4;
                let total = (ihl * 4 + l4_len) as u16;
                let mut h = vec![0x40 | ihl as u8, 0];
                h.extend_from_slice(&total.to_be_bytes());
                h.extend_from_slice(&[0x12, 0x34]);
                h.extend_from_slice(&frag.to_be_bytes());
                h.extend_from_slice(&[64, self.proto, 0, 0]);
                h.extend_from_slice(&src.octets());
                h.extend_from_slice(&dst.octets());
                vec![(h, Layer::IpHeader), (options.clone(), Layer::IpOptions)]
            }
            Ip::V6 { src, dst, ext } => {
                let ext_len: usize = ext.iter().map(|(_, b)| b.len() + 1).sum();
                let first = ext.first().map_or(self.proto, |(kind, _)| *kind);
                let mut h = vec![0x60, 0, 0, 0];
                h.extend_from_slice(&((ext_len + l4_len) as u16).to_be_bytes());
                h.extend_from_slice(&[first, 64]);
                h.extend_from_slice(&src.octets());
                h.extend_from_slice(&dst.octets());
                let mut parts = vec![(h, Layer::IpHeader)];
                for (i, (_, body)) in ext.iter().enumerate() {
                    let next = ext.get(i + 1).map_or(self.proto, |(kind, _)| *kind);
                    let mut e = vec![next];
                    e.extend_from_slice(body);
                    parts.push((e, Layer::Ipv6Ext));
                }
                parts
            }
        };
        parts.push((self.l4_header.clone(), Layer::L4Header));
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
