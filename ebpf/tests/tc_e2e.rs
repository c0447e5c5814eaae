//! End to end through TC (`Hook::Tc`): netns_e2e's chain and traffic, `ue <-> edge <->
//! super{1,2} <-> service`, with the programs at the tcx ingress of the same interfaces
//! instead of XDP (`common/tc.rs`). Real UDP and TCP over IPv4 and IPv6 for two tenants and
//! a non-tenant destination; the edge's counters, and the super nodes' together, must equal
//! what crossed the UE's link (a capture there, checked against the link's own counters)
//! to the byte per (tenant, direction), as with XDP.
//!
//! Once more with GRO on at the edge's UE-facing veth and the super nodes' edge-facing
//! ones: TC then meets merged TCP segments (GSO packets), which must still be counted as
//! the packets the UE sent. And the pinned tcx link: taken over by the next load, released
//! when a node switches hooks, the counters kept.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use common::snapshot::*;
use common::tc::{set_gro, tcx_prog_ids};
use common::topology::*;
use common::*;
use hsn_core::Direction;
use hsn_ebpf::{AttachMode, EdgeConfig, EdgeDatapath, EdgeStats, Hook, PinDir, SuperStats};
use hsn_testkit::bpf::{Bpffs, xdp_prog_id};
use hsn_testkit::netns::{Capture, Netns, VethEnd, veth};
use hsn_testkit::traffic::join;

/// How long a capture may run; the tests take a few seconds.
const CAPTURE_MAX: Duration = Duration::from_secs(120);
/// How long counters may lag behind the traffic that has crossed the UE's link.
const SETTLE: Duration = Duration::from_secs(5);

/// UDP of four sizes and 1 MiB of TCP to every service address, through the TC programs;
/// returns (UE traffic, edge stats delta, super stats deltas).
fn exchange_through_tc(gro: bool) -> anyhow::Result<(UeTraffic, EdgeStats, [SuperStats; 2])> {
    let chain = build_chain()?;
    if gro {
        set_gro(&chain.edge, "e-ue", true)?;
        for i in 0..2 {
            set_gro(&chain.supers[i], &super_edge_if(i), true)?;
        }
    }
    let dp = Datapaths::attach(&chain, Hook::Tc)?;
    for dev in ["e-ue", "e-s1", "e-s2"] {
        assert_eq!(xdp_prog_id(&chain.edge, dev)?, None, "{dev}: no XDP");
        assert_eq!(
            tcx_prog_ids(&chain.edge, dev)?.len(),
            1,
            "{dev}: one tcx program"
        );
    }
    for (i, sup) in chain.supers.iter().enumerate() {
        for dev in [super_edge_if(i), super_service_if(i)] {
            assert_eq!(tcx_prog_ids(sup, &dev)?.len(), 1, "super {i} {dev}");
        }
    }
    let modes: Vec<_> = dp.edge.attachments().into_iter().map(|(_, m)| m).collect();
    assert_eq!(modes, [AttachMode::Tcx; 3]);

    let ue_capture = Capture::start(&chain.ue, CAPTURE_MAX)?;
    let links = chain.link_stats()?;
    let ue_link = chain.ue.link_stats("ue0")?;
    let before = Snapshot::take(&dp.edge, &dp.supers)?;

    let sizes: Vec<usize> = (0..8).flat_map(|_| [18, 512, 1200, 1400]).collect();
    for dst in SERVICE_ADDRS {
        udp_exchange(&chain, dst, &sizes).with_context(|| format!("UDP to {dst}"))?;
    }
    const TCP_BYTES: usize = 1 << 20;
    for dst in SERVICE_ADDRS {
        let got = tcp_stream(&chain, dst, TCP_BYTES).with_context(|| format!("TCP to {dst}"))?;
        assert_eq!(got, TCP_BYTES as u64, "TCP to {dst}");
    }

    let link = || -> anyhow::Result<u64> {
        let d = chain.ue.link_stats("ue0")?.since(&ue_link);
        Ok(d.tx_packets + d.rx_packets)
    };
    eventually("ue0 frames captured", SETTLE, &true, || {
        Ok(ue_capture.seen() == link()?)
    })?;
    let traffic = ue_traffic(&ue_capture.stop()?)?;
    let d = chain.ue.link_stats("ue0")?.since(&ue_link);
    assert_eq!(traffic.link, (d.tx_packets, d.rx_packets), "capture vs ue0");
    let keys: Vec<_> = traffic.tenant.keys().copied().collect();
    assert_eq!(
        keys,
        [
            (TENANT_A, Direction::Uplink),
            (TENANT_A, Direction::Downlink),
            (TENANT_B, Direction::Uplink),
            (TENANT_B, Direction::Downlink),
        ]
    );

    eventually(
        "TC edge counters vs bytes on the UE's link",
        SETTLE,
        &traffic.tenant,
        || Ok(edge_deltas(&before.edge, &dp.edge.counters()?)),
    )?;
    eventually(
        "TC super-node counters vs bytes on the UE's link",
        SETTLE,
        &traffic.tenant,
        || Snapshot::take(&dp.edge, &dp.supers)?.super_sum(&before, EDGE_ID),
    )?;
    let after = Snapshot::take(&dp.edge, &dp.supers)?;
    assert_nothing_dropped(&chain, &links)?;
    let supers = [0, 1].map(|i| after.super_stats[i].since(&before.super_stats[i]));
    Ok((traffic, after.edge_stats.since(&before.edge_stats), supers))
}

