//! End to end across a router: `ue ↔ edge ↔ router ↔ super A1 | super B1 ↔ service`, the
//! edge and the super nodes in different subnets, super A1 and super B1 in two "clusters"
//! (hsn-testkit's `topology::routed`, `common/routed.rs`): real UDP and TCP both ways for
//! two tenants over IPv4 and IPv6, the tunnel IPv4 or IPv6 outside.
//!
//! As in `netns_e2e.rs`, "bytes sent" is a capture on the UE's link, checked against the
//! link's own counters; the edge's counters and the super nodes' must equal it exactly per
//! (tenant, direction). A second capture, on the router, shows what crossed it: only
//! tunnel packets between the edge's address and a super node's, forwarded once (outer TTL
//! 64 in, 63 out), whose inner bytes add up to what the UE's link carried and each super
//! node counted. Neither the edge nor the router has a route to any service address.
//!
//! The crossing and the re-home run twice: with the programs at XDP, and at the tcx ingress
//! of the same interfaces (`Hook::Tc`).

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use common::routed::*;
use common::snapshot::*;
use common::tc::tcx_prog_ids;
use common::topology::{eventually, tenant_of, ue_traffic};
use common::*;
use hsn_core::{Direction, TenantId};
use hsn_ebpf::{EdgeStats, Hook, SuperStats};
use hsn_testkit::bpf::xdp_prog_id;
use hsn_testkit::netns::{Capture, Frame, LinkStats};
use hsn_testkit::traffic::UeTraffic;

/// How long a capture may run.
const CAPTURE_MAX: Duration = Duration::from_secs(180);
/// How long counters and captures may lag behind the traffic.
const SETTLE: Duration = Duration::from_secs(5);
/// How long the UE's link must be silent before a re-home (longer than TCP's delayed ACK).
const QUIET: Duration = Duration::from_millis(300);
/// UDP payloads, up to what an IPv6 packet in an IPv6 tunnel carries on 1500-byte links.
const UDP_SIZES: [usize; 4] = [18, 512, 1200, 1400];
/// The MTU of every link, so of the tunnel's outer packets.
const LINK_MTU: u32 = 1500;

/// (packets, inner IP bytes) per (router interface, sent by the router).
type RouterView = BTreeMap<(String, bool), (u64, u64)>;

/// One test's topology, programs, captures and the counters before its traffic.
struct Run {
    net: Routed,
    dp: Datapaths,
    links: BTreeMap<String, LinkStats>,
    ue_capture: Capture,
    router_capture: Capture,
    before: Snapshot,
}

impl Run {
    fn start(outer: Outer, hook: Hook) -> anyhow::Result<Self> {
        let net = build()?;
        let dp = Datapaths::attach(&net, outer, hook)?;
        let ue_capture = Capture::start(&net.ue, CAPTURE_MAX)?;
        let router_capture = Capture::start(&net.router, CAPTURE_MAX)?;
        Ok(Self {
            links: net.link_stats()?,
            before: Snapshot::take(&dp.edge, &dp.supers)?,
            ue_capture,
            router_capture,
            dp,
            net,
        })
    }

    /// Frames `ue0` sent and received since the start.
    fn ue_link_frames(&self) -> anyhow::Result<u64> {
        let d = self.net.ue.link_stats(UE_IF)?.since(&self.links[UE_IF]);
        Ok(d.tx_packets + d.rx_packets)
    }

    /// Waits until `ue0` has been silent for [`QUIET`] and the capture has read every
    /// frame it counted; returns how many that is (the index of the next frame captured).
    fn ue_quiesce(&self) -> anyhow::Result<usize> {
        let deadline = Instant::now() + SETTLE;
        let (mut last, mut since) = (self.ue_link_frames()?, Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.ue_link_frames()?;
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= QUIET && self.ue_capture.seen() == now {
                return Ok(usize::try_from(now)?);
            }
            ensure!(Instant::now() < deadline, "ue0 never went quiet");
        }
    }

