//! Walking a whole chain, from a store file or from a ledger over gRPC, verifying every
//! block and handing its entries to the caller (rewards, listings).

use tonic::transport::Channel;

use crate::entry::Entry;
use crate::store::{At, Store, StoreError};
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
    for height in 0..blocks {
        let block = read
            .block(height, true)
            .map_err(|e| unreadable(&verifier, e))?
            .ok_or_else(|| verifier.unreadable(None, "block missing from the store".into()))?;
        let entries = verifier.push(&block)?;
        visit(height, &entries);
    }
    Ok(verifier.finish())
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
