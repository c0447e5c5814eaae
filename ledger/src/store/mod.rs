//! The embedded ACID store (redb). One write transaction per acknowledged submission and
//! per seal: a record is acknowledged only after its transaction committed (fsync'd).
//!
//! Tables: `pending_entries` (entry key → entry) for epochs not sealed yet;
//! `block_headers` (height → signed header), `block_entries` ((height, index) → entry) and
//! `entry_index` (entry key → (height, index)) for sealed ones; `evidence` (id → refused
//! conflicting submission); `meta` (`sealed_through`). Values are protobuf. A replicated
//! ledger adds its own tables ([`replica`]) and writes each CometBFT block in one
//! transaction left open from ABCI `FinalizeBlock` to `Commit`. The file reclaims its own
//! free space ([`space`]).

mod audit;
mod error;
mod read;
mod replica;
mod space;

pub use error::{At, StoreError};
pub use read::ReadTables;

pub use replica::ReplicaState;
pub use space::{RECLAIM_MIN_BYTES, Reclaimed, Space};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, RwLock};

use prost::Message;
use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::block::{Block, SignedHeader, Tip};
use crate::entry::Entry;
use hsn_ledger_api::pb;
use hsn_ledger_api::record::RecordKey;

const PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending_entries");
const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("block_headers");
const ENTRIES: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("block_entries");
const INDEX: TableDefinition<&[u8], (u64, u32)> = TableDefinition::new("entry_index");
const EVIDENCE: TableDefinition<u64, &[u8]> = TableDefinition::new("evidence");
/// BLAKE3 of a refused statement → its evidence id, so a replayed conflict is kept once.
const EVIDENCE_SEEN: TableDefinition<&[u8], u64> = TableDefinition::new("evidence_seen");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SEALED_THROUGH: &str = "sealed_through";

enum Db {
    ReadWrite(Database),
    ReadOnly(ReadOnlyDatabase),
}

