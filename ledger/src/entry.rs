//! Entries: the ledger's unit, one per (node, epoch, tenant, direction). An entry gathers
//! the edge's record and the super's observation as they arrive, in either order, and is
//! judged once both are there. `merge` is the pure exactly-once rule.

use ed25519_dalek::Signature;

use crate::attest::{Attester, Judgement, Tolerance, Verdict};
use crate::merkle::{Hash, TreeHash};
use hsn_ledger_api::canonical::Canonical;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_ledger_api::record::{RecordError, RecordKey, SignedObservation, SignedRecord};

/// Domain tag of an entry's leaf bytes.
pub const ENTRY_DOMAIN: &str = "HSN-LEDGER/ENTRY/V1";

/// One slot of the ledger. Holds at least one of record and observation; a judgement
/// exactly when it holds both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The edge's signed claim.
    pub record: Option<SignedRecord>,
    /// The super's signed observation.
    pub observation: Option<SignedObservation>,
    /// The comparison of the two.
    pub judgement: Option<Judgement>,
}

/// Where an entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not sealed yet and waiting for its other half.
    Pending,
    /// Within tolerance, co-signed; earns rewards.
    Attested,
    /// Outside tolerance; both numbers kept; earns nothing.
    Disputed,
    /// Sealed with a record the super node never observed; earns nothing.
    Unobserved,
    /// Sealed with an observation the edge never claimed; earns nothing.
    Unclaimed,
}

impl Status {
    /// Lowercase name for tables and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Attested => "attested",
            Self::Disputed => "disputed",
            Self::Unobserved => "unobserved",
            Self::Unclaimed => "unclaimed",
        }
    }
}

impl Entry {
    /// The entry's key (from whichever half is present).
    pub fn key(&self) -> RecordKey {
        match (&self.record, &self.observation) {
            (Some(r), _) => r.body.key(),
            (None, Some(o)) => o.body.key(),
            (None, None) => unreachable!("entries hold a record or an observation"),
        }
    }

    /// The network named in the entry's signed halves.
    pub fn network(&self) -> &str {
        match (&self.record, &self.observation) {
            (Some(r), _) => &r.body.network,
            (None, Some(o)) => &o.body.network,
            (None, None) => unreachable!("entries hold a record or an observation"),
        }
    }

    /// Where the entry stands, given whether its epoch is sealed.
    pub fn status(&self, sealed: bool) -> Status {
        match (&self.record, &self.observation, &self.judgement) {
            (_, _, Some(j)) if j.verdict == Verdict::Attested => Status::Attested,
            (_, _, Some(_)) => Status::Disputed,
            _ if !sealed => Status::Pending,
            (Some(_), _, None) => Status::Unobserved,
            _ => Status::Unclaimed,
        }
    }

    /// The canonical bytes hashed into the block's Merkle tree.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let flags = u8::from(self.record.is_some())
            | u8::from(self.observation.is_some()) << 1
            | u8::from(self.judgement.is_some()) << 2;
        let mut c = Canonical::new(ENTRY_DOMAIN).u8(flags);
        if let Some(r) = &self.record {
            c = c
                .var(&r.body.signing_bytes())
                .fixed(&r.signature.to_bytes());
        }
        if let Some(o) = &self.observation {
            c = c
                .var(&o.body.signing_bytes())
                .fixed(&o.signature.to_bytes());
        }
        if let Some(j) = &self.judgement {
            c = c
                .u8(j.verdict.code())
                .u64(j.tolerance.bytes)
                .u32(j.tolerance.basis_points)
                .fixed(&j.attester.0);
            c = match &j.cosignature {
                Some(sig) => c.u8(1).fixed(&sig.to_bytes()),
                None => c.u8(0),
            };
        }
        c.finish()
    }

    /// The entry's Merkle leaf in a tree of `tree`.
    pub fn leaf_hash(&self, tree: TreeHash) -> Hash {
        tree.leaf(&self.leaf_bytes())
    }

    /// The wire and storage form.
    pub fn to_pb(&self) -> pb::Entry {
        pb::Entry {
            record: self.record.as_ref().map(SignedRecord::to_pb),
            observation: self.observation.as_ref().map(SignedObservation::to_pb),
            judgement: self.judgement.as_ref().map(Judgement::to_pb),
        }
    }

    /// Reads and checks the shape of an entry; signatures are checked elsewhere, in batches.
    pub fn from_pb(m: &pb::Entry) -> Result<Self, EntryError> {
        let record = m.record.as_ref().map(SignedRecord::from_pb).transpose();
        let record = record.map_err(EntryError::Record)?;
        let observation = m
            .observation
            .as_ref()
            .map(SignedObservation::from_pb)
            .transpose();
        let observation = observation.map_err(EntryError::Observation)?;
        let judgement = m.judgement.as_ref().map(judgement_from_pb).transpose()?;
        match (&record, &observation) {
            (None, None) => return Err(EntryError::Empty),
            (Some(r), Some(o)) if r.body.key() != o.body.key() => {
                return Err(EntryError::KeyMismatch);
            }
            (Some(r), Some(o)) if r.body.network != o.body.network => {
                return Err(EntryError::NetworkMismatch);
            }
            _ => {}
        }
        if judgement.is_some() != (record.is_some() && observation.is_some()) {
            return Err(EntryError::JudgementPresence);
        }
        Ok(Self {
            record,
            observation,
            judgement,
        })
    }
}

