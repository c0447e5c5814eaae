//! What can be wrong with a chain, and where.

use std::fmt;

use crate::attest::AttestError;
use crate::block::BlockError;
use crate::entry::EntryError;
use hsn_core::Role;
use hsn_ledger_api::keys::{KeyError, NodeKey};
use hsn_ledger_api::record::RecordKey;

/// A verification failure and where it is.
#[derive(Debug, thiserror::Error)]
pub struct VerifyError {
    /// Height of the block.
    pub height: u64,
    /// Position of the entry within the block, when the fault is in one.
    pub entry: Option<usize>,
    /// What is wrong.
    #[source]
    pub kind: VerifyErrorKind,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let VerifyErrorKind::Store(what) = &self.kind {
            return f.write_str(what);
        }
        match self.entry {
            Some(i) => write!(f, "block {}, entry {}: {}", self.height, i, self.kind),
            None => write!(f, "block {}: {}", self.height, self.kind),
        }
    }
}

/// What can be wrong with a block.
#[derive(Debug, thiserror::Error)]
pub enum VerifyErrorKind {
    /// A fault of a store file outside its blocks (entry index, pending entries, evidence),
    /// described with its place.
    #[error("{0}")]
    Store(String),
    /// A block's entry is missing from the entry index, or indexed elsewhere.
    #[error("the entry index {0}")]
    Index(String),
    /// The block could not be read at all.
    #[error("unreadable: {0}")]
    Unreadable(Box<dyn std::error::Error + Send + Sync>),
    /// The header does not decode.
    #[error("header: {0}")]
    Header(#[from] BlockError),
    /// Another network's block.
    #[error("belongs to network {got:?}, the chain is {want:?}")]
    Network {
        /// The chain's.
        want: String,
        /// The block's.
        got: String,
    },
    /// Out of sequence.
    #[error("header says height {got}, expected {want}")]
    Height {
        /// Expected.
        want: u64,
        /// Stated.
        got: u64,
    },
    /// Does not chain to the previous block.
    #[error("prev_hash {got} is not the previous header's hash {want}")]
    PrevHash {
        /// Hash of the previous header, hex.
        want: String,
        /// Stated, hex.
        got: String,
    },
    /// A Merkle tree hash other than the chain's (a chain keeps its first block's).
    #[error("the block's Merkle trees use {got}, the chain's {want}")]
    TreeHash {
        /// The chain's.
        want: &'static str,
        /// This block's.
        got: &'static str,
    },
    /// Sealed before the previous block.
    #[error("time {got} is before the previous block's {prev}")]
    Time {
        /// Previous block's time.
        prev: u64,
        /// This block's.
        got: u64,
    },
    /// An epoch before the previous block's.
    #[error("epoch {got} comes after epoch {prev}")]
    Epoch {
        /// Previous block's epoch.
        prev: u64,
        /// This block's.
        got: u64,
    },
    /// Header count and entries differ, or the block is empty.
    #[error("header counts {header} entries, the block has {actual}")]
    EntryCount {
        /// Stated.
        header: u32,
        /// Present.
        actual: usize,
    },
    /// No signer, or signatures and signers do not pair up.
    #[error("{signers} signers but {signatures} signatures")]
    Signers {
        /// Signers named.
        signers: usize,
        /// Signatures present.
        signatures: usize,
    },
    /// A signer listed twice.
    #[error("a signer is listed twice")]
    DuplicateSigner,
    /// Too few signers signed.
    #[error("{signed} of {signers} signers signed, {needed} needed")]
    Quorum {
        /// Valid places filled.
        signed: usize,
        /// Needed.
        needed: usize,
        /// Listed.
        signers: usize,
    },
    /// A block signature fails.
    #[error("signature of {0} does not verify")]
    BlockSignature(NodeKey),
    /// An entry does not decode.
    #[error("{0}")]
    Entry(#[from] EntryError),
    /// An entry of another epoch.
    #[error("entry is for epoch {got}, the block for {want}")]
    EntryEpoch {
        /// The block's.
        want: u64,
        /// The entry's.
        got: u64,
    },
    /// An entry of another network.
    #[error("entry names network {0:?}")]
    EntryNetwork(String),
    /// Entries out of order or repeated (within or across blocks).
    #[error("entry {0} is not after the entry before it (order or duplicate)")]
    EntryOrder(RecordKey),
    /// A key that is not a usable curve point.
    #[error("key {key}: {source}")]
    Key {
        /// The key.
        key: NodeKey,
        /// Why.
        source: KeyError,
    },
    /// A signer the registry does not know in that role.
    #[error("{key} is not a registered {role} key")]
    Untrusted {
        /// The key.
        key: NodeKey,
        /// The role it signed in.
        role: Role,
    },
    /// A judgement that does not hold.
    #[error("judgement: {0}")]
    Judgement(#[from] AttestError),
    /// A record, observation or co-signature that fails.
    #[error("{0} does not verify")]
    Signature(&'static str),
    /// Signatures that pass one by one but not as a batch.
    #[error("signatures do not verify as a batch")]
    SignatureBatch,
    /// Entries do not hash to the header's root.
    #[error("entries hash to Merkle root {got}, the header says {want}")]
    MerkleRoot {
        /// Stated, hex.
        want: String,
        /// Recomputed, hex.
        got: String,
    },
}
