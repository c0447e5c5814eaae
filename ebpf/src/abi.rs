//! Rust mirrors of `include/hsn_types.h`: map keys, values, sizes and stat indexes.
//!
//! Every struct is `#[repr(C)]` with the C field order and no implicit padding (hash keys
//! are compared bytewise); the tests below pin sizes and offsets to the C layout.

use std::net::{IpAddr, Ipv6Addr};

/// Uplink direction (tenant matched by destination address).
pub(crate) const DIR_UPLINK: u32 = 0;
/// Downlink direction (tenant matched by source address).
pub(crate) const DIR_DOWNLINK: u32 = 1;

/// `HSN_MAX_PREFIXES`: entries per tenant LPM trie (why this size: see the header).
pub(crate) const MAX_PREFIXES: u32 = 131_072;
/// `HSN_MAX_TENANT_COUNTERS`: entries in `edge_counters`.
pub(crate) const MAX_TENANT_COUNTERS: u32 = 16384;
/// `HSN_MAX_EDGE_COUNTERS`: entries in `super_counters`.
pub(crate) const MAX_EDGE_COUNTERS: u32 = 65536;
/// `HSN_MAX_EDGES`: entries in `edge_by_mac`.
pub(crate) const MAX_EDGES: u32 = 4096;
/// `HSN_MAX_TX_PORTS`: entries in `tx_ports`.
pub(crate) const MAX_TX_PORTS: u32 = 64;
/// `struct bpf_lpm_trie_key` prefix length before the address bytes.
pub(crate) const LPM_PREFIX_LEN_SIZE: u32 = 4;
/// `struct bpf_devmap_val`: ifindex and program fd/id.
pub(crate) const DEVMAP_VAL_SIZE: u32 = 8;

/// Number of `enum hsn_edge_stat` entries (`HSN_EDGE_STAT_MAX`).
pub(crate) const EDGE_STAT_COUNT: u32 = 10;
/// Number of `enum hsn_super_stat` entries (`HSN_SUPER_STAT_MAX`).
pub(crate) const SUPER_STAT_COUNT: u32 = 9;

/// `struct hsn_tenant_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TenantKey {
    pub tenant: u32,
    pub dir: u32,
}

/// `struct hsn_counter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// `struct hsn_next_hop`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawNextHop {
    pub ifindex: u32,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
}

/// `struct hsn_edge_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct EdgeKey {
    pub edge: [u8; 16],
    pub tenant: u32,
    pub dir: u32,
}

/// `struct hsn_mac_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct MacKey {
    pub mac: [u8; 6],
    pub pad: [u8; 2],
}

/// `struct hsn_edge_addr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EdgeAddr {
    pub addr: [u8; 16],
}

// SAFETY (all six impls): #[repr(C)] structs of integers and byte arrays with no implicit
// padding (checked by `no_implicit_padding` below), so every bit pattern is a valid value and
// every byte is initialised, which is what aya::Pod requires.
#[allow(unsafe_code)]
unsafe impl aya::Pod for TenantKey {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for Counter {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for RawNextHop {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for EdgeKey {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for MacKey {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for EdgeAddr {}

/// The 16-byte address encoding of the programs: IPv6 as is, IPv4 mapped (`::ffff:a.b.c.d`).
pub(crate) fn addr16(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Inverse of [`addr16`]: IPv4-mapped addresses come back as IPv4.
pub(crate) fn ip_from16(bytes: [u8; 16]) -> IpAddr {
    Ipv6Addr::from(bytes).to_canonical()
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn sizes_and_offsets_match_hsn_types_h() {
        assert_eq!(size_of::<TenantKey>(), 8);
        assert_eq!(offset_of!(TenantKey, dir), 4);
        assert_eq!(size_of::<Counter>(), 16);
        assert_eq!(offset_of!(Counter, bytes), 8);
        assert_eq!(size_of::<RawNextHop>(), 16);
        assert_eq!(offset_of!(RawNextHop, dst_mac), 4);
        assert_eq!(offset_of!(RawNextHop, src_mac), 10);
        assert_eq!(size_of::<EdgeKey>(), 24);
        assert_eq!(offset_of!(EdgeKey, tenant), 16);
        assert_eq!(offset_of!(EdgeKey, dir), 20);
        assert_eq!(size_of::<MacKey>(), 8);
        assert_eq!(size_of::<EdgeAddr>(), 16);
    }

    #[test]
    fn no_implicit_padding() {
        // Sum of field sizes == struct size, so no byte of a key is left uninitialised.
        assert_eq!(size_of::<TenantKey>(), 4 + 4);
        assert_eq!(size_of::<RawNextHop>(), 4 + 6 + 6);
        assert_eq!(size_of::<EdgeKey>(), 16 + 4 + 4);
        assert_eq!(size_of::<MacKey>(), 6 + 2);
    }

    #[test]
    fn ipv4_is_mapped_and_round_trips() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let bytes = addr16(v4);
        assert_eq!(&bytes[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(&bytes[12..], &[192, 0, 2, 7]);
        assert_eq!(ip_from16(bytes), v4);
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(ip_from16(addr16(v6)), v6);
    }

    #[test]
    fn constants_match_the_header() {
        // The header is the source of truth; parse the numbers out of it.
        let header = include_str!("../include/hsn_types.h");
        let define = |name: &str| -> u32 {
            let words = header
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|w| w.len() == 3 && w[0] == "#define" && w[1] == name)
                .unwrap_or_else(|| panic!("{name} not in hsn_types.h"));
            words[2].parse().unwrap()
        };
        assert_eq!(define("HSN_DIR_UPLINK"), DIR_UPLINK);
        assert_eq!(define("HSN_DIR_DOWNLINK"), DIR_DOWNLINK);
        assert_eq!(define("HSN_MAX_PREFIXES"), MAX_PREFIXES);
        assert_eq!(define("HSN_MAX_TENANT_COUNTERS"), MAX_TENANT_COUNTERS);
        assert_eq!(define("HSN_MAX_EDGE_COUNTERS"), MAX_EDGE_COUNTERS);
        assert_eq!(define("HSN_MAX_EDGES"), MAX_EDGES);
        assert_eq!(define("HSN_MAX_TX_PORTS"), MAX_TX_PORTS);
    }
}
