//! IP headers as the builder writes them, and the Internet checksums.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{ETH_P_IP, ETH_P_IPV6, IPPROTO_AH, IPPROTO_FRAGMENT, Layer};

/// IPv4 flag "don't fragment", as in the flags/offset field.
const IP_DF: u16 = 0x4000;
/// IPv4 flag "more fragments", as in the flags/offset field.
const IP_MF: u16 = 0x2000;
/// TTL (hop limit) of every header written.
const TTL: u8 = 64;

/// One IP header: addresses, IPv4 options and flags/offset, IPv6 extension headers.
#[derive(Clone, Debug)]
pub(super) enum Ip {
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

impl Ip {
    /// One family from two addresses; panics on an address that does not parse or on
    /// mixed families.
    pub(super) fn parse(src: &str, dst: &str) -> Self {
        match (src.parse().unwrap(), dst.parse().unwrap()) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Ip::V4 {
                src,
                dst,
                options: Vec::new(),
                frag: 0,
            },
            (IpAddr::V6(src), IpAddr::V6(dst)) => Ip::V6 {
                src,
                dst,
                ext: Vec::new(),
            },
            _ => panic!("{src} -> {dst}: not one address family"),
        }
    }

    pub(super) fn ethertype(&self) -> u16 {
        match self {
            Ip::V4 { .. } => ETH_P_IP,
            Ip::V6 { .. } => ETH_P_IPV6,
        }
    }

    pub(super) fn addrs(&self) -> (IpAddr, IpAddr) {
        match self {
            Ip::V4 { src, dst, .. } => ((*src).into(), (*dst).into()),
            Ip::V6 { src, dst, .. } => ((*src).into(), (*dst).into()),
        }
    }

    pub(super) fn set_options(&mut self, len: usize) {
        if let Ip::V4 { options, .. } = self {
            *options = vec![1; len.div_ceil(4) * 4];
        }
    }

    pub(super) fn add_fragment(&mut self, offset: u16, more: bool) {
        match self {
            Ip::V4 { frag, .. } => *frag = (offset & 0x1fff) | if more { IP_MF } else { 0 },
            Ip::V6 { ext, .. } => {
                let off = (offset << 3) | u16::from(more);
                // After the next-header byte: reserved, offset|M, identification.
                let mut body = vec![0u8; 7];
                body[1..3].copy_from_slice(&off.to_be_bytes());
                body[3..7].copy_from_slice(&0xdead_beefu32.to_be_bytes());
                ext.push((IPPROTO_FRAGMENT, body));
            }
        }
    }

    pub(super) fn add_ext(&mut self, kind: u8, units: u8) {
        if let Ip::V6 { ext, .. } = self {
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
    }

    /// The fixed header and what follows it (IPv4 options, IPv6 extension headers) of a
    /// packet carrying `upper` bytes of protocol `proto`; an IPv4 header has no checksum.
    pub(super) fn header(
        &self,
        proto: u8,
        upper: usize,
        tos: u8,
        id: u16,
        df: bool,
    ) -> Vec<(Vec<u8>, Layer)> {
        match self {
            Ip::V4 {
                src,
                dst,
                options,
                frag,
            } => {
                let ihl = 5 + options.len() / 4;
                let total = (ihl * 4 + upper) as u16;
                let flags = frag | if df { IP_DF } else { 0 };
                let mut h = vec![0x40 | ihl as u8, tos];
                h.extend_from_slice(&total.to_be_bytes());
                h.extend_from_slice(&id.to_be_bytes());
                h.extend_from_slice(&flags.to_be_bytes());
                h.extend_from_slice(&[TTL, proto, 0, 0]);
                h.extend_from_slice(&src.octets());
                h.extend_from_slice(&dst.octets());
                vec![(h, Layer::IpHeader), (options.clone(), Layer::IpOptions)]
            }
            Ip::V6 { src, dst, ext } => {
                let ext_len: usize = ext.iter().map(|(_, b)| b.len() + 1).sum();
                let first = ext.first().map_or(proto, |(kind, _)| *kind);
                let mut h = vec![0x60 | (tos >> 4), (tos & 0x0f) << 4, 0, 0];
                h.extend_from_slice(&((ext_len + upper) as u16).to_be_bytes());
                h.extend_from_slice(&[first, TTL]);
                h.extend_from_slice(&src.octets());
                h.extend_from_slice(&dst.octets());
                let mut parts = vec![(h, Layer::IpHeader)];
                for (i, (_, body)) in ext.iter().enumerate() {
                    let next = ext.get(i + 1).map_or(proto, |(kind, _)| *kind);
                    let mut e = vec![next];
                    e.extend_from_slice(body);
                    parts.push((e, Layer::Ipv6Ext));
                }
                parts
            }
        }
    }
}

/// Writes the IPv4 header checksum into `parts` (the fixed header, then its options).
pub(super) fn set_v4_checksum(parts: &mut [(Vec<u8>, Layer)]) {
    parts[0].0[10..12].fill(0);
    let header: Vec<u8> = parts.iter().flat_map(|(b, _)| b.iter().copied()).collect();
    let sum = internet_checksum(&header);
    parts[0].0[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// The Internet checksum (RFC 1071) of `bytes`: the value a checksum field holds when
/// computed with the field zero, and 0 when computed over bytes holding a correct one.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The TCP, UDP or ICMPv6 checksum of `segment` (header and data) sent from `src` to
/// `dst` with protocol `proto`, over the pseudo-header (RFC 9293 section 3.1, RFC 8200
/// section 8.1): 0 when `segment` holds a correct checksum. Panics on mixed families.
pub fn l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> u16 {
    let mut bytes = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = [s.octets(), d.octets()].concat();
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(segment.len() as u16).to_be_bytes());
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = [s.octets(), d.octets()].concat();
            p.extend_from_slice(&(segment.len() as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
            p
        }
        _ => panic!("{src} -> {dst}: not one address family"),
    };
    bytes.extend_from_slice(segment);
    internet_checksum(&bytes)
}

/// A TCP MSS option (kind 2, length 4) announcing `mss`.
pub fn mss_option(mss: u16) -> [u8; 4] {
    let [hi, lo] = mss.to_be_bytes();
    [2, 4, hi, lo]
}
