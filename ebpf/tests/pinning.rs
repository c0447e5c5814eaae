//! Counters, state maps and XDP links pinned in bpffs survive dropping and reloading the
//! datapath (an agent restart), and a reload takes the running program's link over. Each
//! test mounts its own bpffs in a temporary directory, through the crate's own
//! mount-if-missing path, so the host's /sys/fs/bpf is never touched.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::edge_case::edge_with_next_hop;
use common::tunnel::{edge_node, way_back};
use common::*;
use hsn_core::{Direction, TenantId};
use hsn_ebpf::{
    AttachMode, EdgeConfig, EdgeDatapath, Error, PinDir, SuperConfig, SuperDatapath, TenantPrefixes,
};
use hsn_testkit::bpf::{Bpffs, xdp_prog_id};
use hsn_testkit::netns::{Netns, VethEnd, veth};
use hsn_testkit::packet::Packet;
use hsn_testkit::traffic::join;
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

fn totals(edge: &EdgeDatapath) -> anyhow::Result<Vec<(TenantId, Direction, u64, u64)>> {
    Ok(edge
        .counters()?
        .iter()
        .map(|c| (c.tenant, c.direction, c.packets, c.bytes))
        .collect())
}

/// A pin directory for `network` on `fs`, and an edge configuration that uses it.
fn pinned_edge(fs: &Bpffs, network: &str) -> anyhow::Result<(PinDir, EdgeConfig)> {
    let pin = PinDir::under(fs.path(), network)?;
    let config = EdgeConfig {
        pin: Some(pin.clone()),
        ..EdgeConfig::default()
    };
    Ok((pin, config))
}

