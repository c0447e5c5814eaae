//! Epoch accounting across agent restarts with real pinned counters: traffic through the
//! edge program (BPF_PROG_TEST_RUN), crashes before and during a commit, and the spool
//! totals equal exactly what was sent. Needs root; bpffs is a private mount per test.

mod common;

use common::{edge_n1_header, udp};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hsn_agent::epoch::EpochCloser;
use hsn_agent::metrics::Metrics;
use hsn_agent::spool::Spool;
use hsn_agent::status::AgentStatus;
use hsn_core::{Direction, TenantId};
use hsn_ebpf::{EdgeConfig, EdgeDatapath, PinDir, TenantPrefixes};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

const UE: [u8; 4] = [100, 64, 0, 10];
const ACME: [u8; 4] = [10, 7, 0, 10];
const BETA: [u8; 4] = [10, 9, 0, 5];
const OTHER: [u8; 4] = [192, 0, 2, 1];
/// IPv4 total length of every frame.
const L3: u64 = common::UDP_L3;

const ACME_ID: TenantId = TenantId::new(7).unwrap();
const BETA_ID: TenantId = TenantId::new(9).unwrap();

fn tenants() -> Vec<TenantPrefixes> {
    vec![
        TenantPrefixes {
            tenant: ACME_ID,
            prefixes: vec!["10.7.0.0/16".parse().unwrap()],
        },
        TenantPrefixes {
            tenant: BETA_ID,
            prefixes: vec!["10.9.0.0/16".parse().unwrap()],
        },
    ]
}

/// Sent so far, per (tenant, direction): packets.
type Sent = BTreeMap<(String, Direction), u64>;

/// One in-process agent: the pinned datapath and the epoch closer over the spool.
struct Instance {
    dp: Arc<Mutex<EdgeDatapath>>,
    epochs: EpochCloser<EdgeDatapath>,
}

fn start(pin: &PinDir, spool_dir: &Path) -> anyhow::Result<Instance> {
    let mut dp = EdgeDatapath::load(&EdgeConfig {
        pin: Some(pin.clone()),
        redirect_uplink: false,
    })?;
    dp.set_tenants(&tenants())?;
    let dp = Arc::new(Mutex::new(dp));
    let mut registry = Registry::default();
    let (status, _) = watch::channel(AgentStatus::default());
    let epochs = EpochCloser::new(
        dp.clone(),
        Spool::open(spool_dir)?,
        edge_n1_header(),
        Metrics::register(&mut registry),
        status,
    );
    Ok(Instance { dp, epochs })
}

/// Sends `n` frames of each kind: acme uplink, beta downlink, and non-tenant.
fn traffic(instance: &Instance, n: u64, sent: &mut Sent) -> anyhow::Result<()> {
    let dp = instance.dp.lock().unwrap();
    for _ in 0..n {
        dp.run_packet(&udp(UE, ACME))?;
        dp.run_packet(&udp(BETA, UE))?;
        dp.run_packet(&udp(UE, OTHER))?;
    }
    *sent.entry(("acme".into(), Direction::Uplink)).or_default() += n;
    *sent
        .entry(("beta".into(), Direction::Downlink))
        .or_default() += n;
    Ok(())
}

fn spooled(spool_dir: &Path) -> anyhow::Result<BTreeMap<(String, Direction), (u64, u64)>> {
    let mut out = BTreeMap::new();
    for file in Spool::open(spool_dir)?.read_all()? {
        for r in file.records {
            let e = out.entry((r.tenant, r.direction)).or_insert((0, 0));
            e.0 += r.packets;
            e.1 += r.bytes;
        }
    }
    Ok(out)
}

#[test]
fn spool_totals_equal_traffic_across_restarts_and_crashes() -> anyhow::Result<()> {
    if !common::can_bpf() {
        return Ok(());
    }
    let bpffs = tempfile::tempdir()?;
    let pin = PinDir::under(bpffs.path(), "restart-test")?;
    let _unmount = Unmount(bpffs.path().to_owned());
    let state = tempfile::tempdir()?;
    let spool_dir = state.path().join("spool");
    let names = BTreeMap::from([(ACME_ID, "acme".to_owned()), (BETA_ID, "beta".to_owned())]);
    let mut sent = Sent::new();

    // Run 1: an epoch closes normally; then traffic, epoch 2 computed, crash before persisting.
    let mut a = start(&pin, &spool_dir)?;
    traffic(&a, 5, &mut sent)?;
    a.epochs.close(1, 60, &names)?;
    traffic(&a, 3, &mut sent)?;
    drop(a); // crash: epoch 2 was never written

    // Run 2: counters survived in the pins; traffic; crash after the temp file, before rename.
    let b = start(&pin, &spool_dir)?;
    assert_eq!(b.epochs.last_epoch(), Some(1));
    assert!(
        b.dp.lock()
            .unwrap()
            .counters()?
            .iter()
            .any(|c| c.packets == 8),
        "pinned counters kept counting across the restart"
    );
    traffic(&b, 4, &mut sent)?;
    let spool = Spool::open(&spool_dir)?;
    let counters = hsn_agent::datapath::Datapath::counters(&*b.dp.lock().unwrap())?;
    let header = edge_n1_header();
    let pending = spool.prepare(&header, 2, 60, &counters, &names)?;
    spool.write_temp(&pending)?;
    drop((b, spool)); // crash mid-commit

    // Run 3: the interrupted epoch is gone, its traffic lands in the next close.
    let mut c = start(&pin, &spool_dir)?;
    assert_eq!(c.epochs.last_epoch(), Some(1));
    traffic(&c, 2, &mut sent)?;
    c.epochs.close(2, 60, &names)?;
    traffic(&c, 6, &mut sent)?;
    c.epochs.close(3, 60, &names)?;
    assert!(
        c.epochs.close(3, 60, &names).is_err(),
        "an epoch closes once"
    );
    drop(c);

    let expected: BTreeMap<_, _> = sent
        .iter()
        .map(|(k, &n)| (k.clone(), (n, n * L3)))
        .collect();
    assert_eq!(spooled(&spool_dir)?, expected);
    assert_eq!(expected[&("acme".into(), Direction::Uplink)], (20, 20 * L3));
    Ok(())
}

/// Unmounts the private bpffs the datapath mounted.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}