/// (all tenant packets, uplink packets) the UE's link carried.
fn tenant_packets(t: &UeTraffic) -> (u64, u64) {
    let all = t.tenant.values().map(|(p, _)| p).sum();
    let up = t
        .tenant
        .iter()
        .filter(|((_, d), _)| *d == Direction::Uplink)
        .map(|(_, (p, _))| p)
        .sum();
    (all, up)
}

/// Nothing malformed, lost to a full map or a missing next hop, or too big.
fn no_errors(e: &EdgeStats, supers: &[SuperStats; 2]) {
    assert_eq!(
        (
            e.parse_errors,
            e.non_ip,
            e.no_next_hop,
            e.redirect_errors,
            e.counter_full,
            e.unknown_peer,
            e.too_big
        ),
        (0, 0, 0, 0, 0, 0, 0),
        "{e:?}"
    );
    for s in supers {
        assert_eq!(
            (
                s.unknown_edge,
                s.unknown_ue,
                s.no_route,
                s.too_big,
                s.parse_errors,
                s.counter_full
            ),
            (0, 0, 0, 0, 0, 0),
            "{s:?}"
        );
    }
}

#[test]
fn tc_counts_tenant_traffic_exactly_and_sends_it_through_the_super_node() -> anyhow::Result<()> {
    require_root!();
    let (traffic, e, supers) = exchange_through_tc(false)?;
    let (all, up) = tenant_packets(&traffic);
    // Without GRO every packet is one program run: the outcomes add up as with XDP.
    assert_eq!(
        (e.tenant, e.redirected, e.decapsulated, e.non_tenant),
        (all, up, all - up, traffic.non_tenant),
        "edge stats (tenant, redirected, decapsulated, non-tenant): {e:?}"
    );
    assert!(e.mss_clamped > 0, "TCP SYNs were clamped: {e:?}");
    let [s1, s2] = &supers;
    assert_eq!(
        (s1.decapsulated, s1.encapsulated),
        (up, all - up),
        "all through super 1: {s1:?}"
    );
    assert_eq!(s2.packets, 0, "nothing through super 2: {s2:?}");
    no_errors(&e, &supers);
    Ok(())
}