/// The ledger's file.
pub struct Store {
    /// Written only to compact (which needs the database to itself).
    db: RwLock<Db>,
    path: PathBuf,
    /// Where a crashed file opened read-only was copied and repaired.
    _scratch: Option<tempfile::TempDir>,
    /// A replicated block's write transaction, open from `FinalizeBlock` to `Commit`. Every
    /// write transaction begins and ends under this lock, so holding it means none is open.
    block: Mutex<Option<redb::WriteTransaction>>,
    /// The file's length after the last compaction (or at opening): compaction is due
    /// when the file has doubled since.
    compacted_len: AtomicU64,
    /// Compaction is due at this length at the least.
    reclaim_min: AtomicU64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens or creates the file for reading and writing; redb repairs it after a crash.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let txn = db.begin_write()?;
        WriteTables::open(&txn)?;
        txn.commit()?;
        Ok(Self::new(Db::ReadWrite(db), path, None))
    }

    fn new(db: Db, path: &Path, scratch: Option<tempfile::TempDir>) -> Self {
        Self {
            db: RwLock::new(db),
            path: path.to_owned(),
            _scratch: scratch,
            block: Mutex::new(None),
            compacted_len: AtomicU64::new(space::file_len(path)),
            reclaim_min: AtomicU64::new(RECLAIM_MIN_BYTES),
        }
    }

    /// Opens an existing file read-only (fails while a ledger process has it open). A file
    /// left by a crash, which redb must repair before reading, is copied and the copy
    /// repaired and read: the file itself is never written.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        match ReadOnlyDatabase::open(path) {
            Ok(db) => Ok(Self::new(Db::ReadOnly(db), path, None)),
            Err(redb::DatabaseError::RepairAborted) => {
                let io = |e: std::io::Error| open_error(redb::DatabaseError::Storage(e.into()));
                let scratch = tempfile::tempdir().map_err(io)?;
                let copy = scratch.path().join("repaired.redb");
                std::fs::copy(path, &copy).map_err(io)?;
                let db = Database::create(&copy).map_err(open_error)?;
                Ok(Self::new(Db::ReadWrite(db), path, Some(scratch)))
            }
            Err(source) => Err(open_error(source)),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one write transaction: committed when it returns `Ok`, rolled back
    /// when it returns `Err`.
    pub fn write<R, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTables<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.transact(false, f)
    }

    /// One write transaction that `f` fills on a second thread while `beside` (a check the
    /// commit depends on, such as verifying signatures) runs on this one. Commits when
    /// both succeed; rolls back otherwise and returns `beside`'s error if it failed, else
    /// `f`'s. Without a second thread (the system refuses one) runs `beside`, then `f`.
    ///
    /// The caller's thread keeps the longer, CPU-bound `beside`: a new thread may wait
    /// milliseconds for an idle core to wake (0.1–3.4 ms measured on a 2-vCPU VM), which
    /// `f`, the shorter, absorbs.
    pub fn write_beside<R, E>(
        &self,
        f: impl FnOnce(&mut WriteTables<'_>) -> Result<R, E> + Send,
        beside: impl FnOnce() -> Result<(), E>,
    ) -> Result<R, E>
    where
        R: Send,
        E: From<StoreError> + Send,
    {
        let (_held, txn) = self.begin()?;
        // Taken by the writer thread, or by this one if no thread can be started.
        let work = std::sync::Mutex::new(Some((txn, f)));
        let fill = || {
            let (txn, f) = work
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .expect("the write is taken once");
            let result = WriteTables::open(&txn)
                .map_err(E::from)
                .and_then(|mut t| f(&mut t));
            (txn, result)
        };
        let ((txn, filled), checked) =
            std::thread::scope(|scope| {
                match std::thread::Builder::new()
                    .name("store-write".into())
                    .spawn_scoped(scope, fill)
                {
                    Ok(writer) => {
                        let checked = beside();
                        let filled = writer
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                        (filled, checked)
                    }
                    Err(_) => {
                        let checked = beside();
                        (fill(), checked)
                    }
                }
            });
        end(txn, checked.and(filled))
    }

    /// One write transaction, committed when `f` succeeds; a replicated block's (`block`)
    /// journals its writes and stays open until [`Store::commit_block`].
    fn transact<R, E: From<StoreError>>(
        &self,
        block: bool,
        f: impl FnOnce(&mut WriteTables<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let (mut held, txn) = self.begin()?;
        let result = {
            let mut tables = WriteTables::open(&txn)?;
            tables.journal = block.then(blake3::Hasher::new);
            f(&mut tables)
        };
        match result {
            Ok(value) if block => {
                *held = Some(txn);
                Ok(value)
            }
            result => end(txn, result),
        }
    }

    /// Begins a write transaction, holding the slot of a replicated block's open one until
    /// the guard is dropped.
    fn begin(
        &self,
    ) -> Result<
        (
            std::sync::MutexGuard<'_, Option<redb::WriteTransaction>>,
            redb::WriteTransaction,
        ),
        StoreError,
    > {
        let mut held = self.block.lock().unwrap_or_else(|p| p.into_inner());
        // A block finalized but never committed (its CometBFT node restarted): dropped,
        // CometBFT applies it again.
        if let Some(txn) = held.take() {
            txn.abort()?;
        }
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Db::ReadWrite(db) = &*db else {
            return Err(StoreError::ReadOnly);
        };
        let txn = db.begin_write()?;
        Ok((held, txn))
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<ReadTables, StoreError> {
        let txn = match &*self.db.read().unwrap_or_else(|p| p.into_inner()) {
            Db::ReadWrite(db) => db.begin_read()?,
            Db::ReadOnly(db) => db.begin_read()?,
        };
        ReadTables::open(&txn)
    }
}

/// Commits `txn` when `result` is a value, rolls it back when it is an error.
fn end<R, E: From<StoreError>>(txn: redb::WriteTransaction, result: Result<R, E>) -> Result<R, E> {
    match result {
        Ok(value) => {
            txn.commit().map_err(StoreError::from)?;
            Ok(value)
        }
        Err(e) => {
            txn.abort().map_err(StoreError::from)?;
            Err(e)
        }
    }
}

/// The tables inside one write transaction.
pub struct WriteTables<'t> {
    pending: Table<'t, &'static [u8], &'static [u8]>,
    headers: Table<'t, u64, &'static [u8]>,
    entries: Table<'t, (u64, u32), &'static [u8]>,
    index: Table<'t, &'static [u8], (u64, u32)>,
    evidence: Table<'t, u64, &'static [u8]>,
    evidence_seen: Table<'t, &'static [u8], u64>,
    meta: Table<'t, &'static str, u64>,
    replica: replica::WriteTables<'t>,
    /// Every write of a replicated block, hashed into its app hash.
    journal: Option<blake3::Hasher>,
}

impl fmt::Debug for WriteTables<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteTables")
    }
}

