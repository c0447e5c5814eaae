//! The tables of a replicated ledger: the replica's state (CometBFT height and app hash of
//! the last block applied) and named values (the registry, the block time, the endorsed
//! mark). A CometBFT block is
//! applied in one write transaction left open from `FinalizeBlock` ([`Store::write_block`])
//! to `Commit` ([`Store::commit_block`]): until then readers (CheckTx, `Info`, queries) see
//! the last committed block, and a crash or a restart of CometBFT in between loses the
//! block, which CometBFT then applies again.

use prost::Message;
use redb::{ReadOnlyTable, ReadableTable, Table, TableDefinition, TableError};

use super::{Store, StoreError, header_from};
use crate::block::SignedHeader;
use crate::merkle::Hash;

const VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("replica");
const STATE: &str = "state";

/// The last CometBFT block a replica applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaState {
    /// Its height (0 before the first).
    pub height: u64,
    /// The app hash after it.
    pub app_hash: Hash,
}

impl ReplicaState {
    fn to_bytes(self) -> [u8; 40] {
        let mut out = [0; 40];
        out[..8].copy_from_slice(&self.height.to_be_bytes());
        out[8..].copy_from_slice(&self.app_hash);
        out
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let height = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let app_hash = b.get(8..40)?.try_into().ok()?;
        Some(Self { height, app_hash })
    }
}

pub(super) struct WriteTables<'t> {
    values: Table<'t, &'static str, &'static [u8]>,
}

impl<'t> WriteTables<'t> {
    pub(super) fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            values: txn.open_table(VALUES)?,
        })
    }
}

/// Absent in files written before replication existed, opened read-only.
pub(super) struct ReadTables {
    values: Option<ReadOnlyTable<&'static str, &'static [u8]>>,
}

impl ReadTables {
    pub(super) fn open(txn: &redb::ReadTransaction) -> Result<Self, StoreError> {
        fn optional<T>(r: Result<T, TableError>) -> Result<Option<T>, StoreError> {
            match r {
                Ok(t) => Ok(Some(t)),
                Err(TableError::TableDoesNotExist(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        Ok(Self {
            values: optional(txn.open_table(VALUES))?,
        })
    }
}

impl super::WriteTables<'_> {
    /// The hash of every write of this block so far (zeros outside
    /// [`Store::write_block`]): what the app hash pins.
    pub fn journal(&self) -> Hash {
        self.journal
            .as_ref()
            .map_or([0; 32], |j| *j.finalize().as_bytes())
    }

    /// The last CometBFT block applied.
    pub fn replica_state(&self) -> Result<ReplicaState, StoreError> {
        value(&self.replica.values, STATE).map(|v| {
            v.as_deref()
                .and_then(ReplicaState::from_bytes)
                .unwrap_or_default()
        })
    }

    /// Records the CometBFT block just applied (not journaled: it is the journal's result).
    pub fn set_replica_state(&mut self, state: ReplicaState) -> Result<(), StoreError> {
        self.replica
            .values
            .insert(STATE, state.to_bytes().as_slice())?;
        Ok(())
    }

    /// A named value (genesis, registry).
    pub fn replica_value(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        value(&self.replica.values, name)
    }

    /// Sets a named value.
    pub fn set_replica_value(&mut self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.replica.values.insert(name, bytes)?;
        self.note("replica", name.as_bytes(), bytes);
        Ok(())
    }

    /// The signed header of ledger block `height`.
    pub fn header(&self, height: u64) -> Result<Option<SignedHeader>, StoreError> {
        match self.headers.get(height)? {
            Some(bytes) => header_from(bytes.value(), height).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces a stored header's signatures (the header itself is unchanged).
    pub fn set_signatures(&mut self, signed: &SignedHeader) -> Result<(), StoreError> {
        let height = signed.header.height;
        let bytes = signed.to_pb().encode_to_vec();
        self.headers.insert(height, bytes.as_slice())?;
        self.note("header", &height.to_be_bytes(), &bytes);
        Ok(())
    }
}

impl super::ReadTables {
    /// The last CometBFT block applied.
    pub fn replica_state(&self) -> Result<ReplicaState, StoreError> {
        let Some(values) = &self.replica.values else {
            return Ok(ReplicaState::default());
        };
        value(values, STATE).map(|v| {
            v.as_deref()
                .and_then(ReplicaState::from_bytes)
                .unwrap_or_default()
        })
    }

    /// A named value (genesis, registry).
    pub fn replica_value(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.replica.values {
            Some(values) => value(values, name),
            None => Ok(None),
        }
    }
}

impl Store {
    /// Runs `f` in the write transaction of a CometBFT block, left open (uncommitted,
    /// invisible to readers) until [`Store::commit_block`]; rolled back when `f` fails. A
    /// block still open from before is dropped first. Inside,
    /// [`WriteTables::journal`](super::WriteTables::journal) hashes every write so far.
    pub fn write_block<R, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut super::WriteTables<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.transact(true, f)
    }

    /// Commits the open block durably; `false` when none is open.
    pub fn commit_block(&self) -> Result<bool, StoreError> {
        let mut held = self.block.lock().unwrap_or_else(|p| p.into_inner());
        match held.take() {
            Some(txn) => {
                txn.commit()?;
                self.reclaim_holding(&held);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

fn value(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(t.get(name)?.map(|v| v.value().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_seen_once_committed_survives_reopening_and_its_journal_covers_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.redb");
        let store = Store::open(&path).unwrap();
        let write = |name: &str| {
            store
                .write_block(|t| -> Result<_, StoreError> {
                    t.set_replica_value(name, b"v")?;
                    t.set_replica_state(ReplicaState {
                        height: 1,
                        app_hash: [1; 32],
                    })?;
                    Ok(t.journal())
                })
                .unwrap()
        };
        let a = write("a");
        let state = store.read().unwrap().replica_state().unwrap();
        assert_eq!(state.height, 0, "invisible until committed");
        assert_ne!(a, write("b"), "the journal hashes what was written");
        assert!(store.commit_block().unwrap());
        assert_eq!(store.read().unwrap().replica_state().unwrap().height, 1);
        assert_eq!(
            store.read().unwrap().replica_value("a").unwrap(),
            None,
            "block a was dropped"
        );
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.read().unwrap().replica_value("b").unwrap().unwrap(),
            b"v"
        );
    }
}
