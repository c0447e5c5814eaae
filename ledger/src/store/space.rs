//! The file's space: what redb counts, and the store reclaiming its own free pages.
//!
//! redb writes copy-on-write, and sealing moves every pending entry into the block
//! tables, so the file grows past the pages in use and redb only shrinks it when its tail is
//! free. When the file is at least twice its size after the last compaction (and
//! [`RECLAIM_MIN_BYTES`]), [`Store::reclaim`] compacts it: redb moves pages down through
//! ordinary committed transactions (crash-safe) and truncates. The ledger asks after each
//! seal, a replicated ledger after each block's commit. Doubling bounds the work: each byte
//! is moved a bounded number of times on average. A compaction that finds a reader in
//! progress is skipped and tried next time.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::{Db, Store, StoreError};

/// Space the store uses, as redb counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    /// Keys and values.
    pub stored_bytes: u64,
    /// B-tree overhead.
    pub metadata_bytes: u64,
    /// Unused parts of allocated pages.
    pub fragmented_bytes: u64,
    /// Pages in use, in bytes.
    pub allocated_bytes: u64,
}

/// Files smaller than this are never compacted on their own.
pub const RECLAIM_MIN_BYTES: u64 = 8 << 20;

/// What a [`Store::reclaim`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaimed {
    /// The file has not doubled since the last compaction (or is small).
    NotDue,
    /// A read transaction was open; tried again after the next commit.
    Busy,
    /// Compacted: the file's length before and after.
    Compacted {
        /// Bytes before.
        before: u64,
        /// Bytes after.
        after: u64,
    },
}

impl Store {
    /// Compacts on its own from `min` bytes instead of [`RECLAIM_MIN_BYTES`] (`u64::MAX`:
    /// never); for tests and benchmarks.
    pub fn set_reclaim_min(&self, min: u64) {
        self.reclaim_min.store(min, Ordering::Relaxed);
    }

    /// Space in use (opens and rolls back a write transaction).
    pub fn space(&self) -> Result<Space, StoreError> {
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Db::ReadWrite(db) = &*db else {
            return Err(StoreError::ReadOnly);
        };
        let txn = db.begin_write()?;
        let stats = txn.stats()?;
        txn.abort()?;
        Ok(Space {
            stored_bytes: stats.stored_bytes(),
            metadata_bytes: stats.metadata_bytes(),
            fragmented_bytes: stats.fragmented_bytes(),
            allocated_bytes: stats.allocated_pages() * stats.page_size() as u64,
        })
    }

    /// Rewrites the file without its free pages; needs the store to itself.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        let db = self.db.get_mut().unwrap_or_else(|p| p.into_inner());
        let Db::ReadWrite(db) = db else {
            return Err(StoreError::ReadOnly);
        };
        while db.compact().map_err(StoreError::from)? {}
        self.compacted_len
            .store(file_len(&self.path), Ordering::Relaxed);
        Ok(())
    }

    /// Compacts the file when it is due (module docs); waits for a write in progress.
    pub fn reclaim(&self) -> Result<Reclaimed, StoreError> {
        let held = self.block.lock().unwrap_or_else(|p| p.into_inner());
        self.try_reclaim(&held)
    }

    /// [`Self::reclaim`] after a commit: a failed compaction is logged, not returned (what
    /// was committed stays committed; the next time tries again).
    pub fn reclaim_after_commit(&self) {
        let held = self.block.lock().unwrap_or_else(|p| p.into_inner());
        self.reclaim_holding(&held);
    }

    /// [`Self::reclaim_after_commit`] with the write lock `held`.
    pub(crate) fn reclaim_holding(&self, held: &Option<redb::WriteTransaction>) {
        match self.try_reclaim(held) {
            Ok(Reclaimed::Compacted { before, after }) => {
                tracing::info!(before, after, path = %self.path.display(), "compacted the ledger file");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, path = %self.path.display(), "compacting the ledger file failed");
            }
        }
    }

    fn try_reclaim(&self, held: &Option<redb::WriteTransaction>) -> Result<Reclaimed, StoreError> {
        let before = file_len(&self.path);
        let due = before >= self.reclaim_min.load(Ordering::Relaxed)
            && before >= 2 * self.compacted_len.load(Ordering::Relaxed);
        // A replicated block's transaction is open: it must commit first.
        if !due || held.is_some() {
            return Ok(Reclaimed::NotDue);
        }
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        let Db::ReadWrite(db) = &mut *db else {
            return Ok(Reclaimed::NotDue);
        };
        loop {
            match db.compact() {
                Ok(true) => {}
                Ok(false) => break,
                Err(redb::CompactionError::TransactionInProgress) => return Ok(Reclaimed::Busy),
                Err(e) => return Err(e.into()),
            }
        }
        let after = file_len(&self.path);
        self.compacted_len.store(after, Ordering::Relaxed);
        Ok(Reclaimed::Compacted { before, after })
    }
}

/// The file's length; 0 when it cannot be read (then no compaction is due).
pub(super) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