impl<'t> WriteTables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            pending: txn.open_table(PENDING)?,
            headers: txn.open_table(HEADERS)?,
            entries: txn.open_table(ENTRIES)?,
            index: txn.open_table(INDEX)?,
            evidence: txn.open_table(EVIDENCE)?,
            evidence_seen: txn.open_table(EVIDENCE_SEEN)?,
            meta: txn.open_table(META)?,
            replica: replica::WriteTables::open(txn)?,
            journal: None,
        })
    }

    /// Adds a write to the journal of a replicated block.
    fn note(&mut self, table: &str, key: &[u8], value: &[u8]) {
        if let Some(j) = &mut self.journal {
            for part in [table.as_bytes(), key, value] {
                j.update(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
                j.update(part);
            }
        }
    }

    /// Every epoch up to this one is sealed.
    pub fn sealed_through(&self) -> Result<Option<u64>, StoreError> {
        sealed_through(&self.meta)
    }

    /// Records that every epoch up to `epoch` is sealed.
    pub fn set_sealed_through(&mut self, epoch: u64) -> Result<(), StoreError> {
        self.meta.insert(SEALED_THROUGH, epoch)?;
        self.note("meta", SEALED_THROUGH.as_bytes(), &epoch.to_be_bytes());
        Ok(())
    }

    /// The pending entry under `key`.
    pub fn pending(&self, key: &RecordKey) -> Result<Option<Entry>, StoreError> {
        pending_entry(&self.pending, key)
    }

    /// Stores a pending entry under its key.
    pub fn put_pending(&mut self, entry: &Entry) -> Result<(), StoreError> {
        let bytes = entry.to_pb().encode_to_vec();
        let key = entry.key().to_bytes();
        self.pending.insert(key.as_slice(), bytes.as_slice())?;
        self.note("pending", &key, &bytes);
        Ok(())
    }

    /// The sealed entry under `key`.
    pub fn sealed(&self, key: &RecordKey) -> Result<Option<Entry>, StoreError> {
        sealed_entry(&self.index, &self.entries, key)
    }

    /// Keeps a refused submission as evidence; returns its id. The same refused statement
    /// again (a replayed conflict) is kept once: its first id is returned.
    pub fn add_evidence(&mut self, evidence: &pb::Evidence) -> Result<u64, StoreError> {
        let statement = pb::Evidence {
            record: evidence.record.clone(),
            observation: evidence.observation.clone(),
            ..Default::default()
        };
        let seen = blake3::hash(&statement.encode_to_vec());
        if let Some(id) = self.evidence_seen.get(seen.as_bytes().as_slice())? {
            return Ok(id.value());
        }
        let id = self.evidence.last()?.map_or(0, |(k, _)| k.value() + 1);
        let bytes = evidence.encode_to_vec();
        self.evidence.insert(id, bytes.as_slice())?;
        self.evidence_seen.insert(seen.as_bytes().as_slice(), id)?;
        self.note("evidence", &id.to_be_bytes(), &bytes);
        Ok(id)
    }

    /// Where the next block goes.
    pub fn tip(&self) -> Result<Tip, StoreError> {
        let last = last_header(&self.headers)?;
        Ok(last.map_or(Tip::GENESIS, |signed| Tip::after(&signed.header)))
    }

    /// The epoch of the first pending entry.
    pub fn first_pending_epoch(&self) -> Result<Option<u64>, StoreError> {
        let first = self.pending.first()?;
        Ok(first.and_then(|(k, _)| RecordKey::from_bytes(k.value()).map(|k| k.epoch)))
    }

    /// Up to `limit` pending entries of `epoch`, in key order.
    pub fn pending_of_epoch(&self, epoch: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let start = epoch.to_be_bytes();
        let mut out = Vec::new();
        for item in self.pending.range::<&[u8]>(start.as_slice()..)? {
            let (k, v) = item?;
            if out.len() == limit || !k.value().starts_with(&start) {
                break;
            }
            let at = At::Pending(hex::encode(k.value()));
            out.push(entry_at(v.value(), k.value(), at)?);
        }
        Ok(out)
    }

    /// Stores a sealed block and moves its entries out of the pending table.
    pub fn put_block(&mut self, block: &Block) -> Result<(), StoreError> {
        let height = block.header.header.height;
        let header = block.header.to_pb().encode_to_vec();
        self.headers.insert(height, header.as_slice())?;
        self.note("header", &height.to_be_bytes(), &header);
        for (i, entry) in block.entries.iter().enumerate() {
            let i = u32::try_from(i).expect("blocks hold fewer than u32::MAX entries");
            let key = entry.key().to_bytes();
            let bytes = entry.to_pb().encode_to_vec();
            self.entries.insert((height, i), bytes.as_slice())?;
            self.index.insert(key.as_slice(), (height, i))?;
            self.note("entry", &key, &bytes);
            self.pending.remove(key.as_slice())?;
        }
        Ok(())
    }
}

