//! The ledger replicated over a network's super nodes: the ABCI 2.0 application CometBFT
//! v0.38 drives ([`abci`] puts it on gRPC). CometBFT orders transactions; this state machine
//! applies them deterministically — block time as the clock, the registry and settings
//! from the genesis and from registry transactions, one store transaction per block made
//! durable at `Commit` — and the validators endorse the ledger blocks it seals through vote
//! extensions ([`endorse`]). Design and the reasons behind it: `ledger/README.md`,
//! "Replication".

pub mod abci;
mod acks;
pub mod endorse;
pub mod forward;
pub mod genesis;
pub mod registry;
mod tx;
mod verified;

use std::sync::{Arc, Mutex, RwLock};

use ed25519_dalek::SigningKey;
use prost::Message;

pub use acks::Outcome;
pub use forward::{RegistryDelivery, deliver_registry_change};
pub use genesis::AppState;
pub use hsn_ledger_api::genesis::{validator_address, validator_key_json};
pub use registry::Registry;
pub use tx::{TxCode, tx_hash};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::clock::{Clock, SystemClock};
use crate::ledger::{Ledger, OpenError, Signatures, SubmitError};
use crate::merkle::Hash;
use crate::store::{ReplicaState, Store, StoreError, WriteTables};
use hsn_ledger_api::canonical::Canonical;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;

/// Domain tag of the app hash.
pub const APP_HASH_DOMAIN: &str = "HSN-LEDGER/APP/V1";
/// Replica value: the registry (JSON).
const REGISTRY: &str = "registry";
/// Replica value: the last block's time (unix seconds, big-endian).
const BLOCK_TIME: &str = "block_time";

/// Why a replica could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The stored or genesis registry is unusable.
    #[error("registry: {0}")]
    Registry(String),
    /// CometBFT's genesis is not the one this replica was started with.
    #[error("InitChain app_state differs from the genesis file this replica read")]
    GenesisMismatch,
}

/// A replica's clock: inside `FinalizeBlock` the block's time, nothing else (consensus
/// must not read a local clock); outside, for checks that write nothing, the later of the
/// last block's time and the system clock, so a stalled chain does not make the present
/// epoch look like the future.
#[derive(Debug, Default)]
struct BlockClock {
    block: AtomicU64,
    in_block: AtomicBool,
}

impl Clock for BlockClock {
    fn now(&self) -> u64 {
        let block = self.block.load(Ordering::SeqCst);
        if self.in_block.load(Ordering::SeqCst) {
            block
        } else {
            block.max(SystemClock.now())
        }
    }
}

/// A block applied by `FinalizeBlock`, waiting for `Commit`.
#[derive(Debug)]
struct Finalized {
    registry: Option<Registry>,
    outcomes: Vec<(Hash, Outcome)>,
}

/// What `FinalizeBlock` answers.
#[derive(Debug)]
pub struct FinalizedBlock {
    /// One result per transaction, in order.
    pub tx_results: Vec<TxCode>,
    /// Validators whose power changed (0: removed).
    pub validator_updates: Vec<(NodeKey, i64)>,
    /// The app hash after the block.
    pub app_hash: Hash,
}

/// A validator as a replica sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorState {
    /// Its key (the super node's).
    pub key: NodeKey,
    /// Its name in the registry.
    pub name: String,
    /// Its voting power.
    pub power: i64,
    /// The newest of the last [`endorse::MAX_PER_VOTE`] ledger blocks it signed.
    pub last_signed_block: Option<u64>,
}

/// A replica's replication state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The last CometBFT block applied.
    pub app_height: u64,
    /// Every ledger block below this height has its quorum.
    pub endorsed_blocks: u64,
    /// The validators.
    pub validators: Vec<ValidatorState>,
}

/// One super node's replica of its network's ledger.
#[derive(Debug)]
pub struct Replica {
    ledger: Arc<Ledger>,
    clock: Arc<BlockClock>,
    key: SigningKey,
    genesis: AppState,
    registry: RwLock<Registry>,
    finalized: Mutex<Option<Finalized>>,
    acks: acks::Acks,
    verified: verified::Verified,
}

