//! Where a fault in the store is and why it failed.

use std::fmt;
use std::path::PathBuf;

use crate::block::BlockError;
use crate::entry::EntryError;

/// Where in the store something is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// A pending entry.
    Pending(String),
    /// A block header.
    Header(u64),
    /// An entry of a block.
    Entry(u64, u32),
    /// An evidence item.
    Evidence(u64),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pending(key) => write!(f, "pending entry {key}"),
            Self::Header(h) => write!(f, "header of block {h}"),
            Self::Entry(h, i) => write!(f, "block {h}, entry {i}"),
            Self::Evidence(id) => write!(f, "evidence {id}"),
        }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: redb::DatabaseError,
    },
    /// A read, write or commit failed.
    #[error("storage: {0}")]
    Redb(#[from] redb::Error),
    /// Stored bytes are not protobuf.
    #[error("{at}: stored bytes do not decode: {source}")]
    Decode {
        /// Where.
        at: At,
        /// What failed.
        source: prost::DecodeError,
    },
    /// Stored bytes decode to an invalid entry.
    #[error("{at}: {source}")]
    Entry {
        /// Where.
        at: At,
        /// What is wrong.
        source: EntryError,
    },
    /// Stored bytes decode to an invalid header.
    #[error("{at}: {source}")]
    Header {
        /// Where.
        at: At,
        /// What is wrong.
        source: BlockError,
    },
    /// Stored data that is not what it must be: an entry where another belongs (a damaged
    /// key or entry index), a pending entry whose signatures no longer verify.
    #[error("{at}: {what}")]
    Damaged {
        /// Where.
        at: At,
        /// What is wrong.
        what: String,
    },
    /// A write on a store opened read-only.
    #[error("the store is open read-only")]
    ReadOnly,
}

impl StoreError {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Open { .. } => "open",
            Self::Redb(_) => "storage",
            Self::Decode { .. }
            | Self::Entry { .. }
            | Self::Header { .. }
            | Self::Damaged { .. } => "corrupt",
            Self::ReadOnly => "read_only",
        }
    }

    /// Where in the chain the fault is, when it is in a block.
    pub fn location(&self) -> Option<&At> {
        match self {
            Self::Decode { at, .. }
            | Self::Entry { at, .. }
            | Self::Header { at, .. }
            | Self::Damaged { at, .. } => Some(at),
            _ => None,
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Redb(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::CompactionError
);
