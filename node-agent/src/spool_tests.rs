use hsn_core::{Direction, TenantId};

use super::*;

fn header() -> SpoolHeader {
    SpoolHeader {
        network: "metro".into(),
        role: "edge".into(),
        agent: "edge-n1".into(),
        public_key: "ab".repeat(32),
    }
}

fn up(tenant: u32) -> CounterKey {
    CounterKey {
        tenant: TenantId::new(tenant).unwrap(),
        direction: Direction::Uplink,
        edge: None,
    }
}

fn t(packets: u64, bytes: u64) -> Totals {
    Totals { packets, bytes }
}

fn names() -> BTreeMap<TenantId, String> {
    BTreeMap::from([(TenantId::new(7).unwrap(), "acme".to_owned())])
}

/// Epoch `epoch` with the monotonic counters `now`, prepared.
fn prepared(spool: &Spool, epoch: u64, now: &[(CounterKey, Totals)]) -> Pending {
    spool.prepare(&header(), epoch, 60, now, &names()).unwrap()
}

/// Epoch `epoch` of tenant acme (7), uplink, at monotonic `totals`, prepared.
fn acme(spool: &Spool, epoch: u64, totals: Totals) -> Pending {
    prepared(spool, epoch, &[(up(7), totals)])
}

/// [`acme`], committed.
fn commit_acme(spool: &mut Spool, epoch: u64, totals: Totals) {
    let pending = acme(spool, epoch, totals);
    spool.commit(pending).unwrap();
}

fn totals(files: &[EpochFile]) -> BTreeMap<(String, Direction), (u64, u64)> {
    let mut out = BTreeMap::new();
    for r in files.iter().flat_map(|f| &f.records) {
        let e = out.entry((r.tenant.clone(), r.direction)).or_insert((0, 0));
        e.0 += r.packets;
        e.1 += r.bytes;
    }
    out
}

#[test]
fn committed_epochs_survive_reopen_and_deltas_continue_from_their_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path()).unwrap();
    assert_eq!(spool.last_epoch(), None);
    let p = prepared(&spool, 10, &[(up(7), t(3, 300)), (up(9), t(1, 40))]);
    spool.commit(p).unwrap();

    let mut reopened = Spool::open(dir.path()).unwrap();
    assert_eq!(reopened.last_epoch(), Some(10));
    let p = prepared(&reopened, 11, &[(up(7), t(5, 500)), (up(9), t(1, 40))]);
    assert_eq!(p.file().records.len(), 1, "tenant 9 did not change");
    assert_eq!(p.file().records[0].sequence, 2, "sequence continues");
    reopened.commit(p).unwrap();

    let files = reopened.read_all().unwrap();
    assert_eq!(files.iter().map(|f| f.epoch).collect::<Vec<_>>(), [10, 11]);
    assert_eq!(files[0].records[0].tenant, "acme");
    assert_eq!(
        files[0].records[1].tenant, "9",
        "unnamed tenant keeps its id"
    );
    let sums = totals(&files);
    assert_eq!(sums[&("acme".into(), Direction::Uplink)], (5, 500));
    assert_eq!(sums[&("9".into(), Direction::Uplink)], (1, 40));
}

#[test]
fn a_crash_before_or_during_commit_loses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path()).unwrap();
    commit_acme(&mut spool, 1, t(2, 200));

    // Crash after computing epoch 2, before writing anything.
    let lost = acme(&spool, 2, t(4, 400));
    drop(lost);
    drop(spool);
    // Restart; crash after the temp file is written and fsynced, before the rename.
    let spool = Spool::open(dir.path()).unwrap();
    assert_eq!(spool.last_epoch(), Some(1));
    let half = acme(&spool, 2, t(5, 500));
    let tmp = spool.write_temp(&half).unwrap();
    assert!(tmp.exists());
    drop(spool);

    let mut spool = Spool::open(dir.path()).unwrap();
    assert!(!tmp.exists(), "interrupted commit cleaned up");
    assert_eq!(spool.last_epoch(), Some(1));
    commit_acme(&mut spool, 3, t(6, 600));
    let files = spool.read_all().unwrap();
    assert_eq!(files.iter().map(|f| f.epoch).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(
        totals(&files)[&("acme".into(), Direction::Uplink)],
        (6, 600)
    );
}

#[test]
fn an_epoch_is_closed_at_most_once_and_sent_files_are_pruned_but_the_newest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path()).unwrap();
    commit_acme(&mut spool, 5, t(1, 10));
    let err = spool.prepare(&header(), 5, 60, &[], &names()).unwrap_err();
    assert!(
        matches!(err, SpoolError::EpochNotAfter { epoch: 5, last: 5 }),
        "{err}"
    );

    let ack = |epoch: u64| {
        let from = dir.path().join(format!("epoch-{epoch:020}.json"));
        fs::rename(&from, from.with_extension("sent")).unwrap();
    };
    ack(5);
    drop(spool);
    let mut spool = Spool::open(dir.path()).unwrap();
    assert_eq!(
        spool.last_epoch(),
        Some(5),
        "a sent file still holds the snapshot"
    );
    commit_acme(&mut spool, 6, t(3, 30));
    let files = spool.read_all().unwrap();
    assert_eq!(
        files.iter().map(|f| f.epoch).collect::<Vec<_>>(),
        [6],
        "epoch 5 pruned"
    );
    assert_eq!(files[0].records[0].packets, 2);
}

#[test]
fn a_corrupt_committed_file_is_an_error_not_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(format!("epoch-{:020}.json", 4)), "{").unwrap();
    let err = Spool::open(dir.path()).unwrap_err();
    assert_eq!(err.label(), "spool_corrupt");
}
