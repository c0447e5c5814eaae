use super::*;

/// The bytes of `frame` at `range`, as a big-endian u16.
fn be16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

#[test]
fn ipv4_header_checksum_matches_a_known_header() {
    // A header with a well-known checksum (0xb861).
    let header = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert_eq!(internet_checksum(&header), 0xb861);
    let mut with = header;
    with[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
    assert_eq!(internet_checksum(&with), 0, "verifies to zero");
    assert_eq!(
        internet_checksum(&[0xff]),
        !0xff00,
        "odd length is zero-padded"
    );
}

#[test]
fn ipv4_outer_header_is_what_a_tunnel_end_writes() {
    let inner = Packet::v6("fd00::10", "2001:db8:7::10").tos(0xb8).udp(10);
    let p = inner
        .clone()
        .vlan(ETH_P_8021Q)
        .tunnel("192.0.2.1", "198.51.100.2");
    let frame = p.build();
    let l3 = p.l3_offset();
    assert_eq!((l3, p.inner_offset()), (18, 38));
    assert_eq!(be16(&frame, 16), ETH_P_IP);
    let outer = &frame[l3..l3 + 20];
    assert_eq!(
        (outer[0], outer[1]),
        (0x45, 0xb8),
        "version/IHL, TOS copied"
    );
    assert_eq!(usize::from(be16(outer, 2)), 20 + 40 + 18, "total length");
    assert_eq!((be16(outer, 4), be16(outer, 6)), (0, 0x4000), "id 0, DF");
    assert_eq!((outer[8], outer[9]), (64, IPPROTO_IPV6));
    assert_eq!(internet_checksum(outer), 0, "checksum verifies");
    assert_eq!(&outer[12..20], &[192, 0, 2, 1, 198, 51, 100, 2]);
    let plain = inner.build();
    assert_eq!(
        &frame[38..],
        &plain[14..],
        "the inner packet follows unchanged"
    );
    assert_eq!(p.l3_len(), 58, "the inner packet is what is metered");
}

#[test]
fn ipv6_outer_header_is_what_a_tunnel_end_writes() {
    let p = Packet::v4("100.64.0.10", "10.7.0.10")
        .tos(0xb8)
        .tcp(3)
        .tunnel("2001:db8:e::1", "2001:db8:5::2");
    let frame = p.build();
    assert_eq!(be16(&frame, 12), ETH_P_IPV6);
    assert_eq!(
        &frame[14..18],
        &[0x6b, 0x80, 0, 0],
        "traffic class, flow label 0"
    );
    assert_eq!(be16(&frame, 18), 43, "payload length");
    assert_eq!((frame[20], frame[21]), (IPPROTO_IPIP, 64));
    assert_eq!((p.inner_offset(), frame.len()), (54, 54 + 43));
    assert_eq!(frame[54], 0x45);
}

#[test]
fn outer_malformations_change_only_what_they_say() {
    let base = || {
        Packet::v4("100.64.0.10", "10.7.0.10")
            .udp(4)
            .tunnel("192.0.2.1", "198.51.100.2")
    };
    let good = base().build();
    assert_eq!(good.len(), 14 + 20 + 32);
    let longer = base().outer_len_delta(3).build();
    assert_eq!((longer.len(), be16(&longer, 16)), (good.len(), 55));
    assert_eq!(internet_checksum(&longer[14..34]), 0);
    let cut = base().inner_cut(21).build();
    assert_eq!(
        (cut.len(), be16(&cut, 16), be16(&cut, 36)),
        (14 + 41, 41, 32)
    );
    let trailer = base().inner_trailer(5).build();
    assert_eq!((trailer.len(), be16(&trailer, 16)), (good.len() + 5, 57));
    let bad = base().outer_version(6).outer_ihl(4).build();
    assert_eq!(bad[14], 0x64);
    let frag = base().outer_fragment(0, true).build();
    assert_eq!(be16(&frag, 20), 0x6000, "DF and MF");
    let v6frag = Packet::v4("100.64.0.10", "10.7.0.10")
        .udp(4)
        .tunnel("2001:db8:e::1", "2001:db8:5::2")
        .outer_fragment(3, false);
    let f = v6frag.build();
    assert_eq!(
        (f[20], f[54], be16(&f, 56)),
        (IPPROTO_FRAGMENT, IPPROTO_IPIP, 3 << 3)
    );
    assert_eq!(v6frag.inner_offset(), 14 + 48);
    let (_, layers) = base().outer_options(4).build_layers();
    assert_eq!(layers[14..38], [Layer::Tunnel; 24]);
    assert_eq!(layers[38], Layer::IpHeader);
}

#[test]
fn tcp_syn_carries_its_mss_and_checksums_verify() {
    let p = Packet::v4("100.64.0.10", "10.7.0.10")
        .tcp_syn(1460)
        .checksums();
    let frame = p.build();
    let tcp = &frame[34..];
    assert_eq!(tcp.len(), 24);
    assert_eq!((tcp[12], tcp[13]), (6 << 4, TCP_SYN));
    assert_eq!(&tcp[20..24], &mss_option(1460));
    assert_eq!(internet_checksum(&frame[14..34]), 0, "IPv4 header checksum");
    let (src, dst) = ("100.64.0.10".parse().unwrap(), "10.7.0.10".parse().unwrap());
    assert_eq!(l4_checksum(src, dst, IPPROTO_TCP, tcp), 0);
    assert_ne!(be16(tcp, 16), 0);

    let p = Packet::v6("2001:db8:7::10", "fd00::10")
        .tcp_options(&[1, 1, 4, 2, 2, 4, 0x05, 0xb4])
        .tcp_flags(TCP_SYN | TCP_ACK)
        .checksums();
    let frame = p.build();
    let tcp = &frame[54..];
    assert_eq!((tcp[12], tcp[13], tcp.len()), (7 << 4, 0x12, 28));
    let (src, dst) = (
        "2001:db8:7::10".parse().unwrap(),
        "fd00::10".parse().unwrap(),
    );
    assert_eq!(l4_checksum(src, dst, IPPROTO_TCP, tcp), 0);
    let udp = Packet::v6("fd00::10", "2001:db8:7::10")
        .udp(7)
        .checksums()
        .build();
    assert_eq!(be16(&udp, 54 + 4), 15, "UDP length");
    assert_eq!(l4_checksum(dst, src, IPPROTO_UDP, &udp[54..]), 0);
    let icmp = Packet::v4("100.64.0.10", "10.7.0.10")
        .icmp(5)
        .checksums()
        .build();
    assert_eq!(internet_checksum(&icmp[34..]), 0);
}