#[test]
fn tc_counts_gro_merged_segments_as_the_packets_sent() -> anyhow::Result<()> {
    require_root!();
    let (traffic, e, supers) = exchange_through_tc(true)?;
    let (all, up) = tenant_packets(&traffic);
    // GRO did merge: fewer program runs than packets (the counters, checked against the
    // UE's link, still have every packet).
    assert!(
        e.redirected < up,
        "the edge met merged uplink: {} runs for {up} packets",
        e.redirected
    );
    assert!(e.tenant < all, "{e:?}");
    assert!(supers[0].decapsulated < up, "{:?}", supers[0]);
    no_errors(&e, &supers);
    Ok(())
}

/// Lock-step UDP from the UE to tenant A's address on the edge (delivered locally: no next
/// hop), `n` datagrams of 100 bytes.
fn send(client: &UdpSocket, service: &UdpSocket, n: u64) -> anyhow::Result<()> {
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        client.send_to(&[7u8; 100], (A_V4, 7000))?;
        ensure!(service.recv(&mut buf)? == 100);
    }
    Ok(())
}

/// An edge for `hook` with the fixture tenants on the pinned maps of `pin`, attached to
/// `e-ue` in `ns`.
fn pinned_edge(ns: &Netns, pin: &PinDir, hook: Hook) -> anyhow::Result<EdgeDatapath> {
    let config = EdgeConfig {
        pin: Some(pin.clone()),
        ..EdgeConfig::default()
    };
    ns.run(|| -> anyhow::Result<EdgeDatapath> {
        let mut dp = EdgeDatapath::load_with_hook(&config, hook)?;
        dp.set_tenants(&tenants())?;
        dp.attach("e-ue")?;
        Ok(dp)
    })?
}

/// The pinned tcx link of the edge on `e-ue`: (link id, program id).
fn pinned_tcx(pin: &PinDir) -> anyhow::Result<(u32, u32)> {
    let path = pin.path().join("link_hsn_edge_e-ue_tcx");
    let link =
        aya::programs::links::FdLink::from(aya::programs::links::PinnedLink::from_pin(&path)?);
    let info = link.info()?;
    Ok((info.id(), info.program_id()))
}

