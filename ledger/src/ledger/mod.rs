//! The ledger of one network on one super node: the store, the super node's key, the key
//! registry and the epoch clock put together. Synchronous; the service calls it from
//! blocking threads.

mod items;
mod submit;

pub use items::{encoded_items, encoded_tx_items};

use std::sync::{Arc, RwLock};

use ed25519_dalek::SigningKey;
use tokio::sync::watch;

pub use submit::{
    Item, ItemRefusal, Refusal, Signatures, SubmitError, Submitted, VERIFY_BESIDE_MIN,
};

use crate::attest::{Attester, Tolerance};
use crate::block::{self, Sealer, SignedHeader};
use crate::clock::Clock;
use crate::entry::Entry;
use crate::merkle::{self, Hash, TreeHash};
use crate::store::{At, Location, Store, StoreError, WriteTables};
use hsn_core::EpochClock;
use hsn_ledger_api::keys::{KeyRegistry, NodeKey};
use hsn_ledger_api::pb;
use hsn_ledger_api::record::RecordKey;

pub use hsn_ledger_api::genesis::DEFAULT_LATE_WINDOW_SECONDS;

/// How a ledger runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerConfig {
    /// The network it serves; records of other networks are refused.
    pub network: String,
    /// Epoch length.
    pub epoch_seconds: u64,
    /// How long after an epoch ends it is sealed, to let late records in (the late window).
    pub grace_seconds: u64,
    /// Attestation tolerance.
    pub tolerance: Tolerance,
    /// Most entries per block; a larger epoch spans several blocks.
    pub max_block_entries: usize,
    /// Most records plus observations per request.
    pub max_batch_items: usize,
}

impl LedgerConfig {
    /// The defaults for `network`: 60 s epochs, a six-hour late window, 4096 B or 1 %,
    /// 10000 entries per block, 10000 items per request.
    pub fn new(network: &str) -> Self {
        Self {
            network: network.to_owned(),
            epoch_seconds: 60,
            grace_seconds: DEFAULT_LATE_WINDOW_SECONDS,
            tolerance: Tolerance::default(),
            max_block_entries: 10_000,
            max_batch_items: 10_000,
        }
    }
}

/// Why a ledger could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file holds another network's chain.
    #[error("the store holds network {stored:?}, configured for {configured:?}")]
    Network {
        /// In the file.
        stored: String,
        /// Asked for.
        configured: String,
    },
    /// A limit of zero.
    #[error("max_block_entries and max_batch_items must be at least 1")]
    Limits,
}

/// Why sealing failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The epoch has not ended.
    #[error("epoch {epoch} has not ended; the current epoch is {current}")]
    NotClosed {
        /// Asked for.
        epoch: u64,
        /// Now.
        current: u64,
    },
    /// The epoch has ended but its grace period has not (and early sealing is off).
    #[error(
        "epoch {epoch} is in its grace period until {until} (unix seconds); only due epochs are sealed on request"
    )]
    InGrace {
        /// Asked for.
        epoch: u64,
        /// When its grace period ends.
        until: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A sealed entry with what proves it.
#[derive(Clone, Debug, PartialEq)]
pub struct InclusionProof {
    /// The entry, as stored.
    pub entry: pb::Entry,
    /// Its block's signed header.
    pub header: pb::SignedHeader,
    /// The Merkle path.
    pub proof: merkle::Proof,
}

/// Why a proof could not be given.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// Nothing under the key.
    #[error("no entry {0}")]
    Absent(RecordKey),
    /// Not sealed yet, so in no block.
    #[error("entry {0} is pending: its epoch is not sealed yet")]
    Pending(RecordKey),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ledger's state at a glance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerStatus {
    /// The network.
    pub network: String,
    /// Number of blocks.
    pub blocks: u64,
    /// Hash of the last header.
    pub head_hash: Option<Hash>,
    /// The epoch now.
    pub current_epoch: u64,
    /// Every epoch up to this one is sealed.
    pub sealed_through: Option<u64>,
    /// Entries waiting for their epoch to be sealed.
    pub pending: u64,
    /// Conflicting submissions kept.
    pub evidence: u64,
    /// The ledger's key.
    pub signer: NodeKey,
    /// Epoch length.
    pub epoch_seconds: u64,
    /// The ledger's clock.
    pub time: u64,
}

