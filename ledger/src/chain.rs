//! Walking a whole chain, from a store file or from a ledger over gRPC, verifying every
//! block and handing its entries to the caller (rewards, listings).

use tonic::transport::Channel;

use crate::endorsing::Endorsing;
use crate::entry::Entry;
use crate::store::{At, ReadTables, Store, StoreError};
use crate::verify::VerifyErrorKind;
use crate::verify::{ChainSummary, ChainVerifier, VerifyError, VerifyOptions};
use hsn_ledger_api::client;
use hsn_ledger_api::pb::ledger_client::LedgerClient;

/// Why a remote walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The chain does not verify.
    #[error("verification failed at {0}")]
    Verify(#[from] VerifyError),
    /// The ledger could not be asked.
    #[error("ledger call failed: {0}")]
    Rpc(#[from] tonic::Status),
}

/// Verifies every block of a store file, in order, passing each block's entries to `visit`.
pub fn walk_store(
    store: &Store,
    options: VerifyOptions,
    mut visit: impl FnMut(u64, &[Entry]),
) -> Result<ChainSummary, VerifyError> {
    let mut verifier = ChainVerifier::new(options);
    let read = store
        .read()
        .map_err(|e| verifier.unreadable(None, Box::new(e)))?;
    let blocks = read
        .status()
        .map_err(|e| verifier.unreadable(None, Box::new(e)))?
        .blocks;
    let mut entries_total = 0u64;
    for height in 0..blocks {
        let block = read
            .block(height, true)
            .map_err(|e| unreadable(&verifier, e))?
            .ok_or_else(|| verifier.unreadable(None, "block missing from the store".into()))?;
        let entries = verifier.push(&block)?;
        check_indexed(&read, height, &entries)?;
        entries_total += entries.len() as u64;
        visit(height, &entries);
    }
    check_outside_blocks(&read, blocks, entries_total)?;
    Ok(verifier.finish())
}

/// Every entry of the block is indexed at its place (proofs and lookups go through the
/// index).
fn check_indexed(read: &ReadTables, height: u64, entries: &[Entry]) -> Result<(), VerifyError> {
    for (i, entry) in entries.iter().enumerate() {
        let place = (height, u32::try_from(i).unwrap_or(u32::MAX));
        let indexed = read
            .indexed(&entry.key())
            .map_err(|e| store_fault(height, e.to_string()))?;
        if indexed != Some(place) {
            let what = match indexed {
                None => "lacks it".to_owned(),
                Some((h, j)) => format!("places it at block {h}, entry {j}"),
            };
            return Err(VerifyError {
                height,
                entry: Some(i),
                kind: VerifyErrorKind::Index(what),
            });
        }
    }
    Ok(())
}

/// What a store serves or will sign beyond its blocks: the entry index holds the blocks'
/// entries and nothing else; pending entries are stored under their own keys and their
/// signatures and judgements hold (they will be sealed and signed); evidence decodes.
fn check_outside_blocks(read: &ReadTables, blocks: u64, entries: u64) -> Result<(), VerifyError> {
    let fault = |what: String| store_fault(blocks, what);
    let indexed = read.indexed_count().map_err(|e| fault(e.to_string()))?;
    if indexed != entries {
        return Err(fault(format!(
            "the entry index holds {indexed} keys, the blocks {entries} entries"
        )));
    }
    let pending = read.pending_entries().map_err(|e| fault(e.to_string()))?;
    let replicated = crate::replica::stored_registry(read)
        .map_err(|e| fault(e.to_string()))?
        .is_some();
    let endorsing = if replicated {
        Endorsing::Quorum
    } else {
        Endorsing::Signers
    };
    if let Err((i, what)) = crate::verify::check_unsealed(&pending, endorsing) {
        return Err(fault(format!("pending entry {}: {what}", pending[i].key())));
    }
    read.evidence().map_err(|e| fault(e.to_string()))?;
    Ok(())
}

fn store_fault(height: u64, what: String) -> VerifyError {
    VerifyError {
        height,
        entry: None,
        kind: VerifyErrorKind::Store(what),
    }
}

fn unreadable(verifier: &ChainVerifier, e: StoreError) -> VerifyError {
    let entry = match e.location() {
        Some(At::Entry(_, i)) => Some(*i as usize),
        _ => None,
    };
    verifier.unreadable(entry, Box::new(e))
}

/// Verifies every block a ledger serves, fetching them one by one over gRPC, passing each
/// block's entries to `visit`. Trusts nothing the ledger says about itself.
pub async fn walk_remote(
    ledger: &mut LedgerClient<Channel>,
    options: VerifyOptions,
    mut visit: impl FnMut(u64, &[Entry]),
) -> Result<ChainSummary, WalkError> {
    let blocks = client::height(ledger).await?;
    let mut verifier = ChainVerifier::new(options);
    for height in 0..blocks {
        let block = client::block(ledger, height, true)
            .await?
            .unwrap_or_default();
        let entries = verifier.push(&block)?;
        visit(height, &entries);
    }
    Ok(verifier.finish())
}
