//! Counters pinned in bpffs survive dropping and reloading the datapath (an agent restart).
//! Each test mounts its own bpffs in a temporary directory, through the crate's own
//! mount-if-missing path, so the host's /sys/fs/bpf is never touched.

mod common;

use common::edge_case::edge_with_next_hop;
use common::packet::Packet;
use common::*;
use hsn_ebpf::{Direction, EdgeConfig, EdgeDatapath, Error, PinDir, SuperConfig, SuperDatapath};
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

fn totals(edge: &EdgeDatapath) -> anyhow::Result<Vec<(u32, Direction, u64, u64)>> {
    Ok(edge
        .counters()?
        .iter()
        .map(|c| (c.tenant, c.direction, c.packets, c.bytes))
        .collect())
}

#[test]
fn edge_counters_survive_a_reload_and_keep_increasing() -> anyhow::Result<()> {
    require_root!();
    let fs = PrivateBpffs::new()?;
    let pin = PinDir::under(fs.path(), "pin-test")?;
    let config = EdgeConfig {
        pin: Some(pin.clone()),
        ..EdgeConfig::default()
    };
    let packet = Packet::v4(UE_V4, A_V4).udp(20);
    let l3 = packet.l3_len();

    let first = edge_with_next_hop(&config)?;
    assert_eq!(
        statfs(fs.path())?.filesystem_type(),
        BPF_FS_MAGIC,
        "load mounted bpffs"
    );
    for _ in 0..3 {
        first.run_packet(&packet.build())?;
    }
    assert_eq!(totals(&first)?, [(TENANT_A, Direction::Uplink, 3, 3 * l3)]);
    drop(first);
    for map in ["edge_counters", "edge_stats"] {
        assert!(pin.path().join(map).exists(), "{map} is pinned");
    }

    let second = edge_with_next_hop(&config)?;
    assert_eq!(
        totals(&second)?,
        [(TENANT_A, Direction::Uplink, 3, 3 * l3)],
        "after reload"
    );
    assert_eq!(second.stats()?.packets, 3);
    for _ in 0..2 {
        second.run_packet(&packet.build())?;
    }
    assert_eq!(totals(&second)?, [(TENANT_A, Direction::Uplink, 5, 5 * l3)]);
    assert_eq!(second.stats()?.redirected, 5);

    // Another network's pin directory starts from zero.
    let other = EdgeDatapath::load(&EdgeConfig {
        pin: Some(PinDir::under(fs.path(), "other-net")?),
        ..EdgeConfig::default()
    })?;
    assert_eq!(totals(&other)?, []);

    drop(second);
    pin.remove()?;
    assert!(!pin.path().exists());
    pin.remove()?; // absent is fine
    let fresh = edge_with_next_hop(&config)?;
    assert_eq!(totals(&fresh)?, [], "removing the pins reset the counters");
    Ok(())
}

#[test]
fn super_counters_survive_a_reload() -> anyhow::Result<()> {
    require_root!();
    let fs = PrivateBpffs::new()?;
    let config = SuperConfig {
        pin: Some(PinDir::under(fs.path(), "pin-test")?),
        ..SuperConfig::default()
    };
    let frame = Packet::v4("192.0.2.1", A_V4).udp(20).build();
    let load = || -> anyhow::Result<SuperDatapath> {
        let mut dp = SuperDatapath::load(&config)?;
        dp.set_tenants(&tenants())?;
        Ok(dp)
    };
    let first = load()?;
    first.run_packet(&frame)?;
    first.run_packet(&frame)?;
    drop(first);
    let second = load()?;
    second.run_packet(&frame)?;
    let counts: Vec<_> = second
        .counters()?
        .iter()
        .map(|c| (c.edge.to_string(), c.packets))
        .collect();
    assert_eq!(counts, [("192.0.2.1".to_owned(), 3)]);
    assert_eq!(second.stats()?.edge_by_addr, 3);
    Ok(())
}

#[test]
fn an_incompatible_pin_is_refused_not_reused() -> anyhow::Result<()> {
    require_root!();
    let fs = PrivateBpffs::new()?;
    let pin = PinDir::under(fs.path(), "pin-test")?;
    drop(SuperDatapath::load(&SuperConfig {
        pin: Some(pin.clone()),
        ..SuperConfig::default()
    })?);
    // Plant the super node's stats array (9 entries) where the edge expects its own (10).
    std::fs::rename(
        pin.path().join("super_stats"),
        pin.path().join("edge_stats"),
    )?;
    let err = EdgeDatapath::load(&EdgeConfig {
        pin: Some(pin.clone()),
        ..EdgeConfig::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PinnedMapMismatch {
                field: "max entries",
                pinned: 9,
                expected: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.label(), "pinned_map");
    Ok(())
}
