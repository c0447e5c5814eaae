//! The tunnel's header template (`hsn_next_hop.hdr` and `hdr_sum` in
//! `include/hsn_types.h`): the Ethernet and outer IP header a tunnelled packet starts with,
//! built once when the agent writes a next hop, so that the programs copy whole words per
//! packet and fill in only what depends on the packet (`hsn_write_outer`).

use std::net::IpAddr;

use crate::abi::{HSN_IP_DF, HSN_OUTER_HDR_WORDS, HSN_OUTER_TTL, addr16};
use hsn_core::MacAddr;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
/// The outer IPv4 header's 16-bit words that are the same for every packet of a tunnel
/// (identification, flags and fragment offset, the two addresses); the others (version and
/// TOS, total length, TTL and protocol, checksum) the program adds per packet.
const V4_CONSTANT_WORDS: [usize; 6] = [2, 3, 6, 7, 8, 9];

/// Bytes of a template.
const HDR_LEN: usize = 8 * HSN_OUTER_HDR_WORDS as usize;

/// `hsn_next_hop.hdr`: the template's bytes in memory order, as native words.
pub(crate) fn words(hdr: &[u8; HDR_LEN]) -> [u64; HSN_OUTER_HDR_WORDS as usize] {
    std::array::from_fn(|i| u64::from_ne_bytes(hdr[8 * i..8 * i + 8].try_into().expect("8 bytes")))
}

/// The template of a tunnel from `local` to `remote` out of a device sending from
/// `src_mac` to `dst_mac`, and, for an IPv4 outer header, the ones'-complement sum of its
/// constant words as the machine reads them (native order, as the program does). The
/// outer family is `remote`'s (`hsn_next_hop.outer_v6`); an IPv4 header takes the last
/// four bytes of each address's 16-byte form, as the programs always did.
pub(crate) fn template(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    local: IpAddr,
    remote: IpAddr,
) -> ([u8; HDR_LEN], u32) {
    let (local, remote, outer_v6) = (addr16(local), addr16(remote), remote.is_ipv6());
    let mut hdr = [0u8; HDR_LEN];
    hdr[..6].copy_from_slice(&dst_mac.0);
    hdr[6..12].copy_from_slice(&src_mac.0);
    let ethertype = if outer_v6 { ETH_P_IPV6 } else { ETH_P_IP };
    hdr[12..14].copy_from_slice(&ethertype.to_be_bytes());
    let ip = &mut hdr[ETH_HLEN..];
    if outer_v6 {
        ip[0] = 0x60;
        ip[7] = HSN_OUTER_TTL as u8;
        ip[8..24].copy_from_slice(&local);
        ip[24..40].copy_from_slice(&remote);
        return (hdr, 0);
    }
    ip[0] = 0x45;
    ip[6..8].copy_from_slice(&(HSN_IP_DF as u16).to_be_bytes());
    ip[8] = HSN_OUTER_TTL as u8;
    ip[12..16].copy_from_slice(&local[12..]);
    ip[16..20].copy_from_slice(&remote[12..]);
    let sum = V4_CONSTANT_WORDS
        .iter()
        .map(|&i| u32::from(u16::from_ne_bytes([ip[2 * i], ip[2 * i + 1]])))
        .sum();
    (hdr, sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsn_testkit::packet::internet_checksum;

    /// The program's checksum step (`hsn_write_outer`): the template's sum plus words 0, 1
    /// and 4 of the header as written, folded, complemented.
    fn program_checksum(sum: u32, ip: &[u8]) -> u16 {
        let word = |i: usize| u32::from(u16::from_ne_bytes([ip[2 * i], ip[2 * i + 1]]));
        let mut s = sum + word(0) + word(1) + word(4);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        !(s as u16)
    }

    #[test]
    fn ipv4_template_plus_the_packet_fields_checksums_like_the_whole_header() {
        let (hdr, sum) = template(
            MacAddr([2, 0, 0, 0, 0, 2]),
            MacAddr([2, 0, 0, 0, 0, 1]),
            "192.0.2.1".parse().unwrap(),
            "255.255.255.254".parse().unwrap(),
        );
        assert_eq!(&hdr[12..14], &[0x08, 0x00]);
        for (tos, len, proto) in [(0u8, 20u16, 4u8), (0xb8, 1500, 41), (0xff, 65535, 4)] {
            let mut ip = hdr[ETH_HLEN..ETH_HLEN + 20].to_vec();
            ip[1] = tos;
            ip[2..4].copy_from_slice(&len.to_be_bytes());
            ip[9] = proto;
            let want = internet_checksum(&ip);
            assert_eq!(program_checksum(sum, &ip).to_ne_bytes(), want.to_be_bytes());
            assert_eq!(
                (ip[0], &ip[6..8], ip[8], &ip[12..16], &ip[16..20]),
                (
                    0x45,
                    &[0x40, 0][..],
                    64,
                    &[192, 0, 2, 1][..],
                    &[255, 255, 255, 254][..]
                )
            );
        }
    }

    #[test]
    fn ipv6_template_has_version_hop_limit_and_addresses() {
        let (hdr, sum) = template(
            MacAddr([2, 0, 0, 0, 0, 2]),
            MacAddr([2, 0, 0, 0, 0, 1]),
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        assert_eq!(sum, 0);
        assert_eq!(&hdr[..12], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        assert_eq!(&hdr[12..14], &[0x86, 0xdd]);
        let ip = &hdr[ETH_HLEN..ETH_HLEN + 40];
        assert_eq!(&ip[..8], &[0x60, 0, 0, 0, 0, 0, 0, 64]);
        assert_eq!(ip[23], 1);
        assert_eq!(ip[39], 2);
        assert_eq!(&hdr[ETH_HLEN + 40..], &[0, 0]);
    }
}
