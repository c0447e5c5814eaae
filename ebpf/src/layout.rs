//! One generation of the tenant tables as the programs read it (`include/hsn_tenant.h`
//! explains the layout): built from a validated table by a pure function, with the
//! program's lookup mirrored step by step and tested against a naive longest-prefix match.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;

use ipnet::Ipv4Net;

use crate::abi::{
    HSN_V4_BLOCK_BITS, HSN_V4_INLINE, HSN_V6_BLOCK_BITS, TenantRef, V4Block, V6Block,
};

/// Block sizes as prefix lengths.
const V4_BLOCK_BITS: u8 = HSN_V4_BLOCK_BITS as u8;
const V6_BLOCK_BITS: u8 = HSN_V6_BLOCK_BITS as u8;
use crate::prefixes::TenantTable;

/// The top `len` bits of a 32-bit word (`hsn_netmask`).
fn netmask(len: u8) -> u32 {
    match len {
        0 => 0,
        32.. => u32::MAX,
        n => u32::MAX << (32 - n),
    }
}

/// An IPv6 address as four host-order words, as the program reads it.
fn words(addr: Ipv6Addr) -> [u32; 4] {
    let b = addr.octets();
    std::array::from_fn(|i| {
        u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
    })
}

/// The words of an address masked to `len` bits, as `hsn_probe_v6` computes its key.
fn masked_words(w: [u32; 4], len: u8) -> [u32; 4] {
    std::array::from_fn(|i| {
        let bits = len.saturating_sub(32 * i as u8).min(32);
        w[i] & netmask(bits)
    })
}

/// One generation of the tenant tables, independent of which generation it is written to
/// (see `include/hsn_tenant.h` for what each part means).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Non-empty IPv4 /16 blocks by their top 16 bits.
    pub v4_blocks: BTreeMap<u16, V4Block>,
    /// IPv4 prefixes longer than /16 in blocks holding more than [`HSN_V4_INLINE`] of
    /// them (the others are in their block): (length, network address) -> owner.
    pub v4_long: BTreeMap<(u8, u32), TenantRef>,
    /// IPv6 /32 blocks holding prefixes of length >= 32, by their top 32 bits.
    pub v6_blocks: BTreeMap<u32, V6Block>,
    /// IPv6 prefixes other than /32: (length, network address words) -> owner.
    pub v6_long: BTreeMap<(u8, [u32; 4]), TenantRef>,
    /// Bit n: IPv6 prefixes of length n < 32 exist.
    pub v6_short_lens: u32,
}

