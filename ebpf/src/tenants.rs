//! Writing the tenant tables both programs look tenants up in ([`Layout`],
//! `include/hsn_tenant.h`) one generation at a time, so that a table change is atomic for
//! packets.

use std::collections::BTreeMap;

use aya::maps::{Array, HashMap, MapData, MapError};

use crate::Error;
use crate::abi::{
    HSN_V4_BLOCK_BITS, TenantCtl, TenantRef, V4Block, V4LongKey, V6Block, V6BlockKey, V6LongKey,
};
use crate::generation::Generation;
use crate::layout::Layout;
use crate::xdp::Loaded;

/// The tenant table maps of one loaded program (`include/hsn_tenant.h`).
pub(crate) struct TenantMaps {
    generation: Generation,
    ctl: Array<MapData, TenantCtl>,
    v4_blocks: Array<MapData, V4Block>,
    v4_long: HashMap<MapData, V4LongKey, TenantRef>,
    v6_blocks: HashMap<MapData, V6BlockKey, V6Block>,
    v6_long: HashMap<MapData, V6LongKey, TenantRef>,
    /// What each generation holds; `None` until read back from maps an earlier load pinned.
    written: [Option<Layout>; 2],
}

/// The pins of the tenant table maps for one role (`"edge"` or `"super"`: both objects
/// name the maps alike, so the pins are role-prefixed). State the agent republishes: an
/// incompatible pin is replaced by an empty map.
macro_rules! tenant_pins {
    ($role:literal) => {{
        use $crate::bpffs::{OnMismatch, PinnedMap};
        const fn pin(name: &'static str, pin: &'static str) -> PinnedMap {
            PinnedMap {
                name,
                pin,
                on_mismatch: OnMismatch::Replace,
            }
        }
        [
            pin("tenant_gen", concat!($role, "_tenant_gen")),
            pin("tenant_ctl", concat!($role, "_tenant_ctl")),
            pin("tenant_v4_blocks", concat!($role, "_tenant_v4_blocks")),
            pin("tenant_v4_long", concat!($role, "_tenant_v4_long")),
            pin("tenant_v6_blocks", concat!($role, "_tenant_v6_blocks")),
            pin("tenant_v6_long", concat!($role, "_tenant_v6_long")),
        ]
    }};
}
pub(crate) use tenant_pins;

impl TenantMaps {
    /// Takes the maps out of `loaded`. `fresh`: they were just created (nothing pinned), so
    /// both generations are known to be empty.
    pub(crate) fn take(loaded: &mut Loaded, fresh: bool) -> Result<Self, Error> {
        let known = || fresh.then(Layout::default);
        Ok(Self {
            generation: Generation::load(loaded.take_map("tenant_gen")?, "tenant_gen")?,
            ctl: loaded.take_map("tenant_ctl")?,
            v4_blocks: loaded.take_map("tenant_v4_blocks")?,
            v4_long: loaded.take_map("tenant_v4_long")?,
            v6_blocks: loaded.take_map("tenant_v6_blocks")?,
            v6_long: loaded.take_map("tenant_v6_long")?,
            written: [known(), known()],
        })
    }

    /// Makes the programs use `layout`, atomically: it is written into the generation no
    /// packet reads, then packets are switched to it with one write. On an error packets
    /// keep the previous table, whole.
    pub(crate) fn replace(&mut self, layout: Layout) -> Result<(), Error> {
        let target = self.generation.writable();
        let old = match self.written[usize::from(target)].take() {
            Some(old) => old,
            None => self.read_back(target)?,
        };
        // Until this write completes, what `target` holds is unknown again (None).
        self.write(target, &old, &layout)?;
        self.generation
            .switch_to(target)
            .map_err(write_err(self.generation.name()))?;
        self.written[usize::from(target)] = Some(layout);
        Ok(())
    }