    /// Once all traffic is done: what crossed the UE's link and the router, each checked
    /// against the links' own counters, and the counters checked against it.
    fn finish(self) -> anyhow::Result<Finished> {
        let outer = self.dp.outer;
        eventually("ue0 frames captured", SETTLE, &true, || {
            Ok(self.ue_capture.seen() == self.ue_link_frames()?)
        })?;
        let Self {
            net,
            dp,
            links,
            ue_capture,
            router_capture,
            before,
        } = self;
        let ue_frames = ue_capture.stop()?;
        let traffic = ue_traffic(&ue_frames)?;
        let d = net.ue.link_stats(UE_IF)?.since(&links[UE_IF]);
        assert_eq!(
            traffic.link,
            (d.tx_packets, d.rx_packets),
            "the capture on ue0 equals ue0's own counters (tx packets, rx packets)"
        );
        eventually(
            "edge counters vs bytes on the UE's link",
            SETTLE,
            &traffic.tenant,
            || Ok(edge_deltas(&before.edge, &dp.edge.counters()?)),
        )?;
        eventually(
            "super A1 + super B1 counters vs bytes on the UE's link",
            SETTLE,
            &traffic.tenant,
            || {
                let [a, b] = Snapshot::take(&dp.edge, &dp.supers)?
                    .super_deltas(&before, &outer.edge().to_string())?;
                Ok(sum(&a, &b))
            },
        )?;
        let mut counted = 0;
        for dev in Routed::router_ifs() {
            let d = net.router.link_stats(dev)?.since(&links[dev]);
            counted += d.rx_packets + d.tx_packets;
        }
        eventually("router frames captured", SETTLE, &true, || {
            Ok(router_capture.seen() >= counted)
        })?;
        let router = router_view(&router_capture.stop()?, outer)?;
        let lost = net.lost_since(&links)?;
        ensure!(lost.is_empty(), "veths dropped or errored: {lost:#?}");
        let after = Snapshot::take(&dp.edge, &dp.supers)?;
        Ok(Finished {
            supers: after.super_deltas(&before, &outer.edge().to_string())?,
            edge_stats: after.edge_stats.since(&before.edge_stats),
            super_stats: [0, 1].map(|i| after.super_stats[i].since(&before.super_stats[i])),
            traffic,
            ue_frames,
            router,
            net,
            dp,
        })
    }
}

struct Finished {
    net: Routed,
    dp: Datapaths,
    traffic: UeTraffic,
    ue_frames: Vec<Frame>,
    supers: [PerTenant; 2],
    edge_stats: EdgeStats,
    super_stats: [SuperStats; 2],
    router: RouterView,
}

impl Finished {
    /// Outcome counts agree with the traffic: every tenant uplink packet tunnelled, every
    /// downlink one out of a tunnel, nothing else seen, nothing malformed, dropped for size,
    /// lost to a full map or to a missing next hop or way back.
    fn check_stats(&self) {
        let (up, down) = per_direction(&self.traffic.tenant);
        let e = &self.edge_stats;
        assert_eq!(
            (e.packets, e.tenant, e.redirected, e.decapsulated),
            (up.0 + down.0, up.0 + down.0, up.0, down.0),
            "edge stats (packets, tenant, redirected, decapsulated): {e:?}"
        );
        assert_eq!(
            [
                e.non_tenant,
                e.parse_errors,
                e.non_ip,
                e.no_next_hop,
                e.redirect_errors,
                e.counter_full,
                e.unknown_peer,
                e.too_big
            ],
            [0; 8],
            "{e:?}"
        );
        assert!(e.mss_clamped > 0, "TCP SYNs were clamped: {e:?}");
        let [a, b] = &self.super_stats;
        assert_eq!(
            (
                a.tenant + b.tenant,
                a.decapsulated + b.decapsulated,
                a.encapsulated + b.encapsulated
            ),
            (up.0 + down.0, up.0, down.0),
            "super stats (tenant, decapsulated, encapsulated): A1 {a:?} B1 {b:?}"
        );
        for s in [a, b] {
            assert_eq!(s.packets, s.tenant, "only tenant traffic: {s:?}");
            assert_eq!(
                [
                    s.non_tenant,
                    s.unknown_edge,
                    s.unknown_ue,
                    s.no_route,
                    s.too_big,
                    s.parse_errors,
                    s.counter_full
                ],
                [0; 7],
                "{s:?}"
            );
        }
    }