/// An agent restart with TC, then a node switching hooks: the pinned tcx link outlives its
/// datapath and the next load takes it over while UDP flows, every datagram metered once;
/// a load for XDP then releases it (no TC program left) and counts on into the same pinned
/// counters, and so does a load for TC after it.
#[test]
fn a_pinned_tcx_link_is_taken_over_and_a_hook_switch_keeps_the_counters() -> anyhow::Result<()> {
    require_root!();
    let fs = Bpffs::new()?;
    let pin = PinDir::under(fs.path(), "tc-takeover")?;
    let ue = Netns::unique("ue")?;
    let edge = Netns::unique("edge")?;
    veth(
        VethEnd::new(&ue, "ue0").addr(&format!("{UE_V4}/24")),
        VethEnd::new(&edge, "e-ue").addr("100.64.0.1/24"),
    )?
    .static_neighbours()?;
    ue.ip(&["route", "add", "10.7.0.0/16", "via", "100.64.0.1"])?;
    edge.ip(&["addr", "add", &format!("{A_V4}/32"), "dev", "lo"])?;
    let service = edge.run(|| UdpSocket::bind((A_V4, 7000)))??;
    let client = ue.run(|| UdpSocket::bind((UE_V4, 0)))??;
    service.set_read_timeout(Some(Duration::from_secs(5)))?;

    let first = pinned_edge(&edge, &pin, Hook::Tc)?;
    assert_eq!(first.attachments(), [("e-ue".to_owned(), AttachMode::Tcx)]);
    let (link_id, first_prog) = pinned_tcx(&pin)?;
    assert_eq!(tcx_prog_ids(&edge, "e-ue")?, [first_prog]);

    // UDP in lock step across the drop and the takeover.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let traffic = {
        let (stop, sent) = (stop.clone(), sent.clone());
        let (client, service) = (client.try_clone()?, service.try_clone()?);
        std::thread::spawn(move || -> anyhow::Result<()> {
            while !stop.load(Ordering::SeqCst) {
                send(&client, &service, 1)?;
                sent.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        })
    };
    let wait_for = |n: u64| {
        let target = sent.load(Ordering::SeqCst) + n;
        let deadline = Instant::now() + Duration::from_secs(10);
        while sent.load(Ordering::SeqCst) < target
            && !traffic.is_finished()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait_for(200);
    drop(first);
    wait_for(200);
    assert_eq!(pinned_tcx(&pin)?, (link_id, first_prog), "runs on, dropped");
    let second = edge.run(|| -> anyhow::Result<EdgeDatapath> {
        let config = EdgeConfig {
            pin: Some(pin.clone()),
            ..EdgeConfig::default()
        };
        let mut dp = EdgeDatapath::load_with_hook(&config, Hook::Tc)?;
        assert_eq!(dp.pinned_attachment("e-ue"), Some(AttachMode::Tcx));
        assert_eq!(dp.attach("e-ue")?, AttachMode::Tcx);
        Ok(dp)
    })??;
    wait_for(200);
    stop.store(true, Ordering::SeqCst);
    join(traffic)?;
    let (link_after, second_prog) = pinned_tcx(&pin)?;
    assert_eq!(link_after, link_id, "the link stays");
    assert_ne!(second_prog, first_prog, "its program was replaced");
    assert_eq!(
        tcx_prog_ids(&edge, "e-ue")?,
        [second_prog],
        "one program, the new one"
    );
    let l3 = 20 + 8 + 100;
    let mut total = sent.load(Ordering::SeqCst);
    let counted = |dp: &EdgeDatapath| -> anyhow::Result<Vec<_>> {
        Ok(dp
            .counters()?
            .into_iter()
            .map(|c| (c.tenant, c.direction, c.packets, c.bytes))
            .collect())
    };
    assert_eq!(
        counted(&second)?,
        [(TENANT_A, Direction::Uplink, total, total * l3)],
        "every datagram metered once, across the drop and the takeover"
    );

    // The node switches to XDP (traffic paused: the switch is not atomic). The tcx link
    // goes, the XDP program counts on into the same counters.
    drop(second);
    let xdp = pinned_edge(&edge, &pin, Hook::Xdp)?;
    assert_eq!(xdp.attachments(), [("e-ue".to_owned(), AttachMode::Native)]);
    assert!(!pin.path().join("link_hsn_edge_e-ue_tcx").exists());
    assert_eq!(
        tcx_prog_ids(&edge, "e-ue")?,
        Vec::<u32>::new(),
        "no TC program"
    );
    assert!(xdp_prog_id(&edge, "e-ue")?.is_some());
    send(&client, &service, 100)?;
    total += 100;
    assert_eq!(
        counted(&xdp)?,
        [(TENANT_A, Direction::Uplink, total, total * l3)]
    );

    // And back to TC.
    drop(xdp);
    let tc = pinned_edge(&edge, &pin, Hook::Tc)?;
    assert_eq!(tc.hook(), Hook::Tc);
    assert!(!pin.path().join("link_hsn_edge_e-ue_native").exists());
    assert_eq!(xdp_prog_id(&edge, "e-ue")?, None, "no XDP program");
    assert_eq!(tcx_prog_ids(&edge, "e-ue")?.len(), 1);
    send(&client, &service, 100)?;
    total += 100;
    assert_eq!(
        counted(&tc)?,
        [(TENANT_A, Direction::Uplink, total, total * l3)]
    );

    // Detach removes the pin and the program.
    let mut tc = tc;
    tc.detach("e-ue")?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while !tcx_prog_ids(&edge, "e-ue")?.is_empty() {
        assert!(Instant::now() < deadline, "still attached after detach");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
