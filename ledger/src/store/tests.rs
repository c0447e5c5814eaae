use super::*;
use crate::attest::{Attester, Tolerance};
use crate::block::{self, Sealer, Tip};
use crate::entry::{Merge, Part, merge};
use hsn_core::Direction;
use hsn_testkit::ledger_fixtures::{Slot, signing_key};

fn entry(epoch: u64, tenant: &str) -> Entry {
    let edge = signing_key(1);
    let attester = Attester::new(signing_key(2), Tolerance::default());
    let part = Part::Record(Slot::new("n", epoch, tenant, Direction::Uplink).record(&edge, 10, 1));
    match merge(None, &part, &attester) {
        Merge::Stored { entry, .. } => *entry,
        other => panic!("{other:?}"),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    (dir, store)
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let (_dir, store) = store();
    let e = entry(1, "a");
    let failed: Result<(), StoreError> = store.write(|t| {
        t.put_pending(&e)?;
        Err(StoreError::ReadOnly)
    });
    assert!(failed.is_err());
    assert_eq!(
        store.read().unwrap().locate(&e.key()).unwrap(),
        Location::Absent
    );
    store.write(|t| t.put_pending(&e)).unwrap();
    assert_eq!(
        store.read().unwrap().locate(&e.key()).unwrap(),
        Location::Pending(e)
    );
}

/// Which side of a [`Store::write_beside`] failed.
#[derive(Debug, PartialEq)]
enum Side {
    Check,
    Write,
    Store,
}

impl From<StoreError> for Side {
    fn from(_: StoreError) -> Self {
        Self::Store
    }
}

#[test]
fn a_write_beside_a_check_commits_only_when_both_succeed() {
    let (_dir, store) = store();
    let located = |e: &Entry| store.read().unwrap().locate(&e.key()).unwrap();
    let (a, b, c) = (entry(1, "a"), entry(1, "b"), entry(1, "c"));
    let put_then_fail = |e: &Entry| {
        let e = e.clone();
        move |t: &mut WriteTables<'_>| -> Result<(), Side> {
            t.put_pending(&e)?;
            Err(Side::Write)
        }
    };
    // The check fails: nothing is written, and its error wins over the write's.
    let checked = store.write_beside(put_then_fail(&a), || Err(Side::Check));
    assert_eq!(checked, Err(Side::Check));
    assert_eq!(located(&a), Location::Absent);
    // The write fails beside a passing check: its error, nothing written.
    let failed = store.write_beside(put_then_fail(&b), || Ok(()));
    assert_eq!(failed, Err(Side::Write));
    assert_eq!(located(&b), Location::Absent);
    // Both pass: committed, the write's value returned.
    let done = store.write_beside(|t| Ok::<_, Side>(t.put_pending(&c).map(|()| 7)?), || Ok(()));
    assert_eq!(done, Ok(7));
    assert_eq!(located(&c), Location::Pending(c));
}

