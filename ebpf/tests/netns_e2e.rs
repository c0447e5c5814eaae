//! End to end in network namespaces: `ue <-> edge <-> super{1,2} <-> service` joined by veth
//! pairs, the real programs attached in native XDP mode, real UDP and TCP over IPv4 and IPv6
//! for two tenants and one non-tenant destination (see `common/topology.rs`).
//!
//! "Bytes sent" is measured independently of the programs: a capture on the UE's link,
//! itself checked against that interface's own counters. The edge's counters must equal it
//! exactly per (tenant, direction), and so must the super nodes' together, both ways:
//! uplink as it leaves the edge's tunnel, downlink as it enters it. That the traffic went
//! through a super node is shown three ways: the edge has no kernel route to tenant
//! prefixes, the super nodes counted it under the tunnel's outer source (the edge's own
//! address), and it reached the service with its TTL lowered by exactly one hop (non-tenant
//! traffic, routed by the edge's kernel, by two).

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use common::snapshot::*;
use common::topology::*;
use common::*;
use hsn_core::{Direction, TenantId};
use hsn_ebpf::{EdgeStats, SuperStats};
use hsn_testkit::bpf::xdp_prog_id;
use hsn_testkit::netns::{Capture, Frame, LinkStats};
use hsn_testkit::traffic::{IO_TIMEOUT, TcpFlow, join};

/// How long a capture may run; the tests take a few seconds.
const CAPTURE_MAX: Duration = Duration::from_secs(120);
/// How long counters may lag behind the traffic that has crossed the UE's link.
const SETTLE: Duration = Duration::from_secs(5);

/// The traffic of one test: captures and the counters before it.
struct Run {
    dp: Datapaths,
    chain: Chain,
    links: BTreeMap<String, LinkStats>,
    ue_link: LinkStats,
    ue_capture: Capture,
    service_capture: Capture,
    before: Snapshot,
}

impl Run {
    fn start() -> anyhow::Result<Self> {
        let chain = build_chain()?;
        let dp = Datapaths::attach(&chain, hsn_ebpf::Hook::Xdp)?;
        let ue_capture = Capture::start(&chain.ue, CAPTURE_MAX)?;
        let service_capture = Capture::start(&chain.service, CAPTURE_MAX)?;
        Ok(Self {
            links: chain.link_stats()?,
            ue_link: chain.ue.link_stats("ue0")?,
            before: Snapshot::take(&dp.edge, &dp.supers)?,
            ue_capture,
            service_capture,
            dp,
            chain,
        })
    }

    /// Once all traffic is done: what crossed the UE's link, checked against its counters,
    /// and the counters after it, checked against that.
    fn finish(self) -> anyhow::Result<Finished> {
        let Self {
            dp,
            chain,
            links,
            ue_link,
            ue_capture,
            service_capture,
            before,
        } = self;
        // The capture has read every frame ue0 counted (nothing else runs in the UE).
        let link = || -> anyhow::Result<u64> {
            let d = chain.ue.link_stats("ue0")?.since(&ue_link);
            Ok(d.tx_packets + d.rx_packets)
        };
        eventually("ue0 frames captured", SETTLE, &true, || {
            Ok(ue_capture.seen() == link()?)
        })?;
        let ue_frames = ue_capture.stop()?;
        let traffic = ue_traffic(&ue_frames)?;
        let d = chain.ue.link_stats("ue0")?.since(&ue_link);
        // Packets, not bytes: a veth counts bytes with or without the Ethernet header
        // depending on whether the receiving end runs XDP.
        assert_eq!(
            traffic.link,
            (d.tx_packets, d.rx_packets),
            "the capture on ue0 equals ue0's own counters (tx packets, rx packets)"
        );
        let ttl = ue_ttl(&ue_frames)?;

        // The edge counted exactly what crossed the UE's link, per (tenant, direction).
        eventually(
            "edge counters vs bytes on the UE's link",
            SETTLE,
            &traffic.tenant,
            || Ok(edge_deltas(&before.edge, &dp.edge.counters()?)),
        )?;
        // The super nodes together counted exactly the same, both ways.
        eventually(
            "super-node counters vs bytes on the UE's link",
            SETTLE,
            &traffic.tenant,
            || {
                let [s1, s2] =
                    Snapshot::take(&dp.edge, &dp.supers)?.super_deltas(&before, EDGE_ID)?;
                Ok(sum(&s1, &s2))
            },
        )?;
        let after = Snapshot::take(&dp.edge, &dp.supers)?;
        service_capture_settles(&chain, &links, &service_capture)?;
        let service = service_frames(service_capture.stop()?, ttl)?;
        assert_nothing_dropped(&chain, &links)?;
        Ok(Finished {
            supers: after.super_deltas(&before, EDGE_ID)?,
            edge_stats: after.edge_stats.since(&before.edge_stats),
            super_stats: [0, 1].map(|i| after.super_stats[i].since(&before.super_stats[i])),
            traffic,
            service,
            chain,
            dp,
        })
    }
}