    /// The router forwarded exactly the tunnelled traffic: from the edge what the UE sent,
    /// to the edge what it received, to and from each site what its super node counted.
    fn check_router(&self) {
        let mut want = RouterView::new();
        let mut put = |dev: &str, sent: bool, v: (u64, u64)| {
            if v != (0, 0) {
                want.insert((dev.to_owned(), sent), v);
            }
        };
        let (up, down) = per_direction(&self.traffic.tenant);
        put(ROUTER_EDGE_IF, false, up);
        put(ROUTER_EDGE_IF, true, down);
        for (site, counted) in SITES.iter().zip(&self.supers) {
            let (up, down) = per_direction(counted);
            put(site.router_if, true, up);
            put(site.router_if, false, down);
        }
        assert_eq!(
            self.router, want,
            "tunnel packets at the router, (packets, inner bytes) per (interface, sent)"
        );
    }

    /// Prints the figures (visible with `--nocapture`).
    fn report(&self, test: &str, elapsed: Duration) {
        let mut out = format!("{test} ({:?} outer, {elapsed:.2?}):\n", self.dp.outer);
        for ((tenant, dir), (p, b)) in &self.traffic.tenant {
            let site = |i: usize| self.supers[i].get(&(*tenant, *dir)).copied();
            out += &format!(
                "  tenant {tenant} {:<8} {p:>6} pkts {b:>10} B   A1 {:?} B1 {:?}\n",
                dir.to_string(),
                site(0),
                site(1)
            );
        }
        out += &format!("  edge {:?}\n  router {:?}", self.edge_stats, self.router);
        eprintln!("{out}");
    }

    /// The largest tenant IP packet on the UE's link per (tenant, direction).
    fn largest_packets(&self) -> BTreeMap<(TenantId, Direction), u32> {
        let mut out = BTreeMap::new();
        for ip in self.ue_frames.iter().filter_map(|f| f.ip) {
            let key = tenant_of(ip.dst)
                .map(|t| (t, Direction::Uplink))
                .or_else(|| tenant_of(ip.src).map(|t| (t, Direction::Downlink)));
            if let Some(key) = key {
                let max = out.entry(key).or_insert(0);
                *max = ip.len.max(*max);
            }
        }
        out
    }
}

/// (packets, bytes) of uplink and of downlink.
fn per_direction(d: &PerTenant) -> ((u64, u64), (u64, u64)) {
    let total = |dir: Direction| {
        d.iter()
            .filter(|((_, k), _)| *k == dir)
            .fold((0, 0), |(p, b), (_, v)| (p + v.0, b + v.1))
    };
    (total(Direction::Uplink), total(Direction::Downlink))
}

fn sum(a: &PerTenant, b: &PerTenant) -> PerTenant {
    let mut out = a.clone();
    for (k, (p, bytes)) in b {
        let e = out.entry(*k).or_default();
        *e = (e.0 + p, e.1 + bytes);
    }
    out
}

/// Every frame the router sent or received must be a whole tunnel packet between the
/// edge's address and a super node's, in `outer`'s family, forwarded once: no plain tenant
/// or UE packet, nothing merged, nothing else at all (the links are quiet).
fn router_view(frames: &[Frame], outer: Outer) -> anyhow::Result<RouterView> {
    let edge = outer.edge();
    let supers = SITES.map(|s| outer.super_node(&s));
    let ue: [IpAddr; 2] = [UE_V4.parse()?, UE_V6.parse()?];
    let mut out = RouterView::new();
    for f in frames {
        let ip =
            f.ip.with_context(|| format!("a non-IP frame at the router: {f:?}"))?;
        for addr in [ip.src, ip.dst] {
            ensure!(
                tenant_of(addr).is_none() && !ue.contains(&addr),
                "a tenant or UE address outside the tunnel at the router: {f:?}"
            );
        }
        ensure!(
            Outer::is_tunnel_protocol(ip.protocol)
                && ((ip.src == edge && supers.contains(&ip.dst))
                    || (ip.dst == edge && supers.contains(&ip.src))),
            "not a tunnel packet between the edge and a super node: {f:?}"
        );
        ensure!(
            f.len == ip.len as usize + 14 && ip.len <= LINK_MTU,
            "a merged or padded frame: {f:?}"
        );
        let ttl = if f.outgoing { 63 } else { 64 };
        ensure!(ip.ttl == ttl, "outer TTL {} (want {ttl}): {f:?}", ip.ttl);
        let e = out.entry((f.ifname.clone(), f.outgoing)).or_default();
        *e = (e.0 + 1, e.1 + u64::from(ip.len - outer.overhead()));
    }
    Ok(out)
}

