//! Submission: validate every item (shape, network, key and role, epoch, signatures in one
//! batch), then apply the exactly-once rule in one write transaction (for a large request,
//! applied while the signatures are verified, committed only once they are). All or
//! nothing: one refused item refuses the request and nothing of it is stored, except the
//! evidence of a conflict.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::VerifyingKey;

use super::Ledger;
use crate::attest::{Attester, Verdict};
use crate::entry::{Entry, Merge, Part, merge};
use crate::sigs::Batch;
use crate::store::{Location, StoreError, WriteTables};
use hsn_core::Role;
use hsn_ledger_api::keys::{KeyRegistry, NodeKey};
use hsn_ledger_api::pb;
use hsn_ledger_api::record::{RecordError, RecordKey, SignedObservation, SignedRecord};
use hsn_ledger_api::refusal::Reason;

/// Whether to verify the signatures of a request. A replica skips them for the exact
/// bytes it verified before (their validity depends on nothing else); everything else —
/// shape, network, registry and roles, epochs, the exactly-once rule — is checked always.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signatures {
    /// Verify them.
    Verify,
    /// Already verified for these exact bytes.
    AlreadyVerified,
}

/// What an accepted submission did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Submitted {
    /// Items that added something.
    pub stored: u32,
    /// Identical re-submissions; nothing changed.
    pub duplicates: u32,
    /// Entries completed with an attested judgement.
    pub attested: u32,
    /// Entries completed with a disputed judgement.
    pub disputed: u32,
}

/// Why one item (or the request as a whole) is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No items.
    #[error("the request holds no records or observations")]
    Empty,
    /// More items than allowed in one request.
    #[error("{items} items in one request, at most {max} allowed")]
    TooMany {
        /// Items sent.
        items: usize,
        /// The limit.
        max: usize,
    },
    /// Malformed, or without signature.
    #[error(transparent)]
    Malformed(#[from] RecordError),
    /// Another network's record.
    #[error("network {got:?}, this ledger serves {want:?}")]
    WrongNetwork {
        /// The ledger's.
        want: String,
        /// The item's.
        got: String,
    },
    /// A key the registry does not know.
    #[error("key {0} is not registered")]
    UnknownKey(NodeKey),
    /// A key registered in another role.
    #[error("key {key} is registered as {role}; a {kind} must be signed by a {want} key")]
    WrongRole {
        /// The key.
        key: NodeKey,
        /// Its registered role.
        role: Role,
        /// What was submitted.
        kind: &'static str,
        /// The role needed.
        want: Role,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// An epoch that has not started on the ledger's clock.
    #[error("epoch {epoch} has not started; the current epoch is {current}")]
    FutureEpoch {
        /// The item's.
        epoch: u64,
        /// The ledger's.
        current: u64,
    },
    /// New information for an epoch already sealed.
    #[error("epoch {epoch} is sealed (every epoch through {through} is)")]
    EpochSealed {
        /// The item's.
        epoch: u64,
        /// Sealed through.
        through: u64,
    },
    /// A different statement for a slot already filled; kept as evidence.
    #[error("{kind} for {key} conflicts with the one stored; refused and kept as evidence")]
    Conflict {
        /// The entry.
        key: RecordKey,
        /// "record" or "observation".
        kind: &'static str,
    },
}

impl Refusal {
    /// The reason named to the client and in the metrics.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Empty => Reason::Empty,
            Self::TooMany { .. } => Reason::TooMany,
            Self::Malformed(e) => e.reason(),
            Self::WrongNetwork { .. } => Reason::WrongNetwork,
            Self::UnknownKey(_) => Reason::UnknownKey,
            Self::WrongRole { .. } => Reason::WrongRole,
            Self::BadSignature => Reason::BadSignature,
            Self::FutureEpoch { .. } => Reason::FutureEpoch,
            Self::EpochSealed { .. } => Reason::EpochSealed,
            Self::Conflict { .. } => Reason::Conflict,
        }
    }

    /// Short label for metrics: the [`reason`](Self::reason)'s.
    pub fn label(&self) -> &'static str {
        self.reason().label()
    }
}

