//! Checking one entry without the chain: its block header's signatures, the entry's own
//! signatures and judgement, and the Merkle path from its leaf to the header's root.

use crate::block::{BlockError, BlockHeader, SignedHeader};
use crate::entry::Entry;
use crate::merkle::{self, ProofError};
use crate::sigs::Batch;
use crate::verify::{self, VerifyErrorKind};
use hsn_ledger_api::keys::KeyRegistry;
use hsn_ledger_api::pb;

/// Why an inclusion proof does not hold.
#[derive(Debug, thiserror::Error)]
pub enum InclusionError {
    /// The header does not decode.
    #[error("header: {0}")]
    Header(#[from] BlockError),
    /// The header's signatures, or the entry, do not hold.
    #[error("{0}")]
    Invalid(#[from] VerifyErrorKind),
    /// The proof's leaf count is not the header's.
    #[error("proof counts {proof} leaves, the header {header}")]
    Count {
        /// In the proof.
        proof: u32,
        /// In the header.
        header: u32,
    },
    /// The path does not lead to the root.
    #[error("{0}")]
    Path(#[from] ProofError),
}

/// An entry shown to be in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Included {
    /// The entry.
    pub entry: Entry,
    /// Its block's header.
    pub header: BlockHeader,
}

/// Checks that `entry` is at `proof.index` of the block `header` signs. With a registry,
/// every signer must be registered in its role.
pub fn verify_inclusion(
    entry: &pb::Entry,
    header: &pb::SignedHeader,
    proof: &merkle::Proof,
    registry: Option<&KeyRegistry>,
) -> Result<Included, InclusionError> {
    let signed = SignedHeader::from_pb(header)?;
    let mut points = |k: &_, r| verify::resolve(registry, k, r);
    if !verify::check_block_signatures(&signed, &mut points)? {
        let (signers, present) = (
            signed.header.signers.len(),
            signed.signatures.iter().flatten().count(),
        );
        let needed = signed.header.endorsing.needed(signers);
        return Err(VerifyErrorKind::Quorum {
            signed: present,
            needed,
            signers,
        }
        .into());
    }
    let entry = Entry::from_pb(entry).map_err(VerifyErrorKind::from)?;
    let mut batch = Batch::with_capacity(3);
    verify::push_entry_signatures(&entry, signed.header.endorsing, 0, &mut batch, &mut points)?;
    if let Err(culprit) = batch.verify() {
        let kind = match culprit {
            Some((_, what)) => VerifyErrorKind::Signature(what),
            None => VerifyErrorKind::SignatureBatch,
        };
        return Err(kind.into());
    }
    if proof.count != signed.header.entry_count {
        let (proof, header) = (proof.count, signed.header.entry_count);
        return Err(InclusionError::Count { proof, header });
    }
    let tree = signed.header.tree;
    merkle::verify(
        tree,
        &entry.leaf_hash(tree),
        proof,
        &signed.header.merkle_root,
    )?;
    Ok(Included {
        entry,
        header: signed.header,
    })
}