impl Layout {
    /// The entries for `table`; `slot` gives each tenant's counter slot.
    pub(crate) fn build(table: &TenantTable, slot: impl Fn(u32) -> u32) -> Self {
        let owner = |tenant: u32| TenantRef {
            tenant,
            slot: slot(tenant),
        };
        let mut layout = Self::default();

        // Short IPv4 prefixes expand into every block they cover, shortest first so that a
        // longer one overwrites the blocks it shares with a shorter one.
        let mut short: Vec<(&Ipv4Net, u32)> = table
            .v4
            .iter()
            .filter(|(net, _)| net.prefix_len() <= V4_BLOCK_BITS)
            .map(|(net, tenant)| (net, *tenant))
            .collect();
        short.sort_by_key(|(net, _)| net.prefix_len());
        for (net, tenant) in short {
            let first = u32::from(net.network()) >> 16;
            let count = 1u32 << (V4_BLOCK_BITS - net.prefix_len());
            for block in first..first + count {
                let entry = layout.v4_blocks.entry(block as u16).or_default();
                entry.has_ref = 1;
                entry.ref_ = owner(tenant);
            }
        }
        let mut longer_in_block: BTreeMap<u16, Vec<(u8, u32, TenantRef)>> = BTreeMap::new();
        for (net, tenant) in table
            .v4
            .iter()
            .filter(|(n, _)| n.prefix_len() > V4_BLOCK_BITS)
        {
            let (len, addr) = (net.prefix_len(), u32::from(net.network()));
            let block = (addr >> 16) as u16;
            layout.v4_blocks.entry(block).or_default().lens |= 1 << (len - V4_BLOCK_BITS - 1);
            let longer = longer_in_block.entry(block).or_default();
            longer.push((len, addr, owner(*tenant)));
        }
        // A block with few longer prefixes carries them, longest first; the others' go to
        // the hash, probed one length at a time.
        for (block, mut longer) in longer_in_block {
            if longer.len() > HSN_V4_INLINE as usize {
                let long = longer.into_iter().map(|(len, addr, o)| ((len, addr), o));
                layout.v4_long.extend(long);
                continue;
            }
            longer.sort_by_key(|(len, ..)| std::cmp::Reverse(*len));
            let entry = layout.v4_blocks.entry(block).or_default();
            entry.inline_count = longer.len() as u8;
            for (i, (len, addr, owner)) in longer.into_iter().enumerate() {
                entry.inline_len[i] = len;
                entry.inline_addr[i] = addr;
                entry.inline_ref[i] = owner;
            }
        }

        let mut own_block = BTreeSet::new();
        for (net, tenant) in &table.v6 {
            let len = net.prefix_len();
            let w = words(net.network());
            if len > V6_BLOCK_BITS {
                let bit = usize::from(len - V6_BLOCK_BITS - 1);
                layout.v6_blocks.entry(w[0]).or_default().lens[bit / 32] |= 1 << (bit % 32);
                layout.v6_long.insert((len, w), owner(*tenant));
            } else if len == V6_BLOCK_BITS {
                let entry = layout.v6_blocks.entry(w[0]).or_default();
                entry.has_ref = 1;
                entry.ref_ = owner(*tenant);
                own_block.insert(w[0]);
            } else {
                layout.v6_long.insert((len, w), owner(*tenant));
                layout.v6_short_lens |= 1 << len;
            }
        }
        // A block without a /32 of its own answers for the longest shorter prefix covering
        // it: a lookup that finds the block never probes the short lengths.
        let short_lens = layout.v6_short_lens;
        let v6_long = &layout.v6_long;
        for (top, block) in layout.v6_blocks.iter_mut() {
            if own_block.contains(top) {
                continue;
            }
            let covering = (0..V6_BLOCK_BITS).rev().find_map(|len| {
                (short_lens & (1 << len) != 0)
                    .then(|| v6_long.get(&(len, masked_words([*top, 0, 0, 0], len))))
                    .flatten()
            });
            if let Some(owner) = covering {
                block.has_ref = 1;
                block.ref_ = *owner;
            }
        }
        layout
    }