    /// Writes the difference from `old` to `new` into generation `g`: stale entries go
    /// first, so the hashes never hold more than one generation's worth plus the other's.
    fn write(&mut self, g: u8, old: &Layout, new: &Layout) -> Result<(), Error> {
        let v4_key = |&(len, addr): &(u8, u32)| V4LongKey {
            gen_: g,
            len,
            pad: [0; 2],
            addr,
        };
        let v6_key = |&(len, addr): &(u8, [u32; 4])| V6LongKey {
            gen_: g,
            len,
            pad: [0; 2],
            addr,
        };
        let block6_key = |top: &u32| V6BlockKey {
            gen_: u32::from(g),
            top: *top,
        };
        sync_hash(
            &mut self.v4_long,
            &old.v4_long,
            &new.v4_long,
            v4_key,
            "tenant_v4_long",
        )?;
        sync_hash(
            &mut self.v6_long,
            &old.v6_long,
            &new.v6_long,
            v6_key,
            "tenant_v6_long",
        )?;
        sync_hash(
            &mut self.v6_blocks,
            &old.v6_blocks,
            &new.v6_blocks,
            block6_key,
            "tenant_v6_blocks",
        )?;
        // The block array cannot drop an entry: a block no longer wanted is zeroed.
        let emptied = old
            .v4_blocks
            .keys()
            .filter(|k| !new.v4_blocks.contains_key(k))
            .map(|k| (k, V4Block::default()));
        for (k, v) in emptied.chain(changed(&old.v4_blocks, &new.v4_blocks)) {
            self.v4_blocks
                .set(v4_block_index(g, *k), v, 0)
                .map_err(write_err("tenant_v4_blocks"))?;
        }
        let ctl = TenantCtl {
            v6_short_lens: new.v6_short_lens,
        };
        self.ctl
            .set(u32::from(g), ctl, 0)
            .map_err(write_err("tenant_ctl"))
    }

    /// What generation `g` of maps an earlier load pinned holds.
    fn read_back(&self, g: u8) -> Result<Layout, Error> {
        let read = |map| move |source| Error::ReadMap { map, source };
        let mut layout = Layout::default();
        for block in 0..=u16::MAX {
            let entry = self
                .v4_blocks
                .get(&v4_block_index(g, block), 0)
                .map_err(read("tenant_v4_blocks"))?;
            if entry != V4Block::default() {
                layout.v4_blocks.insert(block, entry);
            }
        }
        for entry in self.v4_long.iter() {
            let (k, v) = entry.map_err(read("tenant_v4_long"))?;
            if k.gen_ == g {
                layout.v4_long.insert((k.len, k.addr), v);
            }
        }
        for entry in self.v6_blocks.iter() {
            let (k, v) = entry.map_err(read("tenant_v6_blocks"))?;
            if k.gen_ == u32::from(g) {
                layout.v6_blocks.insert(k.top, v);
            }
        }
        for entry in self.v6_long.iter() {
            let (k, v) = entry.map_err(read("tenant_v6_long"))?;
            if k.gen_ == g {
                layout.v6_long.insert((k.len, k.addr), v);
            }
        }
        layout.v6_short_lens = self
            .ctl
            .get(&u32::from(g), 0)
            .map_err(read("tenant_ctl"))?
            .v6_short_lens;
        Ok(layout)
    }
}

/// Index of `block` of generation `g` in the IPv4 block array.
fn v4_block_index(g: u8, block: u16) -> u32 {
    (u32::from(g) << HSN_V4_BLOCK_BITS) | u32::from(block)
}

/// Makes one generation of a hash map go from `old` to `new` (`key` places an entry in
/// that generation): stale keys first, so the map never holds both tables' worth of one
/// generation, then new and changed entries.
fn sync_hash<L: Ord, K: aya::Pod, V: aya::Pod + PartialEq>(
    map: &mut HashMap<MapData, K, V>,
    old: &BTreeMap<L, V>,
    new: &BTreeMap<L, V>,
    key: impl Fn(&L) -> K,
    name: &'static str,
) -> Result<(), Error> {
    for k in old.keys().filter(|k| !new.contains_key(k)) {
        remove(map, &key(k), name)?;
    }
    for (k, v) in changed(old, new) {
        map.insert(key(k), v, 0).map_err(write_err(name))?;
    }
    Ok(())
}

/// Entries of `new` that `old` lacks or holds with another value.
fn changed<'a, K: Ord, V: PartialEq + Copy>(
    old: &'a BTreeMap<K, V>,
    new: &'a BTreeMap<K, V>,
) -> impl Iterator<Item = (&'a K, V)> {
    new.iter()
        .filter(move |(k, v)| old.get(k) != Some(v))
        .map(|(k, v)| (k, *v))
}

fn remove<K: aya::Pod, V: aya::Pod>(
    map: &mut HashMap<MapData, K, V>,
    key: &K,
    name: &'static str,
) -> Result<(), Error> {
    match map.remove(key) {
        Err(source) if !crate::is_not_found(&source) => Err(write_err(name)(source)),
        _ => Ok(()),
    }
}

fn write_err(map: &'static str) -> impl Fn(MapError) -> Error {
    move |source| Error::WriteTenants { map, source }
}
