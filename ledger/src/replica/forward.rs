//! `SubmitRecords` on a replica: checked against the committed state (refusals answer at
//! once, with the usual codes; a request already stored entirely is acknowledged at once),
//! then handed to the super node's CometBFT node (`broadcast_tx_sync`) and acknowledged
//! when `Commit` of the block holding it has made it durable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;

use super::{Outcome, Replica, tx_hash};
use crate::ledger::{Refusal, SubmitError, Submitted};
use hsn_ledger_api::cometbft::{self, RpcError};
use hsn_ledger_api::pb;

/// How long a submission waits for its commit by default.
pub const DEFAULT_COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a submission got no answer (the client retries; submissions are idempotent).
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// CometBFT could not be reached.
    #[error("the super node's CometBFT node: {0}")]
    Rpc(#[from] RpcError),
    /// CometBFT refused the transaction for a reason the committed state does not show.
    #[error("CometBFT refused the transaction: {0}")]
    Refused(String),
    /// Not committed in time (no quorum of validators, or a slow chain).
    #[error("not committed within {0:?}; resubmit (identical submissions are idempotent)")]
    NotCommitted(Duration),
    /// The block's time (BFT time, which lags after a stall) had not reached the epoch:
    /// the same request succeeds once it has.
    #[error("the chain's time has not reached the epoch yet ({0}); resubmit")]
    ChainBehind(String),
    /// A blocking task failed.
    #[error("{0}")]
    Task(String),
}

/// Submits through a replica's CometBFT node.
#[derive(Debug, Clone)]
pub struct Forwarder {
    replica: Arc<Replica>,
    rpc: SocketAddr,
    commit_timeout: Duration,
}

impl Forwarder {
    /// Submits through the CometBFT node whose RPC listens on `rpc`.
    pub fn new(replica: Arc<Replica>, rpc: SocketAddr, commit_timeout: Duration) -> Self {
        Self {
            replica,
            rpc,
            commit_timeout,
        }
    }

    /// The replica it submits for.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// The outcome once committed, or why there is none yet.
    pub async fn submit(&self, request: pb::SubmitRecordsRequest) -> Result<Outcome, Unavailable> {
        let tx = pb::LedgerTx {
            kind: Some(pb::ledger_tx::Kind::Submit(request.clone())),
        }
        .encode_to_vec();
        let hash = tx_hash(&tx);
        let checked = self.check(hash, request.clone()).await?;
        match checked {
            Err(e) => return Ok(Err(e)),
            Ok(done) if done.stored == 0 => return Ok(Ok(done)),
            Ok(_) => {}
        }
        let committed = self.replica.committed(hash);
        match cometbft::broadcast_tx_sync(self.rpc, &tx).await {
            Ok(r) if r.code == 0 => {}
            Ok(r) => {
                // The state moved since the check: name the refusal as SubmitRecords does.
                return match self.check(hash, request).await? {
                    Err(e) => Ok(Err(e)),
                    Ok(_) => Err(Unavailable::Refused(format!("{} ({})", r.log, r.info))),
                };
            }
            // Already in the mempool (a retry, or another client with the same batch).
            Err(RpcError::Rpc { error, .. }) if error.contains("already exists in cache") => {}
            Err(e) => return Err(e.into()),
        }
        match tokio::time::timeout(self.commit_timeout, committed).await {
            Ok(Ok(Err(e))) if is_future(&e) => Err(Unavailable::ChainBehind(e.to_string())),
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) | Err(_) => Err(Unavailable::NotCommitted(self.commit_timeout)),
        }
    }

    /// Hands a registry change to the replica's CometBFT node ([`deliver_registry_change`]).
    pub async fn registry_change(&self, tx: &[u8]) -> Result<RegistryDelivery, Unavailable> {
        Ok(deliver_registry_change(self.rpc, tx).await?)
    }

    async fn check(
        &self,
        hash: crate::merkle::Hash,
        request: pb::SubmitRecordsRequest,
    ) -> Result<Result<Submitted, Arc<SubmitError>>, Unavailable> {
        let replica = self.replica.clone();
        let check = move || replica.check_submission(hash, &request).map_err(Arc::new);
        tokio::task::spawn_blocking(check)
            .await
            .map_err(|e| Unavailable::Task(e.to_string()))
    }
}

/// What became of a registry change handed to a CometBFT node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryDelivery {
    /// Taken into the node's mempool, or seen by it before: it commits with a coming block,
    /// or did.
    pub taken: bool,
    /// The transaction's hash when taken; CheckTx's reason when refused (usually a used
    /// nonce: this change, or a later one, applied already).
    pub detail: String,
}

/// Hands the registry change `tx` to the CometBFT node whose RPC listens on `rpc`. Whoever
/// delivers a change first, it applies once: the others' copies are refused as stale.
pub async fn deliver_registry_change(
    rpc: SocketAddr,
    tx: &[u8],
) -> Result<RegistryDelivery, RpcError> {
    match cometbft::broadcast_tx_sync(rpc, tx).await {
        Ok(r) if r.code == 0 => Ok(RegistryDelivery {
            taken: true,
            detail: r.hash,
        }),
        Ok(r) => Ok(RegistryDelivery {
            taken: false,
            detail: format!("code {}: {}", r.code, r.log),
        }),
        Err(RpcError::Rpc { error, .. }) if error.contains("already exists in cache") => {
            Ok(RegistryDelivery {
                taken: true,
                // CometBFT's cache remembers committed transactions too.
                detail: "already seen by this node (pending, or committed)".into(),
            })
        }
        Err(e) => Err(e),
    }
}

fn is_future(e: &SubmitError) -> bool {
    matches!(e, SubmitError::Refused { first, .. } if matches!(first.refusal, Refusal::FutureEpoch { .. }))
}