fn judgement_from_pb(m: &pb::Judgement) -> Result<Judgement, EntryError> {
    let verdict = Verdict::from_pb(m.verdict).ok_or(EntryError::Verdict(m.verdict))?;
    let attester = NodeKey::from_slice(&m.attester_key).map_err(|_| EntryError::Attester)?;
    let cosignature = match m.cosignature.len() {
        0 => None,
        _ => Some(Signature::from_slice(&m.cosignature).map_err(|_| EntryError::Cosignature)?),
    };
    Ok(Judgement {
        verdict,
        tolerance: Tolerance {
            bytes: m.tolerance_bytes,
            basis_points: m.tolerance_basis_points,
        },
        attester,
        cosignature,
    })
}

/// Why bytes are not an entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Neither record nor observation.
    #[error("entry holds neither a record nor an observation")]
    Empty,
    /// The record is malformed.
    #[error("record: {0}")]
    Record(RecordError),
    /// The observation is malformed.
    #[error("observation: {0}")]
    Observation(RecordError),
    /// Record and observation are about different keys.
    #[error("record and observation are about different (node, epoch, tenant, direction)")]
    KeyMismatch,
    /// Record and observation name different networks.
    #[error("record and observation name different networks")]
    NetworkMismatch,
    /// A judgement without both halves, or both halves without one.
    #[error("a judgement must be present exactly when both record and observation are")]
    JudgementPresence,
    /// Unknown verdict.
    #[error("unknown verdict {0}")]
    Verdict(i32),
    /// Attester key is not 32 bytes.
    #[error("attester key is not 32 bytes")]
    Attester,
    /// Co-signature is not 64 bytes.
    #[error("co-signature is not 64 bytes")]
    Cosignature,
}

/// Half of an entry, as submitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// An edge record.
    Record(SignedRecord),
    /// A super observation.
    Observation(SignedObservation),
}

impl Part {
    /// The entry the part belongs to.
    pub fn key(&self) -> RecordKey {
        match self {
            Self::Record(r) => r.body.key(),
            Self::Observation(o) => o.body.key(),
        }
    }

    /// The network the part names.
    pub fn network(&self) -> &str {
        match self {
            Self::Record(r) => &r.body.network,
            Self::Observation(o) => &o.body.network,
        }
    }

    /// The epoch the part is about.
    pub fn epoch(&self) -> u64 {
        match self {
            Self::Record(r) => r.body.epoch,
            Self::Observation(o) => o.body.epoch,
        }
    }

    /// The key that must have signed the part.
    pub fn signer(&self) -> NodeKey {
        match self {
            Self::Record(r) => r.body.node,
            Self::Observation(o) => o.body.observer,
        }
    }

    /// The signed bytes and the signature over them.
    pub fn signed(&self) -> (Vec<u8>, Signature) {
        match self {
            Self::Record(r) => (r.body.signing_bytes(), r.signature),
            Self::Observation(o) => (o.body.signing_bytes(), o.signature),
        }
    }

    /// "record" or "observation", for messages and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Record(_) => "record",
            Self::Observation(_) => "observation",
        }
    }
}

/// What submitting a part does to an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge {
    /// New information: store this entry; `verdict` is set when the part completed it.
    Stored {
        /// The entry to store.
        entry: Box<Entry>,
        /// The judgement's verdict, when this part completed the entry.
        verdict: Option<Verdict>,
    },
    /// The same statement again: nothing changes.
    Duplicate,
    /// A different statement for a slot already filled: refuse and keep as evidence.
    Conflict,
}

