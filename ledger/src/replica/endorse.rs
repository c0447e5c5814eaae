//! Endorsement of ledger blocks by the validator set, through CometBFT vote extensions.
//!
//! A replicated ledger seals blocks listing the validator set as signers, unsigned. At every
//! height each validator's vote extension signs the blocks of the committed state that list
//! it, lack its signature and come after the last block with a quorum (at most
//! [`MAX_PER_VOTE`]); the next proposer gathers the extensions of the previous height (which
//! CometBFT hands it in `PrepareProposal`) into one `Endorsement` transaction, and applying
//! it fills the signatures in. Blocks that missed a round are signed again at the next.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use prost::Message;

use crate::block::SignedHeader;
use crate::store::{ReadTables, StoreError, WriteTables};
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;

/// Most blocks one vote endorses.
pub const MAX_PER_VOTE: u64 = 64;
/// Replica value: every block below this height has its quorum.
const ENDORSED_BELOW: &str = "endorsed_below";

fn decode_height(v: Option<Vec<u8>>) -> u64 {
    v.and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

fn header(read: &ReadTables, height: u64) -> Result<Option<SignedHeader>, StoreError> {
    let at = crate::store::At::Header(height);
    match read.header(height)? {
        None => Ok(None),
        Some(m) => SignedHeader::from_pb(&m)
            .map(Some)
            .map_err(|source| StoreError::Header { at, source }),
    }
}

/// This validator's vote extension: its signatures over the blocks it still has to sign.
pub fn extend(read: &ReadTables, key: &SigningKey) -> Result<pb::VoteEndorsement, StoreError> {
    let me = NodeKey::of(key);
    let from = decode_height(read.replica_value(ENDORSED_BELOW)?);
    let blocks = read.status()?.blocks;
    let mut signatures = Vec::new();
    for height in from..blocks.min(from + MAX_PER_VOTE) {
        let Some(signed) = header(read, height)? else {
            break;
        };
        let place = signed.header.signers.iter().position(|s| *s == me);
        if place.is_some_and(|p| signed.signatures.get(p).is_some_and(Option::is_none)) {
            let signature = key.sign(&signed.header.signing_bytes());
            signatures.push(pb::HeaderSignature {
                height,
                signature: signature.to_bytes().to_vec(),
            });
        }
    }
    Ok(pb::VoteEndorsement {
        signer_key: me.0.to_vec(),
        signatures,
    })
}

/// Why an endorsement does not hold.
#[derive(Debug, thiserror::Error)]
pub enum EndorseError {
    /// Bytes that are not an endorsement.
    #[error("not an endorsement: {0}")]
    Malformed(String),
    /// A signature over a block that does not list the signer, or does not exist.
    #[error("block {height} does not list {signer} as a signer")]
    NotASigner {
        /// The block.
        height: u64,
        /// The key.
        signer: NodeKey,
    },
    /// A signature that does not verify.
    #[error("the signature of {signer} over block {height} does not verify")]
    BadSignature {
        /// The block.
        height: u64,
        /// The key.
        signer: NodeKey,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One validated signature: block, place among its signers, signature.
type Place = (u64, usize, Signature);

/// Checks one vote's signatures against the stored headers; returns the places they fill.
pub fn check_vote(
    read_header: &mut dyn FnMut(u64) -> Result<Option<SignedHeader>, StoreError>,
    vote: &pb::VoteEndorsement,
) -> Result<(NodeKey, Vec<Place>), EndorseError> {
    let signer = NodeKey::from_slice(&vote.signer_key)
        .map_err(|e| EndorseError::Malformed(format!("signer: {e}")))?;
    let point = signer
        .verifying_key()
        .map_err(|e| EndorseError::Malformed(format!("signer: {e}")))?;
    let mut places = Vec::with_capacity(vote.signatures.len());
    if vote.signatures.len() as u64 > MAX_PER_VOTE {
        return Err(EndorseError::Malformed(format!(
            "{} signatures, at most {MAX_PER_VOTE}",
            vote.signatures.len()
        )));
    }
    for s in &vote.signatures {
        let height = s.height;
        let not_a_signer = || EndorseError::NotASigner { height, signer };
        let signed = read_header(height)?.ok_or_else(not_a_signer)?;
        let place = signed.header.signers.iter().position(|k| *k == signer);
        let place = place.ok_or_else(not_a_signer)?;
        let bad = || EndorseError::BadSignature { height, signer };
        let signature = Signature::from_slice(&s.signature).map_err(|_| bad())?;
        point
            .verify(&signed.header.signing_bytes(), &signature)
            .map_err(|_| bad())?;
        places.push((height, place, signature));
    }
    Ok((signer, places))
}

/// Checks a vote extension against committed state.
pub fn check_extension(read: &ReadTables, bytes: &[u8]) -> Result<NodeKey, EndorseError> {
    let vote =
        pb::VoteEndorsement::decode(bytes).map_err(|e| EndorseError::Malformed(e.to_string()))?;
    check_vote(&mut |h| header(read, h), &vote).map(|(signer, _)| signer)
}

/// Checks every vote of an endorsement transaction against committed state.
pub fn check(read: &ReadTables, tx: &pb::Endorsement) -> Result<(), EndorseError> {
    for vote in &tx.votes {
        check_vote(&mut |h| header(read, h), vote)?;
    }
    Ok(())
}

/// Applies an endorsement transaction: fills the signatures it brings into their headers
/// (a vote that does not hold is skipped: `ProcessProposal` refused proposals carrying
/// one) and moves the endorsed mark past every block that now has its quorum.
pub fn apply(t: &mut WriteTables<'_>, tx: &pb::Endorsement) -> Result<(), StoreError> {
    for vote in &tx.votes {
        let checked = check_vote(&mut |h| t.header(h), vote);
        let places = match checked {
            Ok((_, places)) => places,
            Err(EndorseError::Store(e)) => return Err(e),
            Err(_) => continue,
        };
        for (height, place, signature) in places {
            let Some(mut signed) = t.header(height)? else {
                continue;
            };
            if let Some(slot @ None) = signed.signatures.get_mut(place) {
                *slot = Some(signature);
                t.set_signatures(&signed)?;
            }
        }
    }
    let mut below = decode_height(t.replica_value(ENDORSED_BELOW)?);
    let start = below;
    while let Some(signed) = t.header(below)? {
        let present = signed.signatures.iter().flatten().count();
        if present < signed.header.endorsing.needed(signed.header.signers.len()) {
            break;
        }
        below += 1;
    }
    if below != start {
        t.set_replica_value(ENDORSED_BELOW, &below.to_be_bytes())?;
    }
    Ok(())
}

/// Every block below this height has its quorum.
pub fn endorsed_below(read: &ReadTables) -> Result<u64, StoreError> {
    Ok(decode_height(read.replica_value(ENDORSED_BELOW)?))
}