#[test]
fn pending_epochs_are_ranges_and_blocks_move_entries() {
    let (_dir, store) = store();
    let entries = [entry(2, "a"), entry(2, "b"), entry(2, "c"), entry(3, "a")];
    store
        .write(|t| entries.iter().try_for_each(|e| t.put_pending(e)))
        .unwrap();
    let attester = Attester::new(signing_key(2), Tolerance::default());
    store
        .write(|t| -> Result<(), StoreError> {
            assert_eq!(t.first_pending_epoch()?, Some(2));
            let two = t.pending_of_epoch(2, 2)?;
            assert_eq!(two, entries[..2].to_vec());
            assert_eq!(t.pending_of_epoch(2, 10)?.len(), 3);
            let b = block::seal(&t.tip()?, "n", 2, two, 9, Sealer::Attester(&attester));
            t.put_block(&b)?;
            assert_eq!(t.tip()?, Tip::after(&b.header.header));
            Ok(())
        })
        .unwrap();
    let read = store.read().unwrap();
    let status = read.status().unwrap();
    assert_eq!((status.blocks, status.pending), (1, 2));
    match read.locate(&entries[1].key()).unwrap() {
        Location::Sealed {
            height,
            index,
            entry,
        } => {
            assert_eq!((height, index, entry), (0, 1, entries[1].clone()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(read.block_entries(0).unwrap().len(), 2);
    assert_eq!(read.block(1, true).unwrap(), None);
}

/// Ingests `entries` in commits of 100, then seals them into blocks of 500 in one commit
/// (which moves every entry: the file's pending pages are left free).
fn fill_and_seal(store: &Store, entries: &[Entry]) {
    for chunk in entries.chunks(100) {
        store
            .write(|t| chunk.iter().try_for_each(|e| t.put_pending(e)))
            .unwrap();
    }
    let attester = Attester::new(signing_key(2), Tolerance::default());
    store
        .write(|t| -> Result<(), StoreError> {
            while let Some(epoch) = t.first_pending_epoch()? {
                let chunk = t.pending_of_epoch(epoch, 500)?;
                let b = block::seal(&t.tip()?, "n", epoch, chunk, 9, Sealer::Attester(&attester));
                t.put_block(&b)?;
            }
            Ok(())
        })
        .unwrap();
}

fn many_entries(n: usize) -> Vec<Entry> {
    (0..n).map(|i| entry(1, &format!("tenant-{i}"))).collect()
}

fn len(store: &Store) -> u64 {
    std::fs::metadata(store.path()).unwrap().len()
}

#[test]
fn a_file_that_doubled_is_compacted_unless_a_reader_is_open_and_keeps_every_entry() {
    let entries = many_entries(4000);
    let (_dir, store) = store();
    store.set_reclaim_min(u64::MAX);
    fill_and_seal(&store, &entries);
    store.set_reclaim_min(0);

    let reader = store.read().unwrap();
    assert_eq!(store.reclaim().unwrap(), Reclaimed::Busy);
    drop(reader);
    let Reclaimed::Compacted { before, after } = store.reclaim().unwrap() else {
        panic!("a file that doubled is compacted");
    };
    assert_eq!(after, len(&store));
    assert!(after < before / 2, "{before} B -> {after} B");
    assert_eq!(
        store.reclaim().unwrap(),
        Reclaimed::NotDue,
        "not doubled since"
    );

    let read = store.read().unwrap();
    assert_eq!(read.status().unwrap().pending, 0);
    for e in &entries {
        assert!(
            matches!(read.locate(&e.key()).unwrap(), Location::Sealed { entry, .. } if entry == *e),
            "{:?} kept",
            e.key()
        );
    }
}

#[test]
fn replicated_block_commits_compact_on_their_own() {
    let entries = many_entries(4000);
    let (_a, auto) = store();
    auto.set_reclaim_min(0);
    let (_b, never) = store();
    never.set_reclaim_min(u64::MAX);
    for store in [&auto, &never] {
        fill_and_seal(store, &entries);
        // An empty replicated block: its commit is where the replica's store reclaims.
        store.write_block(|_| Ok::<_, StoreError>(())).unwrap();
        assert!(store.commit_block().unwrap());
    }
    assert!(
        len(&auto) < len(&never),
        "{} B with compaction, {} B without",
        len(&auto),
        len(&never)
    );
    assert_eq!(auto.read().unwrap().block_entries(0).unwrap().len(), 500);
}

#[test]
fn evidence_is_numbered_in_order_and_kept_once() {
    let (_dir, store) = store();
    let statement = |seq| {
        let edge = signing_key(1);
        Slot::new("n", 1, "t", Direction::Uplink)
            .record(&edge, 10, seq)
            .to_pb()
    };
    for (time, seq) in [(5, 1), (6, 2), (7, 1)] {
        let ev = pb::Evidence {
            time,
            record: Some(statement(seq)),
            ..Default::default()
        };
        let id = store.write(|t| t.add_evidence(&ev)).unwrap();
        assert_eq!(
            id,
            if time == 7 { 0 } else { time - 5 },
            "a replay keeps its first id"
        );
    }
    let times: Vec<u64> = store
        .read()
        .unwrap()
        .evidence()
        .unwrap()
        .iter()
        .map(|e| e.time)
        .collect();
    assert_eq!(times, vec![5, 6]);
}

#[test]
fn undecodable_bytes_are_reported_with_their_place() {
    let (_dir, store) = store();
    let attester = Attester::new(signing_key(2), Tolerance::default());
    let b = block::seal(
        &Tip::GENESIS,
        "n",
        1,
        vec![entry(1, "a")],
        1,
        Sealer::Attester(&attester),
    );
    store.write(|t| t.put_block(&b)).unwrap();
    store
        .write(|t| -> Result<(), StoreError> {
            // A length prefix that runs past the end of the value.
            t.entries.insert((0, 0), [0x0a_u8, 0xff, 0x01].as_slice())?;
            Ok(())
        })
        .unwrap();
    let err = store.read().unwrap().block_entries(0).unwrap_err();
    assert_eq!(err.location(), Some(&At::Entry(0, 0)));
    assert_eq!(err.label(), "corrupt");
}

#[test]
fn read_only_refuses_writes() {
    let (dir, store) = store();
    drop(store);
    let ro = Store::open_read_only(&dir.path().join("s.redb")).unwrap();
    assert!(matches!(
        ro.write(|t| t.set_sealed_through(1)),
        Err(StoreError::ReadOnly)
    ));
    assert_eq!(ro.read().unwrap().status().unwrap().blocks, 0);
}

/// Everything a store serves or will sign is verified, not only its blocks: a damaged
/// entry index is named and never serves another entry; a pending entry that no longer
/// verifies is named (and stops the seal: `ledger::tests`); a pending entry under another
/// key is refused when read.
#[test]
fn verification_covers_the_index_and_pending_entries() {
    use crate::chain::walk_store;
    use crate::verify::VerifyOptions;
    let (_dir, store) = store();
    let attester = Attester::new(signing_key(2), Tolerance::default());
    let sealed = [entry(2, "a"), entry(2, "b")];
    let pending = entry(3, "c");
    store
        .write(|t| -> Result<(), StoreError> {
            let b = block::seal(
                &t.tip()?,
                "n",
                2,
                sealed.to_vec(),
                9,
                Sealer::Attester(&attester),
            );
            t.put_block(&b)?;
            t.put_pending(&pending)
        })
        .unwrap();
    let walk = |store: &Store| walk_store(store, VerifyOptions::default(), |_, _| {});
    walk(&store).unwrap();

    // The index sends "a" to "b"'s place: named, and "a" is not served as "b".
    let a = sealed[0].key().to_bytes();
    store
        .write(|t| {
            t.index
                .insert(a.as_slice(), (0, 1))
                .map(drop)
                .map_err(StoreError::from)
        })
        .unwrap();
    let e = walk(&store).unwrap_err().to_string();
    assert_eq!(
        e,
        "block 0, entry 0: the entry index places it at block 0, entry 1"
    );
    let served = store.read().unwrap().locate(&sealed[0].key());
    assert!(
        matches!(served, Err(StoreError::Damaged { .. })),
        "{served:?}"
    );
    store
        .write(|t| {
            t.index
                .insert(a.as_slice(), (0, 0))
                .map(drop)
                .map_err(StoreError::from)
        })
        .unwrap();
    walk(&store).unwrap();

    // A pending record whose claim changed after it was checked.
    let mut changed = pending.clone();
    changed.record.as_mut().unwrap().body.bytes += 1;
    store.write(|t| t.put_pending(&changed)).unwrap();
    let e = walk(&store).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("pending entry {}: ", pending.key())),
        "{e}"
    );

    // A pending entry stored under another entry's key.
    let other = entry(3, "d").key().to_bytes();
    let bytes = pending.to_pb().encode_to_vec();
    store
        .write(|t| {
            t.pending
                .insert(other.as_slice(), bytes.as_slice())
                .map(drop)
                .map_err(StoreError::from)
        })
        .unwrap();
    let read = store.read().unwrap();
    assert!(matches!(
        read.locate(&entry(3, "d").key()),
        Err(StoreError::Damaged { .. })
    ));
}
