//! A read snapshot of the store's tables ([`Store::read`](super::Store::read)).

use std::fmt;

use prost::Message;
use redb::{ReadOnlyTable, ReadableTable, ReadableTableMetadata};

use super::{
    At, ENTRIES, EVIDENCE, HEADERS, INDEX, Location, META, PENDING, StoreError, StoreStatus,
    last_header, pending_entry, replica, sealed_entry, sealed_through,
};
use hsn_ledger_api::pb;
use hsn_ledger_api::record::RecordKey;

/// A read snapshot.
pub struct ReadTables {
    pub(super) pending: ReadOnlyTable<&'static [u8], &'static [u8]>,
    pub(super) headers: ReadOnlyTable<u64, &'static [u8]>,
    pub(super) entries: ReadOnlyTable<(u64, u32), &'static [u8]>,
    pub(super) index: ReadOnlyTable<&'static [u8], (u64, u32)>,
    pub(super) evidence: ReadOnlyTable<u64, &'static [u8]>,
    pub(super) meta: ReadOnlyTable<&'static str, u64>,
    pub(super) replica: replica::ReadTables,
}

impl fmt::Debug for ReadTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadTables")
    }
}

impl ReadTables {
    /// The tables of read transaction `txn`.
    pub(super) fn open(txn: &redb::ReadTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            pending: txn.open_table(PENDING)?,
            headers: txn.open_table(HEADERS)?,
            entries: txn.open_table(ENTRIES)?,
            index: txn.open_table(INDEX)?,
            evidence: txn.open_table(EVIDENCE)?,
            meta: txn.open_table(META)?,
            replica: replica::ReadTables::open(txn)?,
        })
    }

    /// Counts and head.
    pub fn status(&self) -> Result<StoreStatus, StoreError> {
        Ok(StoreStatus {
            blocks: self.headers.len()?,
            head: last_header(&self.headers)?,
            sealed_through: self.sealed_through()?,
            pending: self.pending.len()?,
            evidence: self.evidence.len()?,
        })
    }

    /// Every epoch up to this one is sealed.
    pub fn sealed_through(&self) -> Result<Option<u64>, StoreError> {
        sealed_through(&self.meta)
    }

    /// The raw header of block `height`, as stored.
    pub fn header(&self, height: u64) -> Result<Option<pb::SignedHeader>, StoreError> {
        let Some(bytes) = self.headers.get(height)? else {
            return Ok(None);
        };
        let decoded = pb::SignedHeader::decode(bytes.value());
        let at = At::Header(height);
        decoded
            .map(Some)
            .map_err(|source| StoreError::Decode { at, source })
    }

    /// The raw entries of block `height`, as stored, in order.
    pub fn block_entries(&self, height: u64) -> Result<Vec<pb::Entry>, StoreError> {
        let mut out = Vec::new();
        for item in self.entries.range((height, 0)..=(height, u32::MAX))? {
            let (k, v) = item?;
            let (h, i) = k.value();
            let decoded = pb::Entry::decode(v.value());
            out.push(decoded.map_err(|source| StoreError::Decode {
                at: At::Entry(h, i),
                source,
            })?);
        }
        Ok(out)
    }

    /// Block `height` with or without its entries.
    pub fn block(&self, height: u64, with_entries: bool) -> Result<Option<pb::Block>, StoreError> {
        let Some(header) = self.header(height)? else {
            return Ok(None);
        };
        let entries = if with_entries {
            self.block_entries(height)?
        } else {
            Vec::new()
        };
        Ok(Some(pb::Block {
            header: Some(header),
            entries,
        }))
    }

    /// Where the entry under `key` is.
    pub fn locate(&self, key: &RecordKey) -> Result<Location, StoreError> {
        if let Some(entry) = pending_entry(&self.pending, key)? {
            return Ok(Location::Pending(entry));
        }
        let Some(pos) = self.index.get(key.to_bytes().as_slice())? else {
            return Ok(Location::Absent);
        };
        let (height, index) = pos.value();
        match sealed_entry(&self.index, &self.entries, key)? {
            Some(entry) => Ok(Location::Sealed {
                height,
                index,
                entry,
            }),
            None => Ok(Location::Absent),
        }
    }

    /// Every evidence item, oldest first.
    pub fn evidence(&self) -> Result<Vec<pb::Evidence>, StoreError> {
        let mut out = Vec::new();
        for item in self.evidence.iter()? {
            let (k, v) = item?;
            let decoded = pb::Evidence::decode(v.value());
            let at = At::Evidence(k.value());
            out.push(decoded.map_err(|source| StoreError::Decode { at, source })?);
        }
        Ok(out)
    }
}