/// Where an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Nothing under the key.
    Absent,
    /// Not sealed yet.
    Pending(Entry),
    /// In block `height` at `index`.
    Sealed {
        /// Block height.
        height: u64,
        /// Position in the block.
        index: u32,
        /// The entry.
        entry: Entry,
    },
}

/// Counts and head of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreStatus {
    /// Number of blocks.
    pub blocks: u64,
    /// The last header, if any.
    pub head: Option<SignedHeader>,
    /// Every epoch up to this one is sealed.
    pub sealed_through: Option<u64>,
    /// Entries waiting for their epoch to be sealed.
    pub pending: u64,
    /// Refused conflicting submissions kept.
    pub evidence: u64,
}

fn sealed_through(meta: &impl ReadableTable<&'static str, u64>) -> Result<Option<u64>, StoreError> {
    Ok(meta.get(SEALED_THROUGH)?.map(|v| v.value()))
}

fn pending_entry(
    pending: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &RecordKey,
) -> Result<Option<Entry>, StoreError> {
    let key = key.to_bytes();
    let Some(bytes) = pending.get(key.as_slice())? else {
        return Ok(None);
    };
    entry_at(bytes.value(), &key, At::Pending(hex::encode(&key))).map(Some)
}

fn sealed_entry(
    index: &impl ReadableTable<&'static [u8], (u64, u32)>,
    entries: &impl ReadableTable<(u64, u32), &'static [u8]>,
    key: &RecordKey,
) -> Result<Option<Entry>, StoreError> {
    let key = key.to_bytes();
    let Some(pos) = index.get(key.as_slice())? else {
        return Ok(None);
    };
    let (h, i) = pos.value();
    let Some(bytes) = entries.get((h, i))? else {
        return Err(StoreError::Damaged {
            at: At::Entry(h, i),
            what: "the entry index points at no entry".into(),
        });
    };
    entry_at(bytes.value(), &key, At::Entry(h, i)).map(Some)
}

/// The entry in `bytes`, which must be the one stored under `key`: a damaged key or index
/// must not serve another entry.
pub(super) fn entry_at(bytes: &[u8], key: &[u8], at: At) -> Result<Entry, StoreError> {
    let entry = entry_from(bytes, at.clone())?;
    if entry.key().to_bytes() != key {
        let what = format!("stored under {}, holds {}", hex::encode(key), entry.key());
        return Err(StoreError::Damaged { at, what });
    }
    Ok(entry)
}

fn last_header(
    headers: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<Option<SignedHeader>, StoreError> {
    match headers.last()? {
        None => Ok(None),
        Some((h, bytes)) => header_from(bytes.value(), h.value()).map(Some),
    }
}

fn entry_from(bytes: &[u8], at: At) -> Result<Entry, StoreError> {
    let m = match pb::Entry::decode(bytes) {
        Ok(m) => m,
        Err(source) => return Err(StoreError::Decode { at, source }),
    };
    Entry::from_pb(&m).map_err(|source| StoreError::Entry { at, source })
}

fn header_from(bytes: &[u8], height: u64) -> Result<SignedHeader, StoreError> {
    let at = At::Header(height);
    let m = match pb::SignedHeader::decode(bytes) {
        Ok(m) => m,
        Err(source) => return Err(StoreError::Decode { at, source }),
    };
    SignedHeader::from_pb(&m).map_err(|source| StoreError::Header { at, source })
}

#[cfg(test)]
mod tests;
