//! Rust mirrors of `include/hsn_types.h`: map keys, values, sizes and stat indexes.
//!
//! Every struct is `#[repr(C)]` with the C field order and no implicit padding (hash keys
//! are compared bytewise); the tests below pin sizes and offsets to the C layout.

use std::net::{IpAddr, Ipv6Addr};

use hsn_core::Direction;

/// Uplink direction (tenant matched by destination address).
pub(crate) const DIR_UPLINK: u32 = 0;
/// Downlink direction (tenant matched by source address).
pub(crate) const DIR_DOWNLINK: u32 = 1;

/// The direction a counter key's `dir` holds; `None` for a value the programs never write.
pub(crate) fn direction_from_raw(raw: u32) -> Option<Direction> {
    match raw {
        DIR_UPLINK => Some(Direction::Uplink),
        DIR_DOWNLINK => Some(Direction::Downlink),
        _ => None,
    }
}

/// `HSN_MAX_PREFIXES`: prefixes of one family in one table generation (why this size: see
/// the header).
pub(crate) const MAX_PREFIXES: u32 = 131_072;
/// `HSN_MAX_TENANT_SLOTS`: tenants an edge can count (`edge_slots`; `edge_counters` has
/// two entries, uplink and downlink, per slot).
pub(crate) const MAX_TENANT_SLOTS: u32 = 4096;
/// `HSN_V4_BLOCK_BITS`: an IPv4 block is a /16.
pub(crate) const V4_BLOCK_BITS: u8 = 16;
/// `HSN_V6_BLOCK_BITS`: an IPv6 block is a /32.
pub(crate) const V6_BLOCK_BITS: u8 = 32;
/// `HSN_MAX_EDGE_COUNTERS`: entries in `super_counters`.
pub(crate) const MAX_EDGE_COUNTERS: u32 = 65536;
/// `HSN_MAX_EDGES`: entries in `edge_by_mac`.
pub(crate) const MAX_EDGES: u32 = 4096;
/// `HSN_MAX_TX_PORTS`: entries in `tx_ports`.
pub(crate) const MAX_TX_PORTS: u32 = 64;
/// `struct bpf_devmap_val`: ifindex and program fd/id.
pub(crate) const DEVMAP_VAL_SIZE: u32 = 8;

/// Number of `enum hsn_edge_stat` entries (`HSN_EDGE_STAT_MAX`).
pub(crate) const EDGE_STAT_COUNT: u32 = 10;
/// Number of `enum hsn_super_stat` entries (`HSN_SUPER_STAT_MAX`).
pub(crate) const SUPER_STAT_COUNT: u32 = 9;

/// `struct hsn_tenant_ref`: a tenant and (on the edge) its counter slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TenantRef {
    pub tenant: u32,
    pub slot: u32,
}

/// `struct hsn_v4_block`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct V4Block {
    pub lens: u16,
    pub one_len: u8,
    pub has_ref: u8,
    pub one_addr: u32,
    pub tenant: TenantRef,
    pub one: TenantRef,
}

/// `struct hsn_v4_long_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct V4LongKey {
    pub generation: u8,
    pub len: u8,
    pub pad: [u8; 2],
    pub addr: u32,
}

/// `struct hsn_v6_block_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct V6BlockKey {
    pub generation: u32,
    pub top: u32,
}

/// `struct hsn_v6_block`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct V6Block {
    pub lens: [u32; 3],
    pub has_ref: u32,
    pub tenant: TenantRef,
}

/// `struct hsn_v6_long_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct V6LongKey {
    pub generation: u8,
    pub len: u8,
    pub pad: [u8; 2],
    pub addr: [u32; 4],
}

/// `struct hsn_tenant_ctl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TenantCtl {
    pub v6_short_lens: u32,
}

/// `struct hsn_slot`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    pub tenant: u32,
    pub used: u32,
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

// SAFETY (all impls below): #[repr(C)] structs of integers and byte arrays with no implicit
// padding (checked by `no_implicit_padding` below), so every bit pattern is a valid value and
// every byte is initialised, which is what aya::Pod requires.
#[allow(unsafe_code)]
unsafe impl aya::Pod for TenantRef {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for V4Block {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for V4LongKey {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for V6BlockKey {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for V6Block {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for V6LongKey {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for TenantCtl {}
#[allow(unsafe_code)]
unsafe impl aya::Pod for Slot {}
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
        assert_eq!(size_of::<TenantRef>(), 8);
        assert_eq!(offset_of!(TenantRef, slot), 4);
        assert_eq!(size_of::<V4Block>(), 24);
        assert_eq!(offset_of!(V4Block, one_len), 2);
        assert_eq!(offset_of!(V4Block, has_ref), 3);
        assert_eq!(offset_of!(V4Block, one_addr), 4);
        assert_eq!(offset_of!(V4Block, tenant), 8);
        assert_eq!(offset_of!(V4Block, one), 16);
        assert_eq!(size_of::<V4LongKey>(), 8);
        assert_eq!(offset_of!(V4LongKey, len), 1);
        assert_eq!(offset_of!(V4LongKey, addr), 4);
        assert_eq!(size_of::<V6BlockKey>(), 8);
        assert_eq!(offset_of!(V6BlockKey, top), 4);
        assert_eq!(size_of::<V6Block>(), 24);
        assert_eq!(offset_of!(V6Block, has_ref), 12);
        assert_eq!(offset_of!(V6Block, tenant), 16);
        assert_eq!(size_of::<V6LongKey>(), 20);
        assert_eq!(offset_of!(V6LongKey, addr), 4);
        assert_eq!(size_of::<TenantCtl>(), 4);
        assert_eq!(size_of::<Slot>(), 8);
        assert_eq!(offset_of!(Slot, used), 4);
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
        assert_eq!(size_of::<TenantRef>(), 4 + 4);
        assert_eq!(size_of::<V4Block>(), 2 + 1 + 1 + 4 + 8 + 8);
        assert_eq!(size_of::<V4LongKey>(), 1 + 1 + 2 + 4);
        assert_eq!(size_of::<V6BlockKey>(), 4 + 4);
        assert_eq!(size_of::<V6Block>(), 12 + 4 + 8);
        assert_eq!(size_of::<V6LongKey>(), 1 + 1 + 2 + 16);
        assert_eq!(size_of::<Slot>(), 4 + 4);
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
        assert_eq!(direction_from_raw(DIR_UPLINK), Some(Direction::Uplink));
        assert_eq!(direction_from_raw(DIR_DOWNLINK), Some(Direction::Downlink));
        assert_eq!(direction_from_raw(7), None);
        assert_eq!(define("HSN_MAX_PREFIXES"), MAX_PREFIXES);
        assert_eq!(define("HSN_MAX_TENANT_SLOTS"), MAX_TENANT_SLOTS);
        assert_eq!(define("HSN_V4_BLOCK_BITS"), u32::from(V4_BLOCK_BITS));
        assert_eq!(define("HSN_V6_BLOCK_BITS"), u32::from(V6_BLOCK_BITS));
        assert_eq!(define("HSN_MAX_EDGE_COUNTERS"), MAX_EDGE_COUNTERS);
        assert_eq!(define("HSN_MAX_EDGES"), MAX_EDGES);
        assert_eq!(define("HSN_MAX_TX_PORTS"), MAX_TX_PORTS);
    }
}