/// Which item of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// The request as a whole.
    Request,
    /// `records[i]`.
    Record(usize),
    /// `observations[i]`.
    Observation(usize),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request => f.write_str("request"),
            Self::Record(i) => write!(f, "records[{i}]"),
            Self::Observation(i) => write!(f, "observations[{i}]"),
        }
    }
}

/// A refused item.
#[derive(Debug, thiserror::Error)]
#[error("{item}: {refusal}")]
pub struct ItemRefusal {
    /// Which item.
    pub item: Item,
    /// Why.
    pub refusal: Refusal,
}

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Refused; `first` is reported, `reasons` labels every refused item (for metrics).
    #[error("{first}")]
    Refused {
        /// The first refused item.
        first: Box<ItemRefusal>,
        /// The label of every refused item.
        reasons: Vec<&'static str>,
    },
    /// The store failed; nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(item: Item, refusal: Refusal) -> SubmitError {
    let reasons = vec![refusal.label()];
    SubmitError::Refused {
        first: Box::new(ItemRefusal { item, refusal }),
        reasons,
    }
}

/// A refusal found inside the write transaction, which is then rolled back.
enum ApplyError {
    Store(StoreError),
    Refused(Box<InTxn>),
    /// The signatures, verified beside the apply, do not (the culprit when found alone).
    BadSignature(Option<Item>),
}

/// Requests with at least this many items are applied on a second thread while their
/// signatures are verified; smaller ones verify first. A batch of 32 verifies in about
/// 0.4 ms, within what a new thread was measured to wait for an idle core (0.1–3.4 ms on a
/// 2-vCPU VM), so below it the thread would delay the request rather than shorten it.
pub const VERIFY_BESIDE_MIN: usize = 32;

/// What passed every check but the signatures.
struct Admitted {
    parts: Vec<Part>,
    items: Vec<Item>,
    batch: Batch<Item>,
}

/// The refusal of a request whose signatures do not verify, naming the culprit when one
/// fails on its own.
fn bad_signature(culprit: Option<&Item>) -> SubmitError {
    refused(
        culprit.copied().unwrap_or(Item::Request),
        Refusal::BadSignature,
    )
}