/// The exactly-once rule. A slot is filled once; the same statement again is a duplicate
/// (signatures are not compared: a second valid signature over the same body says nothing
/// new); a different one is a conflict. Completing an entry judges it.
pub fn merge(existing: Option<&Entry>, part: &Part, attester: &Attester) -> Merge {
    let mut entry = existing.cloned().unwrap_or(Entry {
        record: None,
        observation: None,
        judgement: None,
    });
    match part {
        Part::Record(r) => match &entry.record {
            Some(old) if old.body == r.body => return Merge::Duplicate,
            Some(_) => return Merge::Conflict,
            None => entry.record = Some(r.clone()),
        },
        Part::Observation(o) => match &entry.observation {
            Some(old) if old.body == o.body => return Merge::Duplicate,
            Some(_) => return Merge::Conflict,
            None => entry.observation = Some(o.clone()),
        },
    }
    let verdict = match (&entry.record, &entry.observation) {
        (Some(r), Some(o)) => {
            let judgement = attester.judge(r, o);
            let verdict = judgement.verdict;
            entry.judgement = Some(judgement);
            Some(verdict)
        }
        _ => None,
    };
    Merge::Stored {
        entry: Box::new(entry),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use hsn_core::Direction;
    use hsn_testkit::ledger_fixtures::Slot;

    struct Fixture {
        edge: SigningKey,
        sup: SigningKey,
        attester: Attester,
    }

    fn fixture() -> Fixture {
        let sup = SigningKey::from_bytes(&[2; 32]);
        Fixture {
            edge: SigningKey::from_bytes(&[1; 32]),
            attester: Attester::new(sup.clone(), Tolerance::default()),
            sup,
        }
    }

    impl Fixture {
        fn record(&self, bytes: u64) -> Part {
            Part::Record(slot().record(&self.edge, bytes, 1))
        }

        fn observation(&self, bytes: u64) -> Part {
            let edge = NodeKey::of(&self.edge);
            Part::Observation(slot().observation(&self.sup, edge, bytes))
        }
    }

    fn slot() -> Slot {
        Slot::new("n", 5, "t", Direction::Uplink)
    }

    fn stored(m: Merge) -> (Entry, Option<Verdict>) {
        match m {
            Merge::Stored { entry, verdict } => (*entry, verdict),
            other => panic!("expected Stored, got {other:?}"),
        }
    }

    #[test]
    fn record_then_observation_attests() {
        let f = fixture();
        let (e, v) = stored(merge(None, &f.record(1_000_000), &f.attester));
        assert_eq!(
            (v, e.status(false), e.status(true)),
            (None, Status::Pending, Status::Unobserved)
        );
        let (e, v) = stored(merge(Some(&e), &f.observation(1_000_100), &f.attester));
        assert_eq!(v, Some(Verdict::Attested));
        assert_eq!(e.status(true), Status::Attested);
        assert!(e.judgement.as_ref().unwrap().cosignature.is_some());
    }

    #[test]
    fn observation_then_record_disputes_and_keeps_both_numbers() {
        let f = fixture();
        let (e, _) = stored(merge(None, &f.observation(1_000), &f.attester));
        assert_eq!(e.status(true), Status::Unclaimed);
        let (e, v) = stored(merge(Some(&e), &f.record(900_000), &f.attester));
        assert_eq!(v, Some(Verdict::Disputed));
        assert_eq!(e.record.as_ref().unwrap().body.bytes, 900_000);
        assert_eq!(e.observation.as_ref().unwrap().body.bytes, 1_000);
    }

    #[test]
    fn identical_is_duplicate_different_is_conflict() {
        let f = fixture();
        let (e, _) = stored(merge(None, &f.record(10), &f.attester));
        assert_eq!(
            merge(Some(&e), &f.record(10), &f.attester),
            Merge::Duplicate
        );
        assert_eq!(merge(Some(&e), &f.record(11), &f.attester), Merge::Conflict);
        let (e, _) = stored(merge(Some(&e), &f.observation(10), &f.attester));
        assert_eq!(
            merge(Some(&e), &f.observation(10), &f.attester),
            Merge::Duplicate
        );
        assert_eq!(
            merge(Some(&e), &f.observation(12), &f.attester),
            Merge::Conflict
        );
        assert_eq!(
            merge(Some(&e), &f.record(10), &f.attester),
            Merge::Duplicate
        );
    }

    #[test]
    fn wire_round_trip_and_leaf_covers_everything() {
        let f = fixture();
        let (e, _) = stored(merge(None, &f.record(10), &f.attester));
        let (e, _) = stored(merge(Some(&e), &f.observation(10), &f.attester));
        let back = Entry::from_pb(&e.to_pb()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.leaf_hash(TreeHash::NEW), e.leaf_hash(TreeHash::NEW));
        let mut judged_differently = e.clone();
        judged_differently
            .judgement
            .as_mut()
            .unwrap()
            .tolerance
            .bytes += 1;
        assert_ne!(
            judged_differently.leaf_hash(TreeHash::NEW),
            e.leaf_hash(TreeHash::NEW)
        );
        let half = Entry {
            observation: None,
            judgement: None,
            ..e.clone()
        };
        assert_ne!(half.leaf_hash(TreeHash::NEW), e.leaf_hash(TreeHash::NEW));
    }

    #[test]
    fn misshapen_entries_are_refused() {
        let f = fixture();
        let (e, _) = stored(merge(None, &f.record(10), &f.attester));
        let (full, _) = stored(merge(Some(&e), &f.observation(10), &f.attester));
        let mut no_judgement = full.to_pb();
        no_judgement.judgement = None;
        assert!(matches!(
            Entry::from_pb(&no_judgement),
            Err(EntryError::JudgementPresence)
        ));
        assert!(matches!(
            Entry::from_pb(&pb::Entry::default()),
            Err(EntryError::Empty)
        ));
        let mut other_key = full.to_pb();
        other_key
            .observation
            .as_mut()
            .unwrap()
            .body
            .as_mut()
            .unwrap()
            .epoch = 6;
        assert!(matches!(
            Entry::from_pb(&other_key),
            Err(EntryError::KeyMismatch)
        ));
    }
}
