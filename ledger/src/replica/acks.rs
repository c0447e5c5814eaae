//! Acknowledging submissions once committed: `SubmitRecords` on a replica waits for the
//! outcome of its transaction, which `Commit` hands over after the block is durable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::ledger::{SubmitError, Submitted};
use crate::merkle::Hash;

/// What a committed submission did, or why it was refused in its block.
pub type Outcome = Result<Submitted, Arc<SubmitError>>;

/// Waiters by transaction hash.
#[derive(Debug, Default)]
pub(super) struct Acks {
    waiting: Mutex<HashMap<Hash, Vec<oneshot::Sender<Outcome>>>>,
}

impl Acks {
    pub(super) fn wait(&self, hash: Hash) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.retain(|_, senders| {
            senders.retain(|s| !s.is_closed());
            !senders.is_empty()
        });
        waiting.entry(hash).or_default().push(tx);
        rx
    }

    pub(super) fn settle(&self, outcomes: Vec<(Hash, Outcome)>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        for (hash, outcome) in outcomes {
            for sender in waiting.remove(&hash).unwrap_or_default() {
                let _ = sender.send(outcome.clone());
            }
        }
    }
}
