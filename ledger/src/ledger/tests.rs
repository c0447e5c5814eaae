use std::sync::Arc;

use ed25519_dalek::SigningKey;

use super::*;
use crate::clock::ManualClock;
use crate::proof::verify_inclusion;
use crate::verify::{ChainVerifier, VerifyOptions};
use hsn_core::Direction;
use hsn_core::Role;
use hsn_ledger_api::record::{SignedObservation, SignedRecord};
use hsn_testkit::ledger_fixtures::{Slot, signing_key};

const EPOCH: u64 = 60;

struct Fixture {
    ledger: Ledger,
    clock: Arc<ManualClock>,
    sup: SigningKey,
    edges: Vec<SigningKey>,
    _dir: tempfile::TempDir,
}

fn fixture_with(config: impl FnOnce(&mut LedgerConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sup = signing_key(1000);
    let edges: Vec<SigningKey> = (0..4).map(signing_key).collect();
    let mut registry = KeyRegistry::default();
    registry.insert(NodeKey::of(&sup), Role::Super).unwrap();
    for e in &edges {
        registry.insert(NodeKey::of(e), Role::Edge).unwrap();
    }
    let mut cfg = LedgerConfig::new("net");
    cfg.epoch_seconds = EPOCH;
    cfg.grace_seconds = 5;
    config(&mut cfg);
    // Epoch 10 is current.
    let clock = Arc::new(ManualClock::new(10 * EPOCH + 1));
    let store = Store::open(&dir.path().join("ledger.redb")).unwrap();
    let ledger = Ledger::open(cfg, store, sup.clone(), registry, clock.clone()).unwrap();
    Fixture {
        ledger,
        clock,
        sup,
        edges,
        _dir: dir,
    }
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

fn slot(epoch: u64, tenant: &str) -> Slot {
    Slot::new("net", epoch, tenant, Direction::Uplink)
}

fn request(
    records: Vec<SignedRecord>,
    observations: Vec<SignedObservation>,
) -> pb::SubmitRecordsRequest {
    pb::SubmitRecordsRequest {
        records: records.iter().map(SignedRecord::to_pb).collect(),
        observations: observations.iter().map(SignedObservation::to_pb).collect(),
    }
}

/// A request of records as they arrive on the wire, tampered with or not.
fn wire_request(records: Vec<pb::SignedRecord>) -> pb::SubmitRecordsRequest {
    pb::SubmitRecordsRequest {
        records,
        observations: vec![],
    }
}

/// The bytes a record on the wire claims.
fn claimed_bytes(record: Option<&pb::SignedRecord>) -> u64 {
    record.unwrap().body.as_ref().unwrap().bytes
}

impl Fixture {
    fn record(&self, edge: usize, epoch: u64, bytes: u64) -> SignedRecord {
        slot(epoch, "t").record(&self.edges[edge], bytes, epoch)
    }

    fn observation(&self, edge: usize, epoch: u64, bytes: u64) -> SignedObservation {
        slot(epoch, "t").observation(&self.sup, NodeKey::of(&self.edges[edge]), bytes)
    }

    /// Submits records that must be accepted.
    fn submit_records(&self, records: Vec<SignedRecord>) {
        self.ledger.submit(&request(records, vec![])).unwrap();
    }

    fn refusal(&self, req: pb::SubmitRecordsRequest) -> (String, &'static str) {
        match self.ledger.submit(&req) {
            Err(SubmitError::Refused { first, .. }) => (first.to_string(), first.refusal.label()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn verify_chain(&self) -> crate::verify::ChainSummary {
        let mut v = ChainVerifier::new(VerifyOptions::default());
        for h in 0..self.ledger.status().unwrap().blocks {
            v.push(&self.ledger.block(h, true).unwrap().unwrap())
                .unwrap();
        }
        v.finish()
    }
}

#[test]
fn attest_seal_prove_verify() {
    let f = fixture();
    let req = request(
        vec![f.record(0, 9, 1_000_000), f.record(1, 9, 1_000_000)],
        vec![f.observation(0, 9, 1_000_500), f.observation(1, 9, 10)],
    );
    let done = f.ledger.submit(&req).unwrap();
    assert_eq!(
        done,
        Submitted {
            stored: 4,
            duplicates: 0,
            attested: 1,
            disputed: 1
        }
    );
    let headers = f.ledger.seal_through(9).unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].header.entry_count, 2);
    let status = f.ledger.status().unwrap();
    assert_eq!(
        (status.blocks, status.pending, status.sealed_through),
        (1, 0, Some(9))
    );
    assert_eq!(f.verify_chain().entries, 2);
    let key = f.record(0, 9, 0).body.key();
    let p = f.ledger.proof(&key).unwrap();
    let included = verify_inclusion(&p.entry, &p.header, &p.proof, None).unwrap();
    assert_eq!(included.entry.key(), key);
}

#[test]
fn identical_resubmission_changes_nothing() {
    let f = fixture();
    let req = request(vec![f.record(0, 9, 500)], vec![f.observation(0, 9, 500)]);
    f.ledger.submit(&req).unwrap();
    let before = f.ledger.lookup(&[f.record(0, 9, 0).body.key()]).unwrap();
    let again = f.ledger.submit(&req).unwrap();
    assert_eq!(
        again,
        Submitted {
            stored: 0,
            duplicates: 2,
            attested: 0,
            disputed: 0
        }
    );
    assert_eq!(
        f.ledger.lookup(&[f.record(0, 9, 0).body.key()]).unwrap(),
        before
    );
    // Still a duplicate once sealed.
    f.ledger.seal_through(9).unwrap();
    assert_eq!(f.ledger.submit(&req).unwrap().duplicates, 2);
    assert_eq!(f.ledger.status().unwrap().evidence, 0);
}

#[test]
fn conflicting_resubmission_is_refused_rolled_back_and_kept() {
    let f = fixture();
    f.submit_records(vec![f.record(0, 9, 500)]);
    // A fresh record and a conflicting one in the same request: neither is stored.
    let req = request(vec![f.record(1, 9, 1), f.record(0, 9, 501)], vec![]);
    let (msg, label) = f.refusal(req);
    assert_eq!(label, "conflict");
    assert!(msg.starts_with("records[1]: record for 9/"), "{msg}");
    let absent = f.ledger.lookup(&[f.record(1, 9, 0).body.key()]).unwrap();
    assert_eq!(absent, vec![Location::Absent]);
    let evidence = f.ledger.evidence().unwrap();
    assert_eq!(evidence.len(), 1);
    assert_eq!(claimed_bytes(evidence[0].record.as_ref()), 501);
    let stored = evidence[0].stored.as_ref().unwrap();
    assert_eq!(claimed_bytes(stored.record.as_ref()), 500);
    // After sealing, a conflict is still refused and kept.
    f.ledger.seal_through(9).unwrap();
    assert_eq!(
        f.refusal(request(vec![f.record(0, 9, 502)], vec![])).1,
        "conflict"
    );
    assert_eq!(f.ledger.status().unwrap().evidence, 2);
}

#[test]
fn refusals_have_specific_reasons() {
    let f = fixture();
    let stranger = signing_key(77);
    let mut bad_sig = f.record(0, 9, 5).to_pb();
    bad_sig.body.as_mut().unwrap().bytes = 6;
    let mut unsigned = f.record(0, 9, 5).to_pb();
    unsigned.signature.clear();
    let mut malformed = f.record(0, 9, 5).to_pb();
    malformed.body.as_mut().unwrap().direction = 7;
    let other_net = Slot::new("other", 9, "t", Direction::Uplink).record(&f.edges[0], 5, 1);
    let cases = [
        (request(vec![], vec![]), "empty"),
        (
            request(vec![slot(9, "t").record(&stranger, 5, 1)], vec![]),
            "unknown_key",
        ),
        (
            request(vec![slot(9, "t").record(&f.sup, 5, 1)], vec![]),
            "wrong_role",
        ),
        (
            request(
                vec![],
                vec![slot(9, "t").observation(&f.edges[0], NodeKey::of(&f.edges[1]), 5)],
            ),
            "wrong_role",
        ),
        (
            request(
                vec![],
                vec![slot(9, "t").observation(&f.sup, NodeKey::of(&stranger), 5)],
            ),
            "unknown_key",
        ),
        (request(vec![f.record(0, 11, 5)], vec![]), "future_epoch"),
        (request(vec![other_net], vec![]), "wrong_network"),
        (wire_request(vec![bad_sig]), "bad_signature"),
        (wire_request(vec![unsigned]), "unsigned"),
        (wire_request(vec![malformed]), "malformed"),
    ];
    for (req, want) in cases {
        assert_eq!(f.refusal(req).1, want);
    }
    assert_eq!(
        f.ledger.status().unwrap().pending,
        0,
        "refused requests store nothing"
    );
}

#[test]
fn bad_signature_is_located_in_a_batch() {
    let f = fixture();
    let mut records: Vec<pb::SignedRecord> = (0..4).map(|e| f.record(e, 9, 100).to_pb()).collect();
    records[2].signature[10] ^= 1;
    let (msg, label) = f.refusal(wire_request(records));
    assert_eq!(
        (msg.as_str(), label),
        ("records[2]: signature does not verify", "bad_signature")
    );
}

#[test]
fn large_requests_verify_beside_the_write_and_commit_only_when_valid() {
    let f = fixture();
    f.submit_records(vec![f.record(0, 9, 500)]);
    let many = |conflicting: u64| -> Vec<pb::SignedRecord> {
        let mut records: Vec<pb::SignedRecord> = (0..VERIFY_BESIDE_MIN as u64)
            .map(|i| {
                slot(9, &format!("tenant-{i}"))
                    .record(&f.edges[1], 10 + i, 9)
                    .to_pb()
            })
            .collect();
        records.push(f.record(0, 9, conflicting).to_pb());
        records
    };
    // A bad signature and a conflict: the signature is refused, as when verified before
    // the apply, and neither the records nor the conflict's evidence are kept.
    let mut records = many(501);
    records[20].signature[3] ^= 1;
    let (msg, label) = f.refusal(wire_request(records));
    assert_eq!(
        (msg.as_str(), label),
        ("records[20]: signature does not verify", "bad_signature")
    );
    let status = f.ledger.status().unwrap();
    assert_eq!((status.pending, status.evidence), (1, 0));
    // Valid signatures: the conflict is refused and kept, nothing else stored.
    assert_eq!(f.refusal(wire_request(many(501))).1, "conflict");
    let status = f.ledger.status().unwrap();
    assert_eq!((status.pending, status.evidence), (1, 1));
    // Valid and consistent: all stored.
    let done = f.ledger.submit(&wire_request(many(500))).unwrap();
    assert_eq!(
        (done.stored, done.duplicates),
        (VERIFY_BESIDE_MIN as u32, 1)
    );
    assert_eq!(
        f.ledger.status().unwrap().pending,
        1 + VERIFY_BESIDE_MIN as u64
    );
}

#[test]
fn too_many_items_are_refused() {
    let f = fixture_with(|c| c.max_batch_items = 2);
    let req = request((0..3).map(|e| f.record(e, 9, 1)).collect(), vec![]);
    assert_eq!(f.refusal(req).1, "too_many");
}

#[test]
fn sealed_epochs_refuse_new_information() {
    let f = fixture();
    f.submit_records(vec![f.record(0, 8, 100)]);
    assert!(matches!(
        f.ledger.seal_through(10),
        Err(SealError::NotClosed { .. })
    ));
    f.ledger.seal_through(8).unwrap();
    let (_, label) = f.refusal(request(vec![f.record(1, 8, 100)], vec![]));
    assert_eq!(label, "epoch_sealed");
    // Completing a sealed entry with its observation is new information too.
    assert_eq!(
        f.refusal(request(vec![], vec![f.observation(0, 8, 100)])).1,
        "epoch_sealed"
    );
    // Unsealed epochs still take records; sealing again is a no-op.
    f.submit_records(vec![f.record(1, 9, 100)]);
    assert!(f.ledger.seal_through(8).unwrap().is_empty());
}

#[test]
fn sealing_on_request_waits_for_the_grace_period() {
    // The clock is 1 s into epoch 10 with 5 s of grace: epoch 9 is in its grace period.
    let f = fixture();
    f.submit_records(vec![f.record(0, 9, 100)]);
    assert!(matches!(
        f.ledger.seal_due_through(9),
        Err(SealError::InGrace { epoch: 9, .. })
    ));
    assert!(matches!(
        f.ledger.seal_due_through(10),
        Err(SealError::NotClosed { .. })
    ));
    f.clock.advance(5);
    assert_eq!(f.ledger.seal_due_through(9).unwrap().len(), 1);
}

#[test]
fn large_epochs_span_bounded_blocks_and_verify() {
    let f = fixture_with(|c| c.max_block_entries = 3);
    let records: Vec<SignedRecord> = (0..8)
        .map(|i| slot(9, &format!("t{i}")).record(&f.edges[i % 4], 10, i as u64))
        .collect();
    f.submit_records(records);
    f.submit_records(vec![f.record(0, 7, 1)]);
    let headers = f.ledger.seal_through(9).unwrap();
    let counts: Vec<(u64, u32)> = headers
        .iter()
        .map(|h| (h.header.epoch, h.header.entry_count))
        .collect();
    assert_eq!(counts, vec![(7, 1), (9, 3), (9, 3), (9, 2)]);
    let summary = f.verify_chain();
    assert_eq!((summary.blocks, summary.entries), (4, 9));
}

#[test]
fn sealing_compacts_a_file_that_doubled_and_the_chain_still_verifies() {
    let f = fixture();
    let path = f.ledger.store().path().to_owned();
    let len = || std::fs::metadata(&path).unwrap().len();
    f.ledger.store().set_reclaim_min(0);
    let opened = len();
    let records: Vec<SignedRecord> = (0..10_000)
        .map(|i| slot(9, &format!("t{i}")).record(&f.edges[i % 4], 10, i as u64))
        .collect();
    for chunk in records.chunks(500) {
        f.submit_records(chunk.to_vec());
    }
    let before = len();
    assert!(
        before >= 2 * opened,
        "the pending entries doubled the file: {opened} B -> {before} B"
    );
    f.ledger.seal_through(9).unwrap();
    // Without compaction the file only grows: the sealed copies join the freed pending ones.
    assert!(
        len() < before,
        "{before} B before sealing, {} B after",
        len()
    );
    let summary = f.verify_chain();
    assert_eq!(summary.entries, 10_000);
}

#[test]
fn seal_due_waits_for_the_grace_period() {
    let f = fixture();
    f.submit_records(vec![f.record(0, 10, 1)]);
    f.clock.set(11 * EPOCH + 4); // epoch 10 ended 4 s ago; grace is 5 s
    assert!(f.ledger.seal_due().unwrap().is_empty());
    assert_eq!(f.ledger.status().unwrap().sealed_through, Some(9));
    f.clock.set(11 * EPOCH + 5);
    assert_eq!(f.ledger.seal_due().unwrap().len(), 1);
    assert_eq!(*f.ledger.subscribe().borrow(), 1);
}

#[test]
fn reopening_keeps_everything_and_checks_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.redb");
    let f = fixture();
    let sup = f.sup.clone();
    let mut registry = KeyRegistry::default();
    registry.insert(NodeKey::of(&sup), Role::Super).unwrap();
    registry
        .insert(NodeKey::of(&f.edges[0]), Role::Edge)
        .unwrap();
    let open = |network: &str| {
        let mut cfg = LedgerConfig::new(network);
        cfg.epoch_seconds = EPOCH;
        let store = Store::open(&path).unwrap();
        Ledger::open(cfg, store, sup.clone(), registry.clone(), f.clock.clone())
    };
    let ledger = open("net").unwrap();
    ledger
        .submit(&request(vec![f.record(0, 9, 1), f.record(0, 8, 1)], vec![]))
        .unwrap();
    ledger.seal_through(8).unwrap();
    drop(ledger);
    let ledger = open("net").unwrap();
    let s = ledger.status().unwrap();
    assert_eq!((s.blocks, s.pending, s.sealed_through), (1, 1, Some(8)));
    drop(ledger);
    assert!(matches!(open("other"), Err(OpenError::Network { .. })));
}

#[test]
fn a_pending_entry_damaged_after_its_check_is_not_sealed() {
    let f = fixture();
    f.submit_records(vec![f.record(0, 8, 100)]);
    let key = f.record(0, 8, 100).body.key();
    f.ledger
        .store()
        .write(|t| -> Result<(), StoreError> {
            let mut entry = t.pending(&key)?.expect("pending");
            entry.record.as_mut().expect("record").body.bytes += 1;
            t.put_pending(&entry)
        })
        .unwrap();
    let sealed = f.ledger.seal_through(8);
    assert!(
        matches!(sealed, Err(SealError::Store(StoreError::Damaged { .. }))),
        "{sealed:?}"
    );
    assert_eq!(f.ledger.status().unwrap().blocks, 0, "nothing signed");
}
