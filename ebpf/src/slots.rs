//! Edge counter slots: each tenant the edge counts owns a fixed index into the per-CPU
//! counter array (`edge_counters[slot * 2 + direction]`), so the program counts with an
//! inlined array lookup instead of a hash lookup by tenant.
//!
//! Which tenant owns which slot is itself pinned (`edge_slots`) next to the counters: a
//! restarted agent reads it back and keeps attributing every slot to the same tenant.
//! Slots are never reused: a slot's counter is monotonic and belongs to its tenant for as
//! long as the pinned counters exist (a tenant that leaves and comes back gets its slot
//! again). `HSN_MAX_TENANT_SLOTS` bounds the distinct tenants one edge ever counts.

use std::collections::{BTreeMap, BTreeSet};

use aya::maps::{Array, MapData};

use crate::Error;
use crate::abi::{HSN_MAX_TENANT_SLOTS, Slot};

/// The slot table of one edge: the pinned map and its contents.
pub(crate) struct Slots {
    map: Array<MapData, Slot>,
    by_tenant: BTreeMap<u32, u32>,
}

impl Slots {
    /// Reads the slots an earlier load (or this one) assigned.
    pub(crate) fn load(map: Array<MapData, Slot>) -> Result<Self, Error> {
        let mut by_tenant = BTreeMap::new();
        for index in 0..HSN_MAX_TENANT_SLOTS {
            let slot = map.get(&index, 0).map_err(|source| Error::ReadMap {
                map: "edge_slots",
                source,
            })?;
            if slot.used != 0 {
                by_tenant.entry(slot.tenant).or_insert(index);
            }
        }
        Ok(Self { map, by_tenant })
    }

    /// Gives every tenant in `tenants` a slot, writing new ones to the map before any table
    /// can refer to them. Fails, writing nothing more, when the slots run out.
    pub(crate) fn assign(&mut self, tenants: impl IntoIterator<Item = u32>) -> Result<(), Error> {
        let mut used: BTreeSet<u32> = self.by_tenant.values().copied().collect();
        let mut free = (0..HSN_MAX_TENANT_SLOTS)
            .filter(|i| !used.contains(i))
            .collect::<Vec<_>>();
        free.reverse();
        for tenant in tenants {
            if self.by_tenant.contains_key(&tenant) {
                continue;
            }
            let index = free.pop().ok_or(Error::TenantSlotsFull {
                tenant,
                max: HSN_MAX_TENANT_SLOTS,
            })?;
            self.map
                .set(index, Slot { tenant, used: 1 }, 0)
                .map_err(|source| Error::WriteTenants {
                    map: "edge_slots",
                    source,
                })?;
            used.insert(index);
            self.by_tenant.insert(tenant, index);
        }
        Ok(())
    }

    /// The slot of an assigned tenant.
    pub(crate) fn slot(&self, tenant: u32) -> Option<u32> {
        self.by_tenant.get(&tenant).copied()
    }

    /// (tenant, slot), by tenant.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.by_tenant.iter().map(|(t, s)| (*t, *s))
    }
}