/// One network's ledger.
#[derive(Debug)]
pub struct Ledger {
    config: LedgerConfig,
    epochs: EpochClock,
    store: Store,
    attester: Attester,
    registry: RwLock<KeyRegistry>,
    clock: Arc<dyn Clock>,
    blocks: watch::Sender<u64>,
    damaged: std::sync::OnceLock<String>,
}

impl Ledger {
    /// Why the store is known to be damaged, if it is: the service then stops serving from
    /// it and nothing more is sealed on top of it.
    pub fn damaged(&self) -> Option<&str> {
        self.damaged.get().map(String::as_str)
    }

    /// Records that the store is damaged (the first reason stays).
    pub fn mark_damaged(&self, why: String) {
        if self.damaged.set(why.clone()).is_ok() {
            tracing::error!(%why, "the ledger's store is damaged; no longer serving from it");
        }
    }

    /// A ledger over `store`, signing with the super node's `key`.
    pub fn open(
        config: LedgerConfig,
        store: Store,
        key: SigningKey,
        registry: KeyRegistry,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OpenError> {
        let attester = Attester::new(key, config.tolerance);
        Self::open_with(config, store, attester, registry, clock)
    }

    /// The ledger of one replica of a replicated chain: judged by the validator set (no
    /// co-signatures), sealed into blocks the validators endorse, on `clock` = block time.
    pub fn open_replicated(
        config: LedgerConfig,
        store: Store,
        registry: KeyRegistry,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OpenError> {
        let attester = Attester::replicated(config.tolerance);
        Self::open_with(config, store, attester, registry, clock)
    }

    fn open_with(
        config: LedgerConfig,
        store: Store,
        attester: Attester,
        registry: KeyRegistry,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OpenError> {
        if config.max_block_entries == 0 || config.max_batch_items == 0 {
            return Err(OpenError::Limits);
        }
        let read = store.read()?;
        if let Some(first) = read.header(0)?.and_then(|h| h.header)
            && first.network != config.network
        {
            let (stored, configured) = (first.network, config.network.clone());
            return Err(OpenError::Network { stored, configured });
        }
        let blocks = read.status()?.blocks;
        drop(read);
        Ok(Self {
            epochs: EpochClock::new(config.epoch_seconds),
            attester,
            registry: RwLock::new(registry),
            blocks: watch::Sender::new(blocks),
            damaged: std::sync::OnceLock::new(),
            config,
            store,
            clock,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// The super node's public key, which co-signs and signs blocks.
    pub fn public_key(&self) -> NodeKey {
        self.attester.public()
    }

    /// The store, for statistics.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Gives the store back, e.g. to compact it.
    pub fn into_store(self) -> Store {
        self.store
    }

    /// Replaces the key registry (e.g. after the registry file changed).
    pub fn set_registry(&self, registry: KeyRegistry) {
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = registry;
    }

    /// The key registry in force.
    pub fn registry(&self) -> KeyRegistry {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Follows the number of blocks; changes after every seal that made blocks.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.blocks.subscribe()
    }

    /// Seals every epoch whose grace period is over.
    pub fn seal_due(&self) -> Result<Vec<SignedHeader>, SealError> {
        if let Some(why) = self.damaged() {
            return Err(SealError::Store(StoreError::Damaged {
                at: At::Header(0),
                what: format!("not sealing on a damaged store ({why})"),
            }));
        }
        let now = self.clock.now();
        match self.epochs.ended_by(now, self.config.grace_seconds) {
            Some(epoch) => self.seal_through(epoch),
            None => Ok(Vec::new()),
        }
    }

    /// [`Self::seal_through`] for an epoch whose grace period is over: what the seal loop
    /// does anyway, so anyone may ask for it.
    pub fn seal_due_through(&self, epoch: u64) -> Result<Vec<SignedHeader>, SealError> {
        let now = self.clock.now();
        let due = self.epochs.ended_by(now, self.config.grace_seconds);
        if due.is_none_or(|d| epoch > d) {
            let until = (epoch + 1) * self.epochs.seconds() + self.config.grace_seconds;
            if epoch < self.epochs.at(now) {
                return Err(SealError::InGrace { epoch, until });
            }
        }
        self.seal_through(epoch)
    }

    /// Seals every epoch up to `epoch`, which must have ended, into blocks of at most
    /// `max_block_entries`; from then on new information for those epochs is refused.
    pub fn seal_through(&self, epoch: u64) -> Result<Vec<SignedHeader>, SealError> {
        let now = self.clock.now();
        let current = self.epochs.at(now);
        if epoch >= current {
            return Err(SealError::NotClosed { epoch, current });
        }
        // Most calls (the periodic seal loop) find nothing to do: answer from a read
        // snapshot instead of committing an empty write transaction.
        if self
            .store
            .read()?
            .sealed_through()?
            .is_some_and(|s| s >= epoch)
        {
            return Ok(Vec::new());
        }
        let sealer = Sealer::Attester(&self.attester);
        let sealed = self
            .store
            .write(|t| self.seal_epochs(t, epoch, now, sealer))?;
        if let Some(last) = sealed.last() {
            self.blocks.send_replace(last.header.height + 1);
            // The sealed entries left their pending pages free.
            self.store.reclaim_after_commit();
        }
        Ok(sealed)
    }

    /// Inside a replicated block's transaction, seals every epoch whose late window is over
    /// at the ledger clock's time (the block's), into blocks listing `validators` as their
    /// signers (they endorse them later, through vote extensions).
    pub fn seal_due_in(
        &self,
        t: &mut WriteTables<'_>,
        validators: &[NodeKey],
    ) -> Result<Vec<SignedHeader>, StoreError> {
        let now = self.clock.now();
        match self.epochs.ended_by(now, self.config.grace_seconds) {
            Some(epoch) => self.seal_epochs(t, epoch, now, Sealer::Validators(validators)),
            None => Ok(Vec::new()),
        }
    }

    fn seal_epochs(
        &self,
        t: &mut WriteTables<'_>,
        epoch: u64,
        now: u64,
        sealer: Sealer<'_>,
    ) -> Result<Vec<SignedHeader>, StoreError> {
        if t.sealed_through()?.is_some_and(|s| s >= epoch) {
            return Ok(Vec::new());
        }
        let mut tip = t.tip()?;
        let mut headers = Vec::new();
        let endorsing = match sealer {
            Sealer::Attester(_) => crate::endorsing::Endorsing::Signers,
            Sealer::Validators(_) => crate::endorsing::Endorsing::Quorum,
        };
        while let Some(e) = t.first_pending_epoch()?.filter(|&e| e <= epoch) {
            let entries = t.pending_of_epoch(e, self.config.max_block_entries)?;
            // What is sealed gets signed: a pending entry damaged since it was checked
            // stops the seal instead.
            if let Err((i, what)) = crate::verify::check_unsealed(&entries, endorsing) {
                return Err(StoreError::Damaged {
                    at: At::Pending(entries[i].key().to_string()),
                    what: format!("does not verify: {what}"),
                });
            }
            let network = &self.config.network;
            let block = block::seal(&tip, network, e, entries, now, sealer);
            t.put_block(&block)?;
            tip = block::Tip::after(&block.header.header);
            headers.push(block.header);
        }
        t.set_sealed_through(epoch)?;
        Ok(headers)
    }

    /// Tells block watchers about blocks another writer committed (a replicated ledger's
    /// blocks become visible at ABCI `Commit`).
    pub fn blocks_committed(&self) -> Result<(), StoreError> {
        let blocks = self.store.read()?.status()?.blocks;
        self.blocks
            .send_if_modified(|b| std::mem::replace(b, blocks) != blocks);
        Ok(())
    }

    /// Head, epochs and counts.
    pub fn status(&self) -> Result<LedgerStatus, StoreError> {
        let s = self.store.read()?.status()?;
        let now = self.clock.now();
        Ok(LedgerStatus {
            network: self.config.network.clone(),
            blocks: s.blocks,
            head_hash: s.head.map(|h| h.header.hash()),
            current_epoch: self.epochs.at(now),
            sealed_through: s.sealed_through,
            pending: s.pending,
            evidence: s.evidence,
            signer: self.public_key(),
            epoch_seconds: self.epochs.seconds(),
            time: now,
        })
    }

    /// Block `height`, as stored.
    pub fn block(&self, height: u64, with_entries: bool) -> Result<Option<pb::Block>, StoreError> {
        self.store.read()?.block(height, with_entries)
    }

    /// Up to `limit` signed headers from `from` on.
    pub fn headers(&self, from: u64, limit: u64) -> Result<Vec<pb::SignedHeader>, StoreError> {
        let read = self.store.read()?;
        let mut out = Vec::new();
        for height in from..from.saturating_add(limit) {
            match read.header(height)? {
                Some(h) => out.push(h),
                None => break,
            }
        }
        Ok(out)
    }

    /// Where each key's entry is.
    pub fn lookup(&self, keys: &[RecordKey]) -> Result<Vec<Location>, StoreError> {
        let read = self.store.read()?;
        keys.iter().map(|k| read.locate(k)).collect()
    }

    /// A sealed entry with its header and Merkle path.
    pub fn proof(&self, key: &RecordKey) -> Result<InclusionProof, ProofError> {
        let read = self.store.read()?;
        let (height, index) = match read.locate(key)? {
            Location::Absent => return Err(ProofError::Absent(key.clone())),
            Location::Pending(_) => return Err(ProofError::Pending(key.clone())),
            Location::Sealed { height, index, .. } => (height, index),
        };
        let header = read
            .header(height)?
            .ok_or(ProofError::Absent(key.clone()))?;
        let entries = read.block_entries(height)?;
        let tree = header
            .header
            .as_ref()
            .and_then(|h| block::from_version(h.version))
            .map(|(_, tree)| tree)
            .ok_or_else(|| StoreError::Damaged {
                at: At::Header(height),
                what: "header without a known version".into(),
            })?;
        let leaves = entries
            .iter()
            .enumerate()
            .map(|(i, m)| leaf_of_stored(m, tree, height, i));
        let leaves = leaves.collect::<Result<Vec<_>, _>>()?;
        let proof = merkle::prove(tree, &leaves, index);
        let proof = proof.ok_or(ProofError::Absent(key.clone()))?;
        Ok(InclusionProof {
            entry: entries[index as usize].clone(),
            header,
            proof,
        })
    }

    /// Every conflicting submission kept as evidence.
    pub fn evidence(&self) -> Result<Vec<pb::Evidence>, StoreError> {
        self.store.read()?.evidence()
    }
}

fn leaf_of_stored(
    m: &pb::Entry,
    tree: TreeHash,
    height: u64,
    index: usize,
) -> Result<Hash, StoreError> {
    let at = At::Entry(height, u32::try_from(index).unwrap_or(u32::MAX));
    let entry = Entry::from_pb(m).map_err(|source| StoreError::Entry { at, source })?;
    Ok(entry.leaf_hash(tree))
}

#[cfg(test)]
mod tests;