/// Neither the edge nor the router can route any service address by itself.
fn assert_no_plain_route(net: &Routed) {
    for dst in SERVICE_ADDRS {
        for (name, ns) in [("edge", &net.edge), ("router", &net.router)] {
            assert!(
                ns.ip(&["route", "get", dst]).is_err(),
                "the {name} has a route to {dst}"
            );
        }
    }
}

/// One round of UDP to every service address.
fn udp_round(net: &Routed, rounds: usize) -> anyhow::Result<()> {
    let sizes: Vec<usize> = (0..rounds).flat_map(|_| UDP_SIZES).collect();
    for dst in SERVICE_ADDRS {
        udp_exchange(net, dst, &sizes).with_context(|| format!("UDP to {dst}"))?;
    }
    Ok(())
}

const ALL_KEYS: [(TenantId, Direction); 4] = [
    (TENANT_A, Direction::Uplink),
    (TENANT_A, Direction::Downlink),
    (TENANT_B, Direction::Uplink),
    (TENANT_B, Direction::Downlink),
];

#[test]
fn tenant_traffic_crosses_the_router_only_inside_the_tunnel() -> anyhow::Result<()> {
    require_root!();
    crosses_the_router(Hook::Xdp)
}

#[test]
fn tenant_traffic_crosses_the_router_only_inside_the_tunnel_with_tc() -> anyhow::Result<()> {
    require_root!();
    crosses_the_router(Hook::Tc)
}

fn crosses_the_router(hook: Hook) -> anyhow::Result<()> {
    let started = Instant::now();
    let run = Run::start(Outer::V4, hook)?;
    const TCP_BYTES: u64 = 1 << 20;
    udp_round(&run.net, 8)?;
    for dst in SERVICE_ADDRS {
        tcp_exchange(&run.net, dst, TCP_BYTES, TCP_BYTES)
            .with_context(|| format!("TCP with {dst}"))?;
    }
    let done = run.finish()?;
    done.report(&format!("through A1, {hook:?}"), started.elapsed());

    let keys: Vec<_> = done.traffic.tenant.keys().copied().collect();
    assert_eq!(keys, ALL_KEYS, "both tenants, both directions");
    for (key, (_, bytes)) in &done.traffic.tenant {
        // 1 MiB each way per family, plus the datagrams.
        assert!(*bytes > 2 * TCP_BYTES, "{key:?}: {bytes} B");
    }
    assert_eq!(
        done.supers[0], done.traffic.tenant,
        "super A1 counted exactly what crossed the UE's link"
    );
    assert!(done.supers[1].is_empty(), "B1: {:?}", done.supers[1]);
    assert_eq!(done.super_stats[1].packets, 0, "nothing reached B1");
    done.check_stats();
    done.check_router();
    assert_no_plain_route(&done.net);
    Ok(())
}

#[test]
fn rehoming_to_another_cluster_moves_the_count_to_its_super_node() -> anyhow::Result<()> {
    require_root!();
    rehome_to_another_cluster(Hook::Xdp)
}

#[test]
fn rehoming_to_another_cluster_moves_the_count_to_its_super_node_with_tc() -> anyhow::Result<()> {
    require_root!();
    rehome_to_another_cluster(Hook::Tc)
}

