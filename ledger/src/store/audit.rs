//! What verification of a store file reads beyond its blocks (the entry index, every
//! pending entry), and damage for tests of what follows from it.

use redb::{ReadableTable, ReadableTableMetadata};

use super::{At, ReadTables, StoreError, entry_at};
use crate::entry::Entry;
use hsn_ledger_api::record::RecordKey;

impl ReadTables {
    /// Where the entry index says the entry under `key` is.
    pub fn indexed(&self, key: &RecordKey) -> Result<Option<(u64, u32)>, StoreError> {
        Ok(self
            .index
            .get(key.to_bytes().as_slice())?
            .map(|v| v.value()))
    }

    /// Number of keys in the entry index.
    pub fn indexed_count(&self) -> Result<u64, StoreError> {
        Ok(self.index.len()?)
    }

    /// Every pending entry, in key order, each checked to be stored under its own key.
    pub fn pending_entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for item in self.pending.iter()? {
            let (k, v) = item?;
            out.push(entry_at(
                v.value(),
                k.value(),
                At::Pending(hex::encode(k.value())),
            )?);
        }
        Ok(out)
    }
}

#[cfg(test)]
impl super::Store {
    /// Points the entry index of `key` at `place`: damage, for tests of what follows.
    pub(crate) fn damage_index(&self, key: &RecordKey, place: (u64, u32)) {
        self.write(|t| -> Result<(), StoreError> {
            t.index.insert(key.to_bytes().as_slice(), place)?;
            Ok(())
        })
        .expect("write");
    }
}