    /// The lookup `include/hsn_tenant.h` does, step by step, over these entries.
    #[cfg(test)]
    pub(crate) fn lookup(&self, addr: std::net::IpAddr) -> Option<TenantRef> {
        let owner = |has_ref: u32, tenant: TenantRef| (has_ref != 0).then_some(tenant);
        match addr {
            std::net::IpAddr::V4(a) => {
                let a = u32::from(a);
                let block = self.v4_blocks.get(&((a >> 16) as u16))?;
                if block.inline_count != 0 {
                    let count = usize::from(block.inline_count);
                    return (0..count)
                        .find(|&i| a & netmask(block.inline_len[i]) == block.inline_addr[i])
                        .map(|i| block.inline_ref[i])
                        .or(owner(block.has_ref.into(), block.ref_));
                }
                (0..16u8)
                    .rev()
                    .filter(|bit| block.lens & (1 << bit) != 0)
                    .find_map(|bit| {
                        let len = V4_BLOCK_BITS + 1 + bit;
                        self.v4_long.get(&(len, a & netmask(len))).copied()
                    })
                    .or(owner(block.has_ref.into(), block.ref_))
            }
            std::net::IpAddr::V6(a) => {
                let w = words(a);
                let probe = |lens: u32, base: u8| {
                    (0..32u8)
                        .rev()
                        .filter(|bit| lens & (1 << bit) != 0)
                        .find_map(|bit| {
                            let len = base + bit;
                            self.v6_long.get(&(len, masked_words(w, len))).copied()
                        })
                };
                match self.v6_blocks.get(&w[0]) {
                    Some(b) => probe(b.lens[2], 97)
                        .or_else(|| probe(b.lens[1], 65))
                        .or_else(|| probe(b.lens[0], 33))
                        .or(owner(b.has_ref, b.ref_)),
                    None => probe(self.v6_short_lens, 0),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ipnet::{IpNet, Ipv4Net, Ipv6Net};

    use super::*;
    use crate::prefixes::TenantPrefixes;

    fn tenant(tenant: u32, prefixes: &[&str]) -> TenantPrefixes {
        TenantPrefixes {
            tenant: hsn_core::TenantId::new(tenant).unwrap(),
            prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    /// Longest-prefix match by definition: every prefix containing `addr`, longest wins.
    fn naive(table: &TenantTable, addr: std::net::IpAddr) -> Option<u32> {
        let v4 = table.v4.iter().map(|(n, t)| (IpNet::V4(*n), *t));
        let v6 = table.v6.iter().map(|(n, t)| (IpNet::V6(*n), *t));
        v4.chain(v6)
            .filter(|(n, _)| n.contains(&addr))
            .max_by_key(|(n, _)| n.prefix_len())
            .map(|(_, t)| t)
    }

    /// xorshift64*: deterministic, so a failure names its seed and reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random nested tables: prefixes of every length cut around a few seed addresses (so
    /// they nest and share blocks), plus addresses inside, beside and outside them.
    fn random_case(rng: &mut Rng) -> (Vec<TenantPrefixes>, Vec<std::net::IpAddr>) {
        let seeds4: Vec<u32> = (0..3).map(|_| rng.next() as u32).collect();
        let seeds6: Vec<u128> = (0..3)
            .map(|_| (u128::from(rng.next()) << 64) | u128::from(rng.next()))
            .collect();
        let mut tenants: Vec<TenantPrefixes> = (1..=6)
            .map(|tenant| TenantPrefixes {
                tenant: hsn_core::TenantId::new(tenant).unwrap(),
                prefixes: Vec::new(),
            })
            .collect();
        let mut seen = BTreeSet::new();
        for _ in 0..rng.below(40) {
            let prefix = if rng.below(2) == 0 {
                let seed = seeds4[rng.below(3) as usize] ^ (rng.next() as u32 & 0xff);
                let len = rng.below(33) as u8;
                IpNet::V4(Ipv4Net::new(seed.into(), len).unwrap().trunc())
            } else {
                let seed = seeds6[rng.below(3) as usize] ^ u128::from(rng.next() as u16);
                // Around the /32 block boundary most of the time, anywhere sometimes.
                let len = match rng.below(3) {
                    0 => rng.below(129) as u8,
                    _ => 24 + rng.below(20) as u8,
                };
                IpNet::V6(Ipv6Net::new(seed.into(), len).unwrap().trunc())
            };
            // One owner per prefix, as TenantTable requires.
            if seen.insert(prefix) {
                tenants[rng.below(6) as usize].prefixes.push(prefix);
            }
        }
        let mut addrs = Vec::new();
        for t in &tenants {
            for p in &t.prefixes {
                let noise = rng.next();
                addrs.push(match p {
                    IpNet::V4(n) => std::net::IpAddr::V4(
                        (u32::from(n.network()) | (noise as u32 & !netmask(n.prefix_len()))).into(),
                    ),
                    IpNet::V6(n) => {
                        let host = (u128::from(noise) << 64 | u128::from(rng.next()))
                            & !u128::from(n.netmask());
                        std::net::IpAddr::V6((u128::from(n.network()) | host).into())
                    }
                });
                // Just past the prefix's end.
                addrs.push(match p {
                    IpNet::V4(n) => {
                        std::net::IpAddr::V4(u32::from(n.broadcast()).wrapping_add(1).into())
                    }
                    IpNet::V6(n) => {
                        std::net::IpAddr::V6(u128::from(n.broadcast()).wrapping_add(1).into())
                    }
                });
            }
        }
        for _ in 0..20 {
            addrs.push(std::net::IpAddr::V4(
                (seeds4[rng.below(3) as usize] ^ rng.next() as u32 & 0xffff).into(),
            ));
            addrs.push(std::net::IpAddr::V6(
                (seeds6[rng.below(3) as usize] ^ (u128::from(rng.next()) << rng.below(100))).into(),
            ));
        }
        (tenants, addrs)
    }

    #[test]
    fn layout_lookup_is_the_longest_prefix_match() {
        // IPv4 blocks resolved inline and blocks probed, over all the cases.
        let (mut inline, mut probed) = (0, 0);
        for seed in 1..=400u64 {
            let mut rng = Rng(seed);
            let (tenants, addrs) = random_case(&mut rng);
            let table = TenantTable::build(&tenants).unwrap();
            let layout = Layout::build(&table, |t| t + 100);
            let blocks = layout.v4_blocks.values();
            inline += blocks.clone().filter(|b| b.inline_count > 0).count();
            probed += blocks
                .filter(|b| b.inline_count == 0 && b.lens != 0)
                .count();
            for addr in addrs {
                let want = naive(&table, addr).map(|tenant| TenantRef {
                    tenant,
                    slot: tenant + 100,
                });
                assert_eq!(
                    layout.lookup(addr),
                    want,
                    "seed {seed}, {addr}, {tenants:?}"
                );
            }
        }
        assert!(
            inline > 100 && probed > 20,
            "{inline} inline, {probed} probed"
        );
    }

    #[test]
    fn a_block_with_more_longer_prefixes_than_it_holds_is_probed() {
        let nested = ["30.0.0.0/20", "30.0.0.0/22", "30.0.0.0/24", "30.0.0.0/26"];
        let table = TenantTable::build(&[tenant(1, &nested), tenant(2, &["30.1.0.0/17"])]);
        let layout = Layout::build(&table.unwrap(), |t| t);
        assert_eq!(layout.v4_blocks[&0x1e00].inline_count, 4);
        let one_more = [&nested[..], &["30.0.0.0/28"]].concat();
        let table = TenantTable::build(&[tenant(1, &one_more)]).unwrap();
        let layout = Layout::build(&table, |t| t);
        let block = layout.v4_blocks[&0x1e00];
        assert_eq!((block.inline_count, block.lens.count_ones()), (0, 5));
        assert_eq!(layout.v4_long.len(), 5);
        let at = |s: &str| layout.lookup(s.parse().unwrap()).map(|r| r.tenant);
        assert_eq!(at("30.0.0.5"), Some(1));
        assert_eq!(at("30.0.15.1"), Some(1));
        assert_eq!(at("30.0.16.1"), None);
    }

    #[test]
    fn layout_expands_short_prefixes_and_marks_long_lengths() {
        let table = TenantTable::build(&[
            tenant(1, &["10.0.0.0/8", "2001:db8::/16"]),
            tenant(2, &["10.1.0.0/16", "2001:db8:1::/48"]),
            tenant(3, &["10.1.2.0/24", "10.1.2.128/25", "2001:db9::/32"]),
        ])
        .unwrap();
        let layout = Layout::build(&table, |t| t);
        // A /8 covers 256 blocks; the /16 owns its own block.
        assert_eq!(layout.v4_blocks.len(), 256);
        let block = layout.v4_blocks[&0x0a01];
        assert_eq!((block.has_ref, block.ref_.tenant), (1, 2));
        assert_eq!(block.lens, (1 << (24 - 17)) | (1 << (25 - 17)));
        // Its two longer prefixes are in the block, longest first, and in no hash.
        assert_eq!(block.inline_count, 2);
        assert_eq!(block.inline_len[..2], [25, 24]);
        assert_eq!(block.inline_addr[0], u32::from_be_bytes([10, 1, 2, 128]));
        assert_eq!(layout.v4_blocks[&0x0a05].ref_.tenant, 1);
        assert!(layout.v4_long.is_empty());
        // IPv6: the /16 is short (probed only outside blocks); the /48's block inherits it,
        // the /32 owns its block.
        assert_eq!(layout.v6_short_lens, 1 << 16);
        let block = layout.v6_blocks[&0x2001_0db8];
        assert_eq!((block.has_ref, block.ref_.tenant), (1, 1));
        assert_eq!(block.lens, [1 << (48 - 33), 0, 0]);
        assert_eq!(layout.v6_blocks[&0x2001_0db9].ref_.tenant, 3);
        let at = |s: &str| layout.lookup(s.parse().unwrap()).map(|r| r.tenant);
        assert_eq!(at("10.1.2.200"), Some(3));
        assert_eq!(at("10.1.3.1"), Some(2));
        assert_eq!(at("10.200.0.1"), Some(1));
        assert_eq!(at("11.0.0.1"), None);
        assert_eq!(at("2001:db8:1::1"), Some(2));
        assert_eq!(at("2001:db8:7::1"), Some(1));
        assert_eq!(at("2001:dba::1"), Some(1));
        assert_eq!(at("2001:db9::1"), Some(3));
        assert_eq!(at("2002::1"), None);
    }
}