/// Which part was refused, why, and the evidence to keep.
struct InTxn {
    position: usize,
    refusal: Refusal,
    evidence: Option<pb::Evidence>,
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Ledger {
    /// Validates and stores a request; returns after the commit, so `Ok` is an
    /// acknowledgement that survives a crash.
    ///
    /// A request of [`VERIFY_BESIDE_MIN`] items or more is applied on a second thread while
    /// this one verifies its signatures; the transaction commits only once they verify (a
    /// bad signature rolls it back and refuses the request, as when verified before the
    /// apply), so the outcome is that of verifying first.
    pub fn submit(&self, request: &pb::SubmitRecordsRequest) -> Result<Submitted, SubmitError> {
        let Admitted {
            parts,
            items,
            batch,
        } = self.admit_all(request)?;
        let now = self.clock.now();
        let write = |t: &mut WriteTables<'_>| apply(t, &parts, &self.attester, now);
        let applied = if batch.len() < VERIFY_BESIDE_MIN {
            batch.verify().map_err(bad_signature)?;
            self.store.write(write)
        } else {
            let verify = || {
                batch
                    .verify()
                    .map_err(|culprit| ApplyError::BadSignature(culprit.copied()))
            };
            self.store.write_beside(write, verify)
        };
        self.settle(applied, &items, |evidence| {
            self.store.write(|t| t.add_evidence(evidence)).map(drop)
        })
    }

    /// Validates and applies a request inside the write transaction of a replicated block,
    /// at the ledger clock's time (the block's); a refusal writes only its evidence.
    pub fn submit_in(
        &self,
        t: &mut WriteTables<'_>,
        request: &pb::SubmitRecordsRequest,
        signatures: Signatures,
    ) -> Result<Submitted, SubmitError> {
        let (parts, items) = self.validate(request, signatures)?;
        let applied = apply(t, &parts, &self.attester, self.clock.now());
        self.settle(applied, &items, |evidence| {
            t.add_evidence(evidence).map(drop)
        })
    }

    /// What a request would do against the last committed state, writing nothing: the
    /// validation of `submit` plus the exactly-once rule on a read snapshot (CheckTx).
    pub fn check(
        &self,
        request: &pb::SubmitRecordsRequest,
        signatures: Signatures,
    ) -> Result<Submitted, SubmitError> {
        let (parts, items) = self.validate(request, signatures)?;
        let read = self.store.read()?;
        let sealed = read.sealed_through()?;
        let lookup = |key: &RecordKey, _sealed: bool| {
            Ok(match read.locate(key)? {
                Location::Absent => None,
                Location::Pending(entry) | Location::Sealed { entry, .. } => Some(entry),
            })
        };
        let staged = stage(&parts, &self.attester, self.clock.now(), sealed, lookup);
        self.settle(staged.map(|(done, _)| done), &items, |_| Ok(()))
    }

    /// The outcome of applying: a refusal names its item; its evidence goes to `keep`.
    fn settle(
        &self,
        applied: Result<Submitted, ApplyError>,
        items: &[Item],
        keep: impl FnOnce(&pb::Evidence) -> Result<(), StoreError>,
    ) -> Result<Submitted, SubmitError> {
        match applied {
            Ok(done) => Ok(done),
            Err(ApplyError::Store(e)) => Err(e.into()),
            Err(ApplyError::BadSignature(culprit)) => Err(bad_signature(culprit.as_ref())),
            Err(ApplyError::Refused(refused_in_txn)) => {
                let InTxn {
                    position,
                    refusal,
                    evidence,
                } = *refused_in_txn;
                if let Some(evidence) = evidence {
                    keep(&evidence)?;
                }
                Err(refused(items[position], refusal))
            }
        }
    }

    fn validate(
        &self,
        request: &pb::SubmitRecordsRequest,
        signatures: Signatures,
    ) -> Result<(Vec<Part>, Vec<Item>), SubmitError> {
        let Admitted {
            parts,
            items,
            batch,
        } = self.admit_all(request)?;
        if signatures == Signatures::Verify {
            batch.verify().map_err(bad_signature)?;
        }
        Ok((parts, items))
    }

    /// Every check of [`validate`](Self::validate) but the signatures: the request's parts,
    /// their items, and the signatures to verify.
    fn admit_all(&self, request: &pb::SubmitRecordsRequest) -> Result<Admitted, SubmitError> {
        let count = request.records.len() + request.observations.len();
        if count == 0 {
            return Err(refused(Item::Request, Refusal::Empty));
        }
        if count > self.config.max_batch_items {
            let max = self.config.max_batch_items;
            return Err(refused(
                Item::Request,
                Refusal::TooMany { items: count, max },
            ));
        }
        let current = self.epochs.at(self.clock.now());
        let registry = self.registry.read().unwrap_or_else(|p| p.into_inner());
        let records = request
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| (Item::Record(i), SignedRecord::from_pb(r).map(Part::Record)));
        let observations = request.observations.iter().enumerate().map(|(i, o)| {
            (
                Item::Observation(i),
                SignedObservation::from_pb(o).map(Part::Observation),
            )
        });
        let mut parts = Vec::with_capacity(count);
        let mut items = Vec::with_capacity(count);
        let mut batch = Batch::with_capacity(count);
        let mut refusals = Vec::new();
        for (item, parsed) in records.chain(observations) {
            let admitted = parsed
                .map_err(Refusal::from)
                .and_then(|part| self.admit(&registry, part, current));
            match admitted {
                Ok((part, point)) => {
                    let (message, signature) = part.signed();
                    batch.push(point, message, signature, item);
                    parts.push(part);
                    items.push(item);
                }
                Err(refusal) => refusals.push(ItemRefusal { item, refusal }),
            }
        }
        let mut refusals = refusals.into_iter();
        match refusals.next() {
            None => Ok(Admitted {
                parts,
                items,
                batch,
            }),
            Some(first) => {
                let mut reasons = vec![first.refusal.label()];
                reasons.extend(refusals.map(|r| r.refusal.label()));
                Err(SubmitError::Refused {
                    first: Box::new(first),
                    reasons,
                })
            }
        }
    }