#[test]
fn edge_counters_survive_a_reload_and_keep_increasing() -> anyhow::Result<()> {
    require_root!();
    let fs = Bpffs::new()?;
    let (pin, config) = pinned_edge(&fs, "pin-test")?;
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
    for map in ["edge_slot_counters", "edge_slots", "edge_stats"] {
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
fn super_counters_edges_and_learned_ues_survive_a_reload() -> anyhow::Result<()> {
    require_root!();
    let fs = Bpffs::new()?;
    let config = SuperConfig {
        pin: Some(PinDir::under(fs.path(), "pin-test")?),
    };
    let frame = Packet::v4(UE_V4, A_V4)
        .udp(20)
        .tunnel(EDGE_ADDR_V4, SUPER_ADDR_V4)
        .build();
    let load = || -> anyhow::Result<SuperDatapath> {
        let mut dp = SuperDatapath::load(&config)?;
        dp.set_tenants(&tenants())?;
        Ok(dp)
    };
    let mut first = load()?;
    first.set_edges(&[edge_node(EDGE_ADDR_V4, Some(way_back(false, 1500)))])?;
    first.run_packet(&frame)?;
    first.run_packet(&frame)?;
    drop(first);
    // No set_edges: the pinned edges still identify the tunnel, the learned UE stays.
    let second = load()?;
    second.run_packet(&frame)?;
    let counts: Vec<_> = second
        .counters()?
        .iter()
        .map(|c| (c.edge.to_string(), c.packets))
        .collect();
    assert_eq!(counts, [(EDGE_ADDR_V4.to_owned(), 3)]);
    assert_eq!(second.stats()?.decapsulated, 3);
    assert_eq!(
        second.ue_edges()?.into_iter().collect::<Vec<_>>(),
        [(UE_V4.parse()?, EDGE_ADDR_V4.parse()?)]
    );
    let down = second.run_packet(&Packet::v4(A_V4, UE_V4).udp(1).build())?;
    assert_eq!(
        down.action,
        hsn_ebpf::XdpAction::Redirect,
        "the way back too"
    );
    Ok(())
}

#[test]
fn an_incompatible_pin_is_refused_not_reused() -> anyhow::Result<()> {
    require_root!();
    let fs = Bpffs::new()?;
    let pin = PinDir::under(fs.path(), "pin-test")?;
    drop(SuperDatapath::load(&SuperConfig {
        pin: Some(pin.clone()),
    })?);
    // Plant the super node's stats array (8-byte values) where the edge's counters
    // (16-byte values) belong: metering is never reused from a map of another shape. (The
    // stats themselves are outcome counts, replaced on a mismatch: the next test.)
    std::fs::rename(
        pin.path().join("super_stats"),
        pin.path().join("edge_slot_counters"),
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
                field: "value size",
                pinned: 8,
                expected: 16,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.label(), "pinned_map");
    Ok(())
}

/// Tenant tables pinned by an earlier load keep metering until the next load replaces
/// them; the replacement (read back from the pins, written into the other generation)
/// moves, adds and removes prefixes, and every tenant keeps its counter slot.
#[test]
fn pinned_tenant_tables_serve_until_replaced_and_slots_keep_their_tenants() -> anyhow::Result<()> {
    require_root!();
    let fs = Bpffs::new()?;
    let (_, config) = pinned_edge(&fs, "pin-test")?;
    let to_a = Packet::v4(UE_V4, A_V4).udp(20);
    let to_b = Packet::v4(UE_V4, B_V4).udp(30);
    let (la, lb) = (to_a.l3_len(), to_b.l3_len());

    let mut first = edge_with_next_hop(&config)?;
    // Twice: both generations now hold the table, so the replacement below must read the
    // inactive one back and remove what it no longer wants.
    first.set_tenants(&tenants())?;
    first.run_packet(&to_a.build())?;
    first.run_packet(&to_b.build())?;
    drop(first);

    // No set_tenants: the pinned tables still classify.
    let mut second = EdgeDatapath::load(&config)?;
    second.run_packet(&to_a.build())?;
    second.run_packet(&to_b.build())?;
    assert_eq!(
        totals(&second)?,
        [
            (TENANT_A, Direction::Uplink, 2, 2 * la),
            (TENANT_B, Direction::Uplink, 2, 2 * lb),
        ]
    );

    // Tenant A gives up its /16, B keeps its /24, tenant 40 appears with a /32 inside it.
    let tenant_40 = TenantId::new(40).unwrap();
    second.set_tenants(&[
        TenantPrefixes {
            tenant: TENANT_B,
            prefixes: vec!["10.7.9.0/24".parse()?],
        },
        TenantPrefixes {
            tenant: tenant_40,
            prefixes: vec![format!("{A_V4}/32").parse()?],
        },
    ])?;
    second.run_packet(&to_a.build())?;
    second.run_packet(&to_b.build())?;
    let other = Packet::v4(UE_V4, "10.7.200.1").udp(10);
    second.run_packet(&other.build())?;
    // The new table has no IPv6 at all.
    second.run_packet(&Packet::v6(UE_V6, A_V6).udp(10).build())?;
    assert_eq!(
        totals(&second)?,
        [
            (TENANT_A, Direction::Uplink, 2, 2 * la),
            (TENANT_B, Direction::Uplink, 3, 3 * lb),
            (tenant_40, Direction::Uplink, 1, la),
        ]
    );
    assert_eq!(
        second.stats()?.non_tenant,
        2,
        "10.7.200.1 and {A_V6} left with tenant A"
    );
    drop(second);

    // A restart with the original table: A is back on its old slot, 40 keeps its own.
    let third = edge_with_next_hop(&config)?;
    third.run_packet(&to_a.build())?;
    assert_eq!(
        totals(&third)?,
        [
            (TENANT_A, Direction::Uplink, 3, 3 * la),
            (TENANT_B, Direction::Uplink, 3, 3 * lb),
            (tenant_40, Direction::Uplink, 1, la),
        ]
    );
    Ok(())
}

#[test]
fn an_incompatible_state_pin_is_replaced_and_reported() -> anyhow::Result<()> {
    require_root!();
    let fs = Bpffs::new()?;
    let (pin, config) = pinned_edge(&fs, "pin-test")?;
    drop(EdgeDatapath::load(&config)?);
    // The stats array (key 4, value 8, 14 entries) where the IPv4 long-prefix hash belongs.
    std::fs::rename(
        pin.path().join("edge_stats"),
        pin.path().join("edge_tenant_v4_long"),
    )?;
    let mut edge = EdgeDatapath::load(&config)?;
    let replaced: Vec<_> = edge
        .replaced_pins()
        .iter()
        .map(|r| (r.field, r.pinned, r.expected))
        .collect();
    assert_eq!(replaced, [("key size", 4, 8)]);
    edge.set_tenants(&tenants())?;
    let frame = Packet::v4(UE_V4, A_V4).udp(20).build();
    edge.run_packet(&frame)?;
    assert_eq!(totals(&edge)?.len(), 1, "the fresh table works");
    drop(edge);
    assert!(EdgeDatapath::load(&config)?.replaced_pins().is_empty());
    Ok(())
}

/// The link pinned for `ifname` in `pin` and what the kernel says about it: (link id, the
/// program id it runs).
fn pinned_link(pin: &PinDir, ifname: &str) -> anyhow::Result<(u32, u32)> {
    let path = pin.path().join(format!("link_hsn_edge_{ifname}_native"));
    let link =
        aya::programs::links::FdLink::from(aya::programs::links::PinnedLink::from_pin(&path)?);
    let info = link.info()?;
    Ok((info.id(), info.program_id()))
}

/// An agent restart in miniature: a datapath attached with a pin directory is dropped
/// (the process dies) while UDP to a tenant keeps flowing in lock step; a second load with
/// the same pin directory, which never writes the tenant map, takes the pinned link over.
/// The link stays, its program changes, and every datagram the service received was
/// metered exactly once: no window without a program, no tenant missing from the map.
#[test]
fn a_second_load_takes_over_the_pinned_link_with_no_window() -> anyhow::Result<()> {
    require_root!();
    let fs = Bpffs::new()?;
    let (pin, config) = pinned_edge(&fs, "takeover")?;
    let ue = Netns::unique("ue")?;
    let edge = Netns::unique("edge")?;
    veth(
        VethEnd::new(&ue, "ue0").addr(&format!("{UE_V4}/24")),
        VethEnd::new(&edge, "e-ue").addr("100.64.0.1/24"),
    )?
    .static_neighbours()?;
    ue.ip(&["route", "add", "10.7.0.0/16", "via", "100.64.0.1"])?;
    edge.ip(&["addr", "add", &format!("{A_V4}/32"), "dev", "lo"])?;

    let first = edge.run(|| -> anyhow::Result<EdgeDatapath> {
        let mut dp = EdgeDatapath::load(&config)?;
        dp.set_tenants(&tenants())?;
        assert_eq!(dp.pinned_attachment("e-ue"), None);
        assert_eq!(dp.attach("e-ue")?, AttachMode::Native);
        Ok(dp)
    })??;
    let (link_id, first_prog) = pinned_link(&pin, "e-ue")?;
    assert_eq!(xdp_prog_id(&edge, "e-ue")?, Some(first_prog));

    // Lock-step UDP from the UE to tenant A's address on the edge (delivered locally: the
    // first datapath has no next hop), counted as it arrives.
    let service = edge.run(|| UdpSocket::bind((A_V4, 7000)))??;
    let client = ue.run(|| UdpSocket::bind((UE_V4, 0)))??;
    service.set_read_timeout(Some(Duration::from_secs(5)))?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let traffic = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) {
                client.send_to(&[7u8; 100], (A_V4, 7000))?;
                let n = service.recv(&mut buf)?;
                anyhow::ensure!(n == 100);
                received.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        })
    };
    // Bounded: a traffic thread that failed (its error surfaces at join) or a stall ends it.
    let wait_for = |n: u64| {
        let target = received.load(Ordering::SeqCst) + n;
        let deadline = Instant::now() + Duration::from_secs(10);
        while received.load(Ordering::SeqCst) < target
            && !traffic.is_finished()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            received.load(Ordering::SeqCst) >= target || traffic.is_finished(),
            "{n} datagrams did not arrive within 10 s"
        );
    };
    wait_for(200);
    drop(first);
    wait_for(200);
    assert_eq!(
        pinned_link(&pin, "e-ue")?,
        (link_id, first_prog),
        "the program runs on without its datapath"
    );
    let second = edge.run(|| -> anyhow::Result<EdgeDatapath> {
        let mut dp = EdgeDatapath::load(&config)?;
        assert!(dp.replaced_pins().is_empty(), "{:?}", dp.replaced_pins());
        assert_eq!(dp.pinned_attachment("e-ue"), Some(AttachMode::Native));
        assert_eq!(dp.attach("e-ue")?, AttachMode::Native);
        Ok(dp)
    })??;
    wait_for(200);
    stop.store(true, Ordering::SeqCst);
    join(traffic)?;

    let (link_after, second_prog) = pinned_link(&pin, "e-ue")?;
    assert_eq!(link_after, link_id, "the link stays");
    assert_ne!(second_prog, first_prog, "its program was replaced");
    assert_eq!(xdp_prog_id(&edge, "e-ue")?, Some(second_prog));
    let sent = received.load(Ordering::SeqCst);
    let l3 = 20 + 8 + 100;
    assert_eq!(
        totals(&second)?,
        [(TENANT_A, Direction::Uplink, sent, sent * l3)],
        "every datagram metered once, across the drop and the takeover"
    );
    assert_eq!(
        second.attachments(),
        [("e-ue".to_owned(), AttachMode::Native)]
    );

    // Dropping keeps it attached; detach removes the pin and the program.
    drop(second);
    assert_eq!(xdp_prog_id(&edge, "e-ue")?, Some(second_prog));
    let mut third = edge.run(|| -> anyhow::Result<EdgeDatapath> {
        let mut dp = EdgeDatapath::load(&config)?;
        dp.attach("e-ue")?;
        Ok(dp)
    })??;
    third.detach("e-ue")?;
    assert!(!pin.path().join("link_hsn_edge_e-ue_native").exists());
    let deadline = Instant::now() + Duration::from_secs(2);
    while xdp_prog_id(&edge, "e-ue")?.is_some() {
        assert!(Instant::now() < deadline, "still attached after detach");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A link pinned on an interface that was deleted since is defunct: the next load removes
/// its pin and attaches anew on the interface of that name.
#[test]
fn a_defunct_pinned_link_is_replaced_by_a_new_one() -> anyhow::Result<()> {
    require_root!();
    let fs = Bpffs::new()?;
    let (pin, config) = pinned_edge(&fs, "defunct")?;
    let a = Netns::unique("a")?;
    let b = Netns::unique("b")?;
    let make = || -> anyhow::Result<()> {
        veth(VethEnd::new(&a, "a0"), VethEnd::new(&b, "b0"))?;
        Ok(())
    };
    make()?;
    let attach = || {
        b.run(|| -> anyhow::Result<EdgeDatapath> {
            let mut dp = EdgeDatapath::load(&config)?;
            dp.attach("b0")?;
            Ok(dp)
        })?
    };
    drop(attach()?);
    let (old_link, _) = pinned_link(&pin, "b0")?;
    b.ip(&["link", "del", "b0"])?;
    make()?;
    let dp = attach()?;
    let (new_link, prog) = pinned_link(&pin, "b0")?;
    assert_ne!(new_link, old_link);
    assert_eq!(xdp_prog_id(&b, "b0")?, Some(prog));
    drop(dp);
    Ok(())
}
