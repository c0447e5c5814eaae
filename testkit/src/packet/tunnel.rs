//! IP in IP: the outer header around a built packet, as a tunnel end writes it or made
//! wrong on purpose.

use super::ip::{Ip, set_v4_checksum};
use super::{IPPROTO_IPIP, IPPROTO_IPV6, Layer, Packet, pattern};

/// The outer header of a tunnelled packet and what is wrong with it on purpose.
#[derive(Clone, Debug)]
pub(super) struct Tunnel {
    ip: Ip,
    /// Added to the length field (IPv4 total length, IPv6 payload length).
    len_delta: i32,
    version: Option<u8>,
    ihl: Option<u8>,
    /// Bytes of the inner packet carried (all of it when `None`).
    carried: Option<usize>,
    /// Bytes after the inner packet, inside the outer payload.
    trailer: usize,
}

impl Packet {
    /// Puts the packet in IP in IP from `src` to `dst` (both IPv4: RFC 2003, both IPv6:
    /// RFC 2473), as a tunnel end writes it: protocol 4 or 41 by the inner family, length
    /// covering the inner packet, DF set (IPv4), TTL/hop limit 64, identification 0, flow
    /// label 0, the inner TOS/traffic class copied, the IPv4 header checksum computed. The
    /// MACs and VLAN tags become the outer frame's. Panics on an address that does not
    /// parse or on mixed families.
    pub fn tunnel(mut self, src: &str, dst: &str) -> Self {
        self.tunnel = Some(Tunnel {
            ip: Ip::parse(src, dst),
            len_delta: 0,
            version: None,
            ihl: None,
            carried: None,
            trailer: 0,
        });
        self
    }

    fn outer(&mut self) -> &mut Tunnel {
        self.tunnel
            .as_mut()
            .expect("outer header methods need Packet::tunnel first")
    }

    /// IPv4 options on the outer header (NOP-padded to a multiple of 4 bytes).
    pub fn outer_options(mut self, len: usize) -> Self {
        self.outer().ip.set_options(len);
        self
    }

    /// Makes the outer packet a fragment, as [`Packet::fragment`] does, carrying the
    /// whole inner packet nonetheless (cut it with [`Packet::inner_cut`] for what a real
    /// first fragment carries).
    pub fn outer_fragment(mut self, offset: u16, more: bool) -> Self {
        self.outer().ip.add_fragment(offset, more);
        self
    }

    /// Appends an IPv6 extension header to the outer header, as [`Packet::ext`] does.
    pub fn outer_ext(mut self, kind: u8, units: u8) -> Self {
        self.outer().ip.add_ext(kind, units);
        self
    }

    /// Adds `delta` to the outer length field (IPv4 total length, IPv6 payload length)
    /// without changing the frame: bigger or smaller than what follows the header.
    pub fn outer_len_delta(mut self, delta: i32) -> Self {
        self.outer().len_delta = delta;
        self
    }

    /// Writes `version` as the outer header's version nibble.
    pub fn outer_version(mut self, version: u8) -> Self {
        self.outer().version = Some(version);
        self
    }

    /// Writes `ihl` as the outer IPv4 header's IHL nibble (the options stay as set).
    pub fn outer_ihl(mut self, ihl: u8) -> Self {
        self.outer().ihl = Some(ihl);
        self
    }

    /// Carries only the first `len` bytes of the inner packet, the outer length covering
    /// them: the inner packet claims more than the outer payload holds.
    pub fn inner_cut(mut self, len: usize) -> Self {
        self.outer().carried = Some(len);
        self
    }

    /// `len` pattern bytes after the inner packet, covered by the outer length: the inner
    /// packet claims less than the outer payload holds.
    pub fn inner_trailer(mut self, len: usize) -> Self {
        self.outer().trailer = len;
        self
    }

    /// The EtherType of the frame: of the outer header when tunnelled.
    pub(super) fn ethertype(&self) -> u16 {
        self.tunnel.as_ref().map_or(&self.ip, |t| &t.ip).ethertype()
    }

    /// What follows the L2 header, by layer: the outer header when tunnelled, the packet
    /// (as much of it as is carried), the trailer.
    pub(super) fn ip_parts(&self) -> Vec<(Vec<u8>, Layer)> {
        let Some(t) = &self.tunnel else {
            return self.l3_parts();
        };
        let mut parts = self.outer_parts();
        let mut left = t.carried.unwrap_or(usize::MAX);
        for (mut bytes, layer) in self.l3_parts() {
            bytes.truncate(left);
            left -= bytes.len();
            parts.push((bytes, layer));
        }
        parts.push((pattern(t.trailer), Layer::Payload));
        parts
    }

    /// The outer header (empty unless tunnelled), labelled [`Layer::Tunnel`].
    pub(super) fn outer_parts(&self) -> Vec<(Vec<u8>, Layer)> {
        let Some(t) = &self.tunnel else {
            return Vec::new();
        };
        let inner = self.l3().len();
        let upper = t.carried.map_or(inner, |c| c.min(inner)) + t.trailer;
        let proto = match self.ip {
            Ip::V4 { .. } => IPPROTO_IPIP,
            Ip::V6 { .. } => IPPROTO_IPV6,
        };
        let mut parts = t.ip.header(proto, upper, self.tos, 0, true);
        let h = &mut parts[0].0;
        let at = if matches!(t.ip, Ip::V4 { .. }) { 2 } else { 4 };
        let len = i32::from(u16::from_be_bytes([h[at], h[at + 1]])) + t.len_delta;
        // Wraps like the 16-bit field it is written into.
        h[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
        if let Some(v) = t.version {
            h[0] = (v << 4) | (h[0] & 0x0f);
        }
        if let Some(ihl) = t.ihl {
            h[0] = (h[0] & 0xf0) | (ihl & 0x0f);
        }
        if matches!(t.ip, Ip::V4 { .. }) {
            set_v4_checksum(&mut parts);
        }
        parts.into_iter().map(|(b, _)| (b, Layer::Tunnel)).collect()
    }
}