    /// Checks an item against the ledger's network, the registry and the epoch clock.
    fn admit(
        &self,
        registry: &KeyRegistry,
        part: Part,
        current: u64,
    ) -> Result<(Part, VerifyingKey), Refusal> {
        if part.network() != self.config.network {
            let (want, got) = (self.config.network.clone(), part.network().to_owned());
            return Err(Refusal::WrongNetwork { want, got });
        }
        let signer = part.signer();
        let want = match &part {
            Part::Record(_) => Role::Edge,
            Part::Observation(_) => Role::Super,
        };
        let (role, point) = registry.get(&signer).ok_or(Refusal::UnknownKey(signer))?;
        if role != want {
            let kind = part.kind();
            return Err(Refusal::WrongRole {
                key: signer,
                role,
                kind,
                want,
            });
        }
        if let Part::Observation(o) = &part
            && !registry.has(&o.body.node, Role::Edge)
        {
            return Err(Refusal::UnknownKey(o.body.node));
        }
        if part.epoch() > current {
            return Err(Refusal::FutureEpoch {
                epoch: part.epoch(),
                current,
            });
        }
        let point = *point;
        Ok((part, point))
    }
}

/// The exactly-once rule against stored state: every part is merged in memory first (a
/// request may fill both halves of one entry), and only when none is refused are the
/// changed entries written, so a refusal writes nothing.
fn apply(
    t: &mut WriteTables<'_>,
    parts: &[Part],
    attester: &Attester,
    now: u64,
) -> Result<Submitted, ApplyError> {
    let sealed = t.sealed_through()?;
    let (done, staged) = stage(parts, attester, now, sealed, |key, sealed| match sealed {
        true => t.sealed(key),
        false => t.pending(key),
    })?;
    for entry in staged.values() {
        t.put_pending(entry)?;
    }
    Ok(done)
}

/// The entries a request changes, keyed by entry key bytes (so written in key order), with
/// what it did; `lookup(key, sealed)` reads the stored entry.
fn stage(
    parts: &[Part],
    attester: &Attester,
    now: u64,
    sealed: Option<u64>,
    mut lookup: impl FnMut(&RecordKey, bool) -> Result<Option<Entry>, StoreError>,
) -> Result<(Submitted, BTreeMap<Vec<u8>, Entry>), ApplyError> {
    let mut done = Submitted::default();
    let mut staged = BTreeMap::new();
    for (position, part) in parts.iter().enumerate() {
        let key = part.key();
        let through = sealed.filter(|&s| key.epoch <= s);
        let bytes = key.to_bytes();
        let existing = match staged.get(&bytes) {
            Some(entry) => Some(Entry::clone(entry)),
            None => lookup(&key, through.is_some())?,
        };
        match (merge(existing.as_ref(), part, attester), through) {
            (Merge::Duplicate, _) => done.duplicates += 1,
            (Merge::Conflict, _) => {
                let evidence = Some(evidence(existing.as_ref(), part, now));
                let refusal = Refusal::Conflict {
                    key,
                    kind: part.kind(),
                };
                return Err(ApplyError::Refused(Box::new(InTxn {
                    position,
                    refusal,
                    evidence,
                })));
            }
            (Merge::Stored { .. }, Some(through)) => {
                let refusal = Refusal::EpochSealed {
                    epoch: key.epoch,
                    through,
                };
                return Err(ApplyError::Refused(Box::new(InTxn {
                    position,
                    refusal,
                    evidence: None,
                })));
            }
            (Merge::Stored { entry, verdict }, None) => {
                staged.insert(bytes, *entry);
                done.stored += 1;
                match verdict {
                    Some(Verdict::Attested) => done.attested += 1,
                    Some(Verdict::Disputed) => done.disputed += 1,
                    None => {}
                }
            }
        }
    }
    Ok((done, staged))
}

fn evidence(stored: Option<&Entry>, part: &Part, now: u64) -> pb::Evidence {
    let (record, observation) = match part {
        Part::Record(r) => (Some(r.to_pb()), None),
        Part::Observation(o) => (None, Some(o.to_pb())),
    };
    pb::Evidence {
        time: now,
        stored: stored.map(Entry::to_pb),
        record,
        observation,
    }
}