impl Replica {
    /// Opens the replica's store for the network of `genesis`; `key` is the super node's
    /// key, which is also its CometBFT validator key.
    pub fn open(store: Store, genesis: AppState, key: SigningKey) -> Result<Self, ReplicaError> {
        let read = store.read()?;
        let registry = match read.replica_value(REGISTRY)? {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| ReplicaError::Registry(e.to_string()))?
            }
            None => Registry::genesis(&genesis),
        };
        let time = read
            .replica_value(BLOCK_TIME)?
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes);
        drop(read);
        let keys = registry
            .keys()
            .map_err(|e| ReplicaError::Registry(e.to_string()))?;
        let clock = Arc::new(BlockClock {
            block: AtomicU64::new(time),
            in_block: AtomicBool::new(false),
        });
        let ledger =
            Ledger::open_replicated(genesis::ledger_config(&genesis), store, keys, clock.clone())?;
        let ledger = Arc::new(ledger);
        Ok(Self {
            ledger,
            clock,
            key,
            genesis,
            registry: RwLock::new(registry),
            finalized: Mutex::new(None),
            acks: acks::Acks::default(),
            verified: verified::Verified::default(),
        })
    }

    /// The ledger, for reads (the gRPC queries).
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The genesis settings.
    pub fn genesis(&self) -> &AppState {
        &self.genesis
    }

    /// The registry as of the last block applied.
    pub fn registry(&self) -> Registry {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Height, endorsement and validators as of the last committed block.
    pub fn status(&self) -> Result<ReplicaStatus, StoreError> {
        let read = self.ledger.store().read()?;
        let app_height = read.replica_state()?.height;
        let endorsed_blocks = endorse::endorsed_below(&read)?;
        let blocks = read.status()?.blocks;
        let registry = self.registry();
        let mut validators: Vec<ValidatorState> = registry
            .validators()
            .into_iter()
            .map(|key| ValidatorState {
                key,
                name: registry.name_of(&key).unwrap_or_default().to_owned(),
                power: registry::VALIDATOR_POWER,
                last_signed_block: None,
            })
            .collect();
        for height in (blocks.saturating_sub(endorse::MAX_PER_VOTE)..blocks).rev() {
            let Some(m) = read.header(height)? else {
                continue;
            };
            let Ok(signed) = crate::block::SignedHeader::from_pb(&m) else {
                continue;
            };
            let pairs = signed.header.signers.iter().zip(&signed.signatures);
            for (signer, signature) in pairs {
                let v = validators.iter_mut().find(|v| v.key == *signer);
                if let Some(v) = v.filter(|v| v.last_signed_block.is_none() && signature.is_some())
                {
                    v.last_signed_block = Some(height);
                }
            }
        }
        Ok(ReplicaStatus {
            app_height,
            endorsed_blocks,
            validators,
        })
    }

    /// This super node's key.
    pub fn public_key(&self) -> NodeKey {
        NodeKey::of(&self.key)
    }

    /// The last block applied (ABCI `Info`): CometBFT replays the blocks after it.
    pub fn info(&self) -> Result<ReplicaState, StoreError> {
        self.ledger.store().read()?.replica_state()
    }

    /// ABCI `InitChain`: checks CometBFT's genesis against the replica's, stores the
    /// registry and returns the validators and the first app hash.
    pub fn init_chain(
        &self,
        app_state: &[u8],
    ) -> Result<(Vec<(NodeKey, i64)>, Hash), ReplicaError> {
        let given: AppState =
            serde_json::from_slice(app_state).map_err(|_| ReplicaError::GenesisMismatch)?;
        if given != self.genesis {
            return Err(ReplicaError::GenesisMismatch);
        }
        let registry = Registry::genesis(&self.genesis);
        let app_hash = *blake3::hash(
            &Canonical::new(APP_HASH_DOMAIN)
                .var(&self.genesis.to_bytes())
                .finish(),
        )
        .as_bytes();
        let stored = serde_json::to_vec(&registry).expect("a registry serialises");
        self.ledger.store().write(|t| -> Result<(), StoreError> {
            t.set_replica_value(REGISTRY, &stored)?;
            t.set_replica_state(ReplicaState {
                height: 0,
                app_hash,
            })
        })?;
        let validators = registry.validators().into_iter();
        let validators = validators.map(|k| (k, registry::VALIDATOR_POWER)).collect();
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = registry;
        Ok((validators, app_hash))
    }

    /// ABCI `CheckTx`: would the transaction apply on the last committed state? Writes
    /// nothing. Re-checks after a block skip the signatures (`FinalizeBlock` validates again).
    pub fn check_tx(&self, bytes: &[u8], recheck: bool) -> TxCode {
        let tx = match tx::decode(bytes, self.genesis.max_batch_items) {
            Ok(tx) => tx,
            Err(code) => return code,
        };
        match tx {
            pb::ledger_tx::Kind::Submit(_) if recheck => TxCode::ok(Vec::new()),
            pb::ledger_tx::Kind::Submit(request) => {
                tx::submitted(&self.check_submission(tx_hash(bytes), &request))
            }
            pb::ledger_tx::Kind::Endorse(_) => TxCode::endorsement_in_mempool(),
            pb::ledger_tx::Kind::Registry(change) => {
                let registry = self.registry();
                tx::registry(registry.apply(&self.genesis.network, &change).map(drop))
            }
        }
    }

    /// A submission against the last committed state, writing nothing; its signatures are
    /// verified unless these exact bytes (`hash`) were verified before.
    pub fn check_submission(
        &self,
        hash: Hash,
        request: &pb::SubmitRecordsRequest,
    ) -> Result<crate::ledger::Submitted, SubmitError> {
        let checked = self.ledger.check(request, self.signatures(&hash));
        if checked.is_ok() {
            self.verified.insert(hash);
        }
        checked
    }

    fn signatures(&self, hash: &Hash) -> Signatures {
        if self.verified.contains(hash) {
            Signatures::AlreadyVerified
        } else {
            Signatures::Verify
        }
    }

    /// ABCI `PrepareProposal`: the endorsement of the previous height's vote extensions
    /// first, then the mempool's transactions (without endorsements) up to `max_bytes`.
    pub fn prepare(
        &self,
        txs: Vec<Vec<u8>>,
        extensions: &[Vec<u8>],
        max_bytes: usize,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(txs.len() + 1);
        let mut size = 0;
        if let Some(endorsement) = self.gather(extensions) {
            let bytes = pb::LedgerTx {
                kind: Some(pb::ledger_tx::Kind::Endorse(endorsement)),
            }
            .encode_to_vec();
            if bytes.len() <= max_bytes {
                size += bytes.len();
                out.push(bytes);
            }
        }
        for tx in txs {
            let endorse = matches!(
                tx::decode(&tx, self.genesis.max_batch_items),
                Ok(pb::ledger_tx::Kind::Endorse(_))
            );
            if endorse || size + tx.len() > max_bytes {
                continue;
            }
            size += tx.len();
            out.push(tx);
        }
        out
    }

    /// The votes of `extensions` that hold and sign something, as one endorsement.
    fn gather(&self, extensions: &[Vec<u8>]) -> Option<pb::Endorsement> {
        let read = self.ledger.store().read().ok()?;
        let votes: Vec<pb::VoteEndorsement> = extensions
            .iter()
            .filter(|e| endorse::check_extension(&read, e).is_ok())
            .filter_map(|e| pb::VoteEndorsement::decode(e.as_slice()).ok())
            .filter(|v| !v.signatures.is_empty())
            .collect();
        (!votes.is_empty()).then_some(pb::Endorsement { votes })
    }

    /// ABCI `ProcessProposal`: every transaction decodes, at most one endorsement, first,
    /// and its signatures hold.
    pub fn process(&self, txs: &[Vec<u8>]) -> bool {
        let Ok(read) = self.ledger.store().read() else {
            return false;
        };
        txs.iter().enumerate().all(
            |(i, tx)| match tx::decode(tx, self.genesis.max_batch_items) {
                Ok(pb::ledger_tx::Kind::Endorse(e)) => i == 0 && endorse::check(&read, &e).is_ok(),
                Ok(_) => true,
                Err(_) => false,
            },
        )
    }

    /// ABCI `ExtendVote`: this validator's signatures over the blocks it still has to sign.
    pub fn extend_vote(&self) -> Result<Vec<u8>, StoreError> {
        let read = self.ledger.store().read()?;
        Ok(endorse::extend(&read, &self.key)?.encode_to_vec())
    }

    /// ABCI `VerifyVoteExtension`: the extension of the validator with CometBFT `address`
    /// is its own key's and its signatures hold.
    pub fn verify_extension(&self, address: &[u8], extension: &[u8]) -> bool {
        let Ok(read) = self.ledger.store().read() else {
            return false;
        };
        match endorse::check_extension(&read, extension) {
            Ok(signer) => validator_address(&signer)[..] == address[..],
            Err(_) => false,
        }
    }

    /// ABCI `FinalizeBlock`: applies the block at its time in one store transaction (not
    /// yet durable), seals the epochs whose late window ended, returns the app hash.
    pub fn finalize(
        &self,
        height: u64,
        time: u64,
        txs: &[Vec<u8>],
    ) -> Result<FinalizedBlock, StoreError> {
        let before = self.info()?;
        let time = time.max(self.clock.block.load(Ordering::SeqCst));
        self.clock.block.store(time, Ordering::SeqCst);
        self.clock.in_block.store(true, Ordering::SeqCst);
        let finalized = self.finalize_at(height, time, txs, before);
        self.clock.in_block.store(false, Ordering::SeqCst);
        finalized
    }

    fn finalize_at(
        &self,
        height: u64,
        time: u64,
        txs: &[Vec<u8>],
        before: ReplicaState,
    ) -> Result<FinalizedBlock, StoreError> {
        let registry = self.registry();
        let mut next_registry: Option<Registry> = None;
        let mut outcomes = Vec::new();
        let (tx_results, updates, app_hash) = self.ledger.store().write_block(|t| {
            let mut results = Vec::with_capacity(txs.len());
            for bytes in txs {
                let next = &mut next_registry;
                results.push(self.apply_tx(t, bytes, &registry, next, &mut outcomes)?);
            }
            let current = next_registry.as_ref().unwrap_or(&registry);
            self.ledger.seal_due_in(t, &current.validators())?;
            t.set_replica_value(BLOCK_TIME, &time.to_be_bytes())?;
            let updates = next_registry
                .as_ref()
                .map(|next| registry.validator_updates(next))
                .unwrap_or_default();
            let app_hash = app_hash(&before.app_hash, height, &t.journal(), &results);
            t.set_replica_state(ReplicaState { height, app_hash })?;
            Ok::<_, StoreError>((results, updates, app_hash))
        })?;
        *self.finalized.lock().unwrap_or_else(|p| p.into_inner()) = Some(Finalized {
            registry: next_registry,
            outcomes,
        });
        Ok(FinalizedBlock {
            tx_results,
            validator_updates: updates,
            app_hash,
        })
    }

    fn apply_tx(
        &self,
        t: &mut WriteTables<'_>,
        bytes: &[u8],
        registry: &Registry,
        next_registry: &mut Option<Registry>,
        outcomes: &mut Vec<(Hash, Outcome)>,
    ) -> Result<TxCode, StoreError> {
        let tx = match tx::decode(bytes, self.genesis.max_batch_items) {
            Ok(tx) => tx,
            Err(code) => return Ok(code),
        };
        match tx {
            pb::ledger_tx::Kind::Submit(request) => {
                let hash = tx_hash(bytes);
                let result = self.ledger.submit_in(t, &request, self.signatures(&hash));
                if let Err(SubmitError::Store(e)) = result {
                    return Err(e);
                }
                let code = tx::submitted(&result);
                outcomes.push((hash, result.map_err(Arc::new)));
                Ok(code)
            }
            pb::ledger_tx::Kind::Endorse(e) => {
                endorse::apply(t, &e)?;
                Ok(TxCode::ok(Vec::new()))
            }
            pb::ledger_tx::Kind::Registry(change) => {
                let current = next_registry.as_ref().unwrap_or(registry);
                let applied = current.apply(&self.genesis.network, &change);
                if let Ok(next) = &applied {
                    let stored = serde_json::to_vec(next).expect("a registry serialises");
                    t.set_replica_value(REGISTRY, &stored)?;
                    if let Ok(keys) = next.keys() {
                        self.ledger.set_registry(keys);
                    }
                    *next_registry = Some(next.clone());
                }
                Ok(tx::registry(applied.map(drop)))
            }
        }
    }

    /// ABCI `Commit`: makes the finalized block durable, then acknowledges its submissions.
    pub fn commit(&self) -> Result<(), StoreError> {
        self.ledger.store().commit_block()?;
        let finalized = self
            .finalized
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(f) = finalized {
            if let Some(next) = f.registry {
                *self.registry.write().unwrap_or_else(|p| p.into_inner()) = next;
            }
            self.acks.settle(f.outcomes);
        }
        self.ledger.blocks_committed()
    }

    /// Waits for the transaction with hash `hash` to be committed: its outcome, or `None`
    /// when the replica drops the wait (shutdown).
    pub fn committed(&self, hash: Hash) -> tokio::sync::oneshot::Receiver<Outcome> {
        self.acks.wait(hash)
    }
}

/// The registry a replicated ledger's store holds (for reading a copied store file).
pub fn stored_registry(read: &crate::store::ReadTables) -> Result<Option<Registry>, StoreError> {
    Ok(read
        .replica_value(REGISTRY)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// `BLAKE3("HSN-LEDGER/APP/V1" ‖ previous app hash ‖ height ‖ hash of every store write of
/// the block ‖ hash of its transaction results)`: two replicas that stored anything
/// differently, or judged a transaction differently, disagree at that height.
fn app_hash(previous: &Hash, height: u64, journal: &Hash, results: &[TxCode]) -> Hash {
    let mut r = blake3::Hasher::new();
    for result in results {
        r.update(&result.code.to_be_bytes());
        r.update(
            &u32::try_from(result.info.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        r.update(result.info.as_bytes());
    }
    let bytes = Canonical::new(APP_HASH_DOMAIN)
        .fixed(previous)
        .u64(height)
        .fixed(journal)
        .fixed(r.finalize().as_bytes())
        .finish();
    *blake3::hash(&bytes).as_bytes()
}