fn rehome_to_another_cluster(hook: Hook) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut run = Run::start(Outer::V6, hook)?;
    let prog_ids = |net: &Routed| -> anyhow::Result<Vec<Vec<u32>>> {
        [EDGE_UE_IF, EDGE_ROUTER_IF]
            .into_iter()
            .map(|dev| match hook {
                Hook::Xdp => Ok(xdp_prog_id(&net.edge, dev)?.into_iter().collect()),
                Hook::Tc => tcx_prog_ids(&net.edge, dev),
            })
            .collect()
    };
    let ids = prog_ids(&run.net)?;
    const HALF: u64 = 1 << 20;

    // Through A1: every address, and a connection that stays open across the re-home.
    let mut long = TcpPair::open(&run.net, A_V6)?;
    udp_round(&run.net, 2)?;
    tcp_exchange(&run.net, B_V4, HALF / 4, HALF / 4)?;
    long.upload(HALF)?;
    long.download(HALF)?;
    let split = run.ue_quiesce()?;
    let mid = Snapshot::take(&run.dp.edge, &run.dp.supers)?;
    let b1 = mid.super_stats[1].since(&run.before.super_stats[1]);
    assert_eq!(
        b1.packets, 0,
        "nothing reached B1 before the re-home: {b1:?}"
    );

    run.dp.rehome(&run.net, 1)?;
    // Through B1: the open connection's second half first (its uplink is what teaches B1
    // where the UE is), then every address again.
    long.upload(HALF)?;
    long.download(HALF)?;
    long.close()?;
    udp_round(&run.net, 2)?;
    tcp_exchange(&run.net, A_V4, HALF / 4, HALF / 4)?;
    assert_eq!(
        prog_ids(&run.net)?,
        ids,
        "same programs attached: no reload"
    );

    let done = run.finish()?;
    done.report(&format!("re-home A1 -> B1, {hook:?}"), started.elapsed());
    let before = ue_traffic(&done.ue_frames[..split])?;
    let after = ue_traffic(&done.ue_frames[split..])?;
    eprintln!(
        "  before the re-home {:?}\n  after it {:?}",
        before.tenant, after.tenant
    );
    let keys: Vec<_> = after.tenant.keys().copied().collect();
    assert_eq!(keys, ALL_KEYS, "both tenants, both ways after the re-home");
    assert_eq!(
        done.supers[0], before.tenant,
        "A1 counted exactly what went before the re-home"
    );
    assert_eq!(
        done.supers[1], after.tenant,
        "B1 counted exactly what went after it"
    );
    done.check_stats();
    done.check_router();
    let edge = Outer::V6.edge();
    let learned = done.dp.supers[1].ue_edges()?;
    for ue in [UE_V4, UE_V6] {
        assert_eq!(learned.get(&ue.parse()?), Some(&edge), "B1 learned {ue}");
    }
    let hop = done.dp.edge.next_hop()?.context("a next hop")?;
    assert_eq!(
        (hop.remote.to_string(), hop.dst_mac),
        (B1.super_v6.to_owned(), ROUTER_EDGE_MAC)
    );
    assert_no_plain_route(&done.net);
    Ok(())
}

#[test]
fn a_large_transfer_does_not_stall_on_1500_byte_links() -> anyhow::Result<()> {
    require_root!();
    let started = Instant::now();
    let run = Run::start(Outer::V6, Hook::Xdp)?;
    let hop = run.dp.edge.next_hop()?.context("a next hop")?;
    assert_eq!((hop.mtu, hop.inner_mtu()), (LINK_MTU, LINK_MTU - 40));
    for (ns, dev) in run.net.links() {
        let mtu = ns.ip(&["-j", "link", "show", "dev", dev])?;
        assert!(
            mtu.contains(&format!("\"mtu\":{LINK_MTU},")),
            "{dev}: {mtu}"
        );
    }
    const BIG: u64 = 8 << 20;
    let transfer = Instant::now();
    for dst in [A_V4, B_V6] {
        tcp_exchange(&run.net, dst, BIG, BIG).with_context(|| format!("TCP with {dst}"))?;
    }
    let transfer = transfer.elapsed();
    let done = run.finish()?;
    done.report("8 MiB each way, twice", started.elapsed());
    eprintln!(
        "  transfers {transfer:.2?}: {:.0} Mbit/s",
        (4 * BIG * 8) as f64 / transfer.as_secs_f64() / 1e6
    );

    let keys: Vec<_> = done.traffic.tenant.keys().copied().collect();
    assert_eq!(keys, ALL_KEYS);
    for (key, (_, bytes)) in &done.traffic.tenant {
        assert!(*bytes > BIG, "{key:?}: {bytes} B");
    }
    assert_eq!(done.supers[0], done.traffic.tenant, "A1 counted it all");
    done.check_stats();
    done.check_router();
    // Two connections: each one's SYN and SYN-ACK lowered to the tunnel's MSS, so that the
    // largest segment either way fills the tunnel exactly.
    let e = &done.edge_stats;
    assert!(e.too_big == 0 && e.mss_clamped >= 4, "{e:?}");
    let largest = done.largest_packets();
    assert_eq!(
        largest,
        ALL_KEYS.into_iter().map(|k| (k, hop.inner_mtu())).collect(),
        "the largest tenant packet each way is the tunnel's inner MTU"
    );
    Ok(())
}