struct Finished {
    dp: Datapaths,
    chain: Chain,
    traffic: UeTraffic,
    supers: [Deltas<(TenantId, Direction)>; 2],
    edge_stats: EdgeStats,
    super_stats: [SuperStats; 2],
    service: ServiceSide,
}

impl Finished {
    /// The outcome counts agree with the traffic: every tenant uplink packet tunnelled to a
    /// super node and every downlink one out of a tunnel, nothing malformed, nothing lost to
    /// a full map, a missing next hop or a packet too big for the tunnel.
    fn check_stats(&self) {
        let t = &self.traffic;
        let tenant_packets: u64 = t.tenant.values().map(|(p, _)| p).sum();
        let uplink_packets: u64 = t
            .tenant
            .iter()
            .filter(|((_, d), _)| *d == Direction::Uplink)
            .map(|(_, (p, _))| p)
            .sum();
        let downlink_packets = tenant_packets - uplink_packets;
        let e = &self.edge_stats;
        assert_eq!(
            (e.tenant, e.redirected, e.decapsulated, e.non_tenant),
            (
                tenant_packets,
                uplink_packets,
                downlink_packets,
                t.non_tenant
            ),
            "edge stats (tenant, redirected, decapsulated, non-tenant): {e:?}"
        );
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
        assert!(e.mss_clamped > 0, "TCP SYNs were clamped: {e:?}");
        assert_eq!(e.packets, e.tenant + e.non_tenant, "{e:?}");
        let [s1, s2] = &self.super_stats;
        assert_eq!(
            (
                s1.tenant + s2.tenant,
                s1.decapsulated + s2.decapsulated,
                s1.encapsulated + s2.encapsulated
            ),
            (tenant_packets, uplink_packets, downlink_packets),
            "super stats (tenant, decapsulated, encapsulated): {s1:?} {s2:?}"
        );
        assert_eq!(
            s1.non_tenant + s2.non_tenant,
            t.non_tenant,
            "non-tenant traffic crosses super 1 plain, both ways"
        );
        for s in [s1, s2] {
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
}

fn sum(
    a: &Deltas<(TenantId, Direction)>,
    b: &Deltas<(TenantId, Direction)>,
) -> Deltas<(TenantId, Direction)> {
    let mut out = a.clone();
    for (k, (p, bytes)) in b {
        let e = out.entry(*k).or_default();
        *e = (e.0 + p, e.1 + bytes);
    }
    out
}

/// The UE's TTL / hop limit, the same on every packet it sent.
fn ue_ttl(frames: &[Frame]) -> anyhow::Result<u8> {
    let ttls: std::collections::BTreeSet<u8> = frames
        .iter()
        .filter(|f| f.outgoing)
        .filter_map(|f| f.ip.map(|ip| ip.ttl))
        .collect();
    ensure!(ttls.len() == 1, "the UE sent with TTLs {ttls:?}");
    Ok(ttls.into_iter().next().unwrap_or_default())
}

/// Waits until the service's capture has read every frame its links counted since `links`
/// (taken after the capture started, so the capture may have seen more, never fewer).
fn service_capture_settles(
    chain: &Chain,
    links: &BTreeMap<String, LinkStats>,
    capture: &Capture,
) -> anyhow::Result<()> {
    let mut counted = 0;
    for dev in ["svc-s1", "svc-s2"] {
        let d = chain.service.link_stats(dev)?.since(&links[dev]);
        counted += d.rx_packets + d.tx_packets;
    }
    eventually("service frames captured", SETTLE, &true, || {
        Ok(capture.seen() >= counted)
    })
}

/// What reached the service: tenant frames per arrival interface.
#[derive(Debug, Default)]
struct ServiceSide {
    tenant_frames: BTreeMap<String, u64>,
    non_tenant_frames: u64,
}

/// Checks every packet the service received: tenant traffic one routing hop from the UE
/// (the super node's), non-tenant two (the edge's kernel and the super node's).
fn service_frames(frames: Vec<Frame>, ue_ttl: u8) -> anyhow::Result<ServiceSide> {
    let service: Vec<IpAddr> = SERVICE_ADDRS
        .iter()
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let mut out = ServiceSide::default();
    for frame in frames.iter().filter(|f| !f.outgoing) {
        let Some(ip) = frame.ip.filter(|ip| service.contains(&ip.dst)) else {
            continue;
        };
        if tenant_of(ip.dst).is_some() {
            ensure!(
                ip.ttl == ue_ttl - 1,
                "tenant packet with TTL {} (UE sent {ue_ttl}): {frame:?}",
                ip.ttl
            );
            *out.tenant_frames.entry(frame.ifname.clone()).or_default() += 1;
        } else {
            ensure!(
                ip.ttl == ue_ttl - 2,
                "non-tenant packet with TTL {} (UE sent {ue_ttl}): {frame:?}",
                ip.ttl
            );
            out.non_tenant_frames += 1;
        }
    }
    Ok(out)
}

#[test]
fn tenant_traffic_is_counted_exactly_and_goes_through_the_super_node() -> anyhow::Result<()> {
    require_root!();
    let run = Run::start()?;
    let chain = &run.chain;
    let sizes: Vec<usize> = (0..8).flat_map(|_| [18, 512, 1200, 1400]).collect();
    for dst in SERVICE_ADDRS {
        udp_exchange(chain, dst, &sizes)?;
    }
    const TCP_BYTES: usize = 1 << 20;
    for dst in SERVICE_ADDRS {
        let got = tcp_stream(chain, dst, TCP_BYTES).with_context(|| format!("TCP to {dst}"))?;
        assert_eq!(got, TCP_BYTES as u64, "TCP to {dst}");
    }
    let done = run.finish()?;

    let keys: Vec<_> = done.traffic.tenant.keys().copied().collect();
    assert_eq!(
        keys,
        [
            (TENANT_A, Direction::Uplink),
            (TENANT_A, Direction::Downlink),
            (TENANT_B, Direction::Uplink),
            (TENANT_B, Direction::Downlink),
        ],
        "both tenants, both directions, and nothing for the non-tenant destination"
    );
    for ((tenant, dir), (packets, bytes)) in &done.traffic.tenant {
        // 8 x 4 datagrams (or replies) per family, plus 1 MiB of TCP per family.
        assert!(*packets > 2 * 32, "{tenant} {dir}: {packets} packets");
        if *dir == Direction::Uplink {
            assert!(*bytes > 2 * TCP_BYTES as u64, "{tenant} {dir}: {bytes} B");
        }
    }
    assert!(done.traffic.non_tenant_up > 0 && done.traffic.non_tenant_down > 0);
    done.check_stats();
    // All of it through super 1, nothing through super 2.
    assert!(done.supers[1].is_empty(), "super 2: {:?}", done.supers[1]);
    assert!(
        done.super_stats[1].packets == 0,
        "{:?}",
        done.super_stats[1]
    );
    assert_eq!(
        done.service.tenant_frames.keys().collect::<Vec<_>>(),
        ["svc-s1"],
        "tenant traffic reaches the service from super 1 only"
    );
    assert!(done.service.non_tenant_frames > 0);
    Ok(())
}

#[test]
fn switching_the_super_node_mid_stream_keeps_counters_exact_without_reload() -> anyhow::Result<()> {
    require_root!();
    let mut run = Run::start()?;
    let ids = |run: &Run| -> anyhow::Result<Vec<u32>> {
        ["e-ue", "e-s1", "e-s2"]
            .iter()
            .map(|dev| {
                xdp_prog_id(&run.chain.edge, dev)?
                    .with_context(|| format!("no XDP program on {dev}"))
            })
            .collect()
    };
    let ids_before = ids(&run)?;
    let attachments = run.dp.edge.attachments();

    // A stream to tenant A over IPv6: half of it, a pause with everything delivered, the
    // switch, the other half.
    const HALF: usize = 2 << 20;
    let mut flow = TcpFlow::open(&run.chain, A_V6)?;
    let received = flow.received.clone();
    let (gate, gate_rx) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || -> anyhow::Result<u64> {
        flow.write(HALF)?;
        gate_rx
            .recv_timeout(IO_TIMEOUT)
            .context("waiting for the switch")?;
        flow.write(HALF)?;
        flow.close()
    });
    eventually(
        "the first half at the service",
        IO_TIMEOUT,
        &(HALF as u64),
        || Ok(received.load(Ordering::SeqCst)),
    )?;
    // Everything the edge redirected so far has been counted by super 1.
    let key = (TENANT_A, Direction::Uplink);
    let edge_uplink = |run: &Run| -> anyhow::Result<(u64, u64)> {
        let d = edge_deltas(&run.before.edge, &run.dp.edge.counters()?);
        Ok(d.get(&key).copied().unwrap_or_default())
    };
    let at_switch = edge_uplink(&run)?;
    eventually(
        "super 1 caught up with the edge",
        SETTLE,
        &at_switch,
        || {
            let [s1, _] =
                Snapshot::take(&run.dp.edge, &run.dp.supers)?.super_deltas(&run.before, EDGE_ID)?;
            Ok(s1.get(&key).copied().unwrap_or_default())
        },
    )?;

    run.dp.switch_to(&run.chain, 1)?;
    gate.send(())?;
    assert_eq!(join(writer)?, 2 * HALF as u64, "the whole stream arrived");

    assert_eq!(ids(&run)?, ids_before, "same programs attached: no reload");
    assert_eq!(run.dp.edge.attachments(), attachments);
    let done = run.finish()?;
    done.check_stats();
    let (s1, s2) = (
        done.supers[0].get(&key).copied().unwrap_or_default(),
        done.supers[1].get(&key).copied().unwrap_or_default(),
    );
    assert_eq!(
        s1, at_switch,
        "super 1 saw the first half and nothing after the switch"
    );
    assert!(
        s2.0 > 0 && s2.1 > HALF as u64,
        "super 2 saw the second half: {s2:?}"
    );
    assert_eq!(
        (s1.0 + s2.0, s1.1 + s2.1),
        done.traffic.tenant[&key],
        "together exactly the stream's uplink"
    );
    assert!(
        done.service
            .tenant_frames
            .get("svc-s1")
            .copied()
            .unwrap_or(0)
            > 0
            && done
                .service
                .tenant_frames
                .get("svc-s2")
                .copied()
                .unwrap_or(0)
                > 0,
        "the service got the stream from both super nodes: {:?}",
        done.service
    );
    let hop = done.dp.edge.next_hop()?.context("a next hop")?;
    assert_eq!(hop.dst_mac, super_edge_mac(1));
    assert_eq!(hop.remote.to_string(), super_edge_v4(1));
    assert!(
        done.chain.edge.ip(&["route", "get", A_V6]).is_err(),
        "no edge route"
    );
    Ok(())
}
