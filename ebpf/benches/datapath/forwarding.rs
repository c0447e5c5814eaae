//! Part 3: packets per second through an edge namespace.
//!
//! ```text
//!  ns ue                 ns edge                                  ns super
//!  [gen] ue0 ==veth== e-ue  -> edge XDP | Linux | ... -> e-s1 ==veth== s1-e [sink]
//! ```
//!
//! The namespaces are hsn-testkit's chain (`topology`) with one super node; its service
//! namespace sees none of these frames. The edge ↔ super link's MTU is raised to
//! [`UNDERLAY_MTU`] so that a 1500 B frame still fits once tunnelled.
//!
//! The generator is `hsn_bench_gen` run with BPF_F_TEST_XDP_LIVE_FRAMES in `ue`: the kernel
//! sends `count` copies of one frame out of `ue0`, as xdp-trafficgen does, at a rate no
//! userspace sender reaches; the "ceiling" row shows how far it is from capping any path.
//! `hsn_bench_sink` on `s1-e` counts and drops what arrives, tunnelled or not. Only what
//! happens in the edge namespace changes between the paths; generator, frame, topology and
//! sink are the same.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use hsn_ebpf::{EdgeConfig, EdgeDatapath, EdgeNode, NextHop, SuperConfig, SuperDatapath};
use hsn_testkit::netns::Netns;
use hsn_testkit::topology::{
    Chain, EDGE_UE_IF, EDGE_V4, UE_IF, edge_super_if, super_edge_if, super_edge_v4,
};

use crate::forwarding_report::{Figures, report_size};
use crate::frames::{
    EDGE_IN_MAC, HIT, SIZES, SUPER_MAC, UE, UE_MAC, UNDERLAY_MTU, tenant_table, udp_frame,
};
use crate::kernel_tunnel::{KernelTunnels, Route};
use crate::object::{BenchObject, FWD, L2, LiveRun, SINK};
use crate::program_cost::{LARGE, SMALL};
use crate::report::Verdict;
use crate::stopped;

/// Bounds on the frames one measurement sends, whatever the calibration says.
const MIN_COUNT: f64 = 50_000.0;
const MAX_COUNT: f64 = 50_000_000.0;
const CALIBRATION_COUNT: u32 = 200_000;
/// Frames per path and size in the check that super 0 takes the tunnelled frames.
const CHECK_COUNT: u32 = 1000;
/// Fewer than this share of the frames reaching the sink means a broken set-up, not a
/// slow path: stop rather than print a ratio of nothing.
const MIN_DELIVERED: f64 = 0.5;
/// The same for a path through the Linux stack, which drops what its backlog cannot hold
/// when the generator outruns it (the lwt tunnel at 1500 B delivered a quarter in one run):
/// the table's "delivered" column shows the share.
const MIN_DELIVERED_LINUX: f64 = 0.05;

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Interleaved rounds; each figure is the median over them.
    pub rounds: usize,
    /// Target length of one measurement.
    pub seconds: f64,
}

/// What the edge namespace does with the frames arriving on `e-ue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The edge program: tenant lookup, metering, IP in IP to `e-s1` (encapsulating
    /// redirect).
    Edge,
    /// No HSN and no XDP in the edge namespace: the kernel routes the frame (ip_forward)
    /// out of `e-s1`, untunnelled.
    Linux,
    /// `hsn_bench_fwd`: the edge program without tenant lookup and counter.
    NoMeter,
    /// The edge program with the 100,000-prefix table of part 2, where the hit's /16 holds
    /// several longer prefixes (probed) instead of one (compared); its metering on/off is a
    /// target.
    EdgeLarge,
    /// Nothing: the sink drops frames as they arrive on `e-ue`. Not a path through the
    /// edge but the ceiling the generator and the first veth hop set for every path.
    Ceiling,
    /// `hsn_bench_l2`: [`Path::NoMeter`] with the plain MAC-rewrite redirect the tunnel
    /// replaced.
    Plain,
    /// No XDP; the kernel routes the prefix into an ipip device (where it has one).
    LinuxIpip,
    /// No XDP; the kernel routes the prefix through `hsn_bench_lwt_ipip`'s `encap bpf`.
    LinuxLwt,
}

impl Path {
    pub const ALL: [Self; 8] = [
        Self::Edge,
        Self::Linux,
        Self::NoMeter,
        Self::EdgeLarge,
        Self::Ceiling,
        Self::Plain,
        Self::LinuxIpip,
        Self::LinuxLwt,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Edge => "edge XDP, IP-in-IP redirect (metering on)",
            Self::Linux => "Linux forwarding, plain (no HSN, no tunnel)",
            Self::NoMeter => "edge XDP, IP-in-IP redirect, metering off",
            Self::EdgeLarge => "edge XDP, IP-in-IP, 100,000 prefixes",
            Self::Ceiling => "ceiling: dropped on arrival at e-ue",
            Self::Plain => "XDP plain redirect (MAC rewrite), no meter",
            Self::LinuxIpip => "Linux forwarding into an ipip device",
            Self::LinuxLwt => "Linux forwarding, IP in IP by lwt bpf route",
        }
    }

    /// Position in [`Path::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Does the frame reach super 0 inside IP in IP?
    fn tunnelled(self) -> bool {
        matches!(
            self,
            Self::Edge | Self::NoMeter | Self::EdgeLarge | Self::LinuxIpip | Self::LinuxLwt
        )
    }
}

/// The three namespaces and what is loaded into them; dropping it deletes everything.
struct Topology {
    // Field order is drop order: programs detach before their namespaces go.
    edge: EdgeDatapath,
    edge_large: EdgeDatapath,
    bench: BenchObject,
    tunnels: KernelTunnels,
    chain: Chain,
}

impl Topology {
    fn build() -> anyhow::Result<Self> {
        // Forwarding on, static neighbours: no ARP on the wire.
        let chain = Chain::builder().build()?;
        let (ue_ns, edge_ns, super_ns) = (&chain.ue, &chain.edge, &chain.supers[0]);
        let (e_out, s_in) = (edge_super_if(0), super_edge_if(0));
        let mtu = UNDERLAY_MTU.to_string();
        edge_ns.ip(&["link", "set", "dev", &e_out, "mtu", &mtu])?;
        super_ns.ip(&["link", "set", "dev", &s_in, "mtu", &mtu])?;
        // veth takes frames redirected into it only on an end with NAPI: one running XDP, or
        // with GRO on. GRO lets the Linux paths run without any XDP program on e-ue.
        edge_ns.exec("ethtool", &["-K", EDGE_UE_IF, "gro", "on"])?;
        // The Linux paths' routes for the tenant prefix: plain via super 0, or a tunnel.
        let tunnels = KernelTunnels::set_up(edge_ns)?;

        let gen_ifindex = ue_ns.run(|| nix::net::if_::if_nametoindex(UE_IF))??;
        let mut bench = BenchObject::load(gen_ifindex)?;
        let mut edge = EdgeDatapath::load(&EdgeConfig {
            pin: None,
            redirect_uplink: true,
        })?;
        edge.set_tenants(&tenant_table(SMALL))?;
        let mut edge_large = EdgeDatapath::load(&EdgeConfig {
            pin: None,
            redirect_uplink: true,
        })?;
        edge_large.set_tenants(&tenant_table(LARGE))?;
        // Inside the edge namespace: a devmap resolves the ifindex in the writer's namespace,
        // and the same number names another device (or none) in the caller's.
        let remote = super_edge_v4(0).parse()?;
        edge_ns.run(|| -> anyhow::Result<()> {
            let hop = NextHop::via(&e_out, SUPER_MAC, EDGE_V4.parse()?, remote)?;
            bench.set_next_hop(&hop)?;
            edge.set_next_hop(hop)?;
            edge_large.set_next_hop(hop)?;
            Ok(())
        })??;
        let mut topo = Self {
            edge,
            edge_large,
            bench,
            tunnels,
            chain,
        };
        topo.check_tunnels()?;
        let Self { bench, chain, .. } = &mut topo;
        chain.supers[0].run(|| bench.attach(SINK, &s_in))??;
        Ok(topo)
    }

    /// The paths this kernel can run, and why not the others.
    fn paths(&self) -> (Vec<Path>, Vec<(Path, String)>) {
        let mut missing = Vec::new();
        for (path, why) in [
            (Path::LinuxIpip, &self.tunnels.ipip),
            (Path::LinuxLwt, &self.tunnels.lwt),
        ] {
            if let Err(why) = why {
                missing.push((path, why.clone()));
            }
        }
        let paths = Path::ALL
            .into_iter()
            .filter(|p| missing.iter().all(|(m, _)| m != p))
            .collect();
        (paths, missing)
    }

    /// Before any measurement, with `hsn_super` on `s1-e` in place of the sink: every
    /// tunnelled path's frames reach super 0 as tunnel packets of the edge that the super
    /// program takes (decapsulates), none as anything else.
    fn check_tunnels(&mut self) -> anyhow::Result<()> {
        let mut sup = SuperDatapath::load(&SuperConfig::default())?;
        sup.set_tenants(&tenant_table(SMALL))?;
        sup.set_edges(&[EdgeNode {
            addr: EDGE_V4.parse()?,
            route: None,
        }])?;
        let s_in = super_edge_if(0);
        self.chain.supers[0].run(|| sup.attach(&s_in))??;
        let (paths, _) = self.paths();
        for path in paths.into_iter().filter(|p| p.tunnelled()) {
            for len in SIZES {
                let frame = udp_frame(UE, HIT, len, UE_MAC, EDGE_IN_MAC);
                let before = sup.stats()?;
                self.select(path)?;
                let bench = &mut self.bench;
                let run = self.chain.ue.run(|| bench.generate(&frame, CHECK_COUNT));
                self.unselect(path)?;
                run??;
                settle(|| Ok(sup.stats()?.packets))?;
                let seen = sup.stats()?.since(&before);
                anyhow::ensure!(
                    seen.decapsulated == seen.packets
                        && seen.packets as f64 >= MIN_DELIVERED * f64::from(CHECK_COUNT),
                    "{}, {len} B: of {CHECK_COUNT} frames super 0 saw {} and decapsulated {} \
                     ({seen:?})",
                    path.label(),
                    seen.packets,
                    seen.decapsulated,
                );
            }
        }
        self.chain.supers[0].run(|| sup.detach(&s_in))??;
        Ok(())
    }

    /// Puts `path` in place on `e-ue` (or in the edge's routes).
    fn select(&mut self, path: Path) -> anyhow::Result<()> {
        let Self {
            edge,
            edge_large,
            bench,
            tunnels,
            chain,
        } = self;
        match path {
            Path::LinuxIpip => return tunnels.route(&chain.edge, Route::Ipip),
            Path::LinuxLwt => return tunnels.route(&chain.edge, Route::Lwt),
            _ => {}
        }
        chain.edge.run(|| -> anyhow::Result<()> {
            match path {
                Path::Edge => {
                    edge.attach(EDGE_UE_IF)
                        .context("attaching the edge to e-ue")?;
                }
                Path::Linux | Path::LinuxIpip | Path::LinuxLwt => {}
                Path::NoMeter => bench.attach(FWD, EDGE_UE_IF)?,
                Path::EdgeLarge => {
                    edge_large
                        .attach(EDGE_UE_IF)
                        .context("attaching the 100,000-prefix edge to e-ue")?;
                }
                Path::Ceiling => bench.attach(SINK, EDGE_UE_IF)?,
                Path::Plain => bench.attach(L2, EDGE_UE_IF)?,
            }
            Ok(())
        })?
    }

    fn unselect(&mut self, path: Path) -> anyhow::Result<()> {
        match path {
            Path::Edge => self.edge.detach(EDGE_UE_IF)?,
            Path::Linux => {}
            Path::NoMeter => self.bench.detach(FWD, EDGE_UE_IF)?,
            Path::EdgeLarge => self.edge_large.detach(EDGE_UE_IF)?,
            Path::Ceiling => self.bench.detach(SINK, EDGE_UE_IF)?,
            Path::Plain => self.bench.detach(L2, EDGE_UE_IF)?,
            Path::LinuxIpip | Path::LinuxLwt => {
                self.tunnels.route(&self.chain.edge, Route::Plain)?
            }
        }
        Ok(())
    }

    /// Sends `count` frames and waits for the sink to stop counting.
    fn measure(&mut self, path: Path, frame: &[u8], count: u32) -> anyhow::Result<Sample> {
        self.select(path)?;
        let result = self.send(frame, count);
        self.unselect(path)?;
        let sample = result?;
        let min = match path {
            Path::Linux | Path::LinuxIpip | Path::LinuxLwt => MIN_DELIVERED_LINUX,
            _ => MIN_DELIVERED,
        };
        if sample.delivered() < min {
            let stats = |ns: &Netns, dev: &str| ns.link_stats(dev).map(|s| format!("{dev}: {s:?}"));
            let chain = &self.chain;
            anyhow::bail!(
                "{}: only {} of {} frames reached the sink\n{}\n{}\n{}\n{}\nedge: {:?}",
                path.label(),
                sample.received,
                sample.sent,
                stats(&chain.ue, UE_IF)?,
                stats(&chain.edge, EDGE_UE_IF)?,
                stats(&chain.edge, &edge_super_if(0))?,
                stats(&chain.supers[0], &super_edge_if(0))?,
                self.edge.stats()?,
            );
        }
        Ok(sample)
    }

    fn send(&mut self, frame: &[u8], count: u32) -> anyhow::Result<Sample> {
        let before = self.bench.sink_packets()?;
        let softirqd_before = ksoftirqd_time()?;
        let bench = &mut self.bench;
        let run = self.chain.ue.run(|| bench.generate(frame, count))??;
        let received = settle(|| self.bench.sink_packets())? - before;
        Ok(Sample {
            sent: u64::from(count),
            received,
            run,
            softirqd: ksoftirqd_time()?.saturating_sub(softirqd_before),
        })
    }
}

/// `count()` once it has stopped moving (at most 200 ms: what is still queued after the
/// generator returns is a few rings' worth).
fn settle(count: impl Fn() -> anyhow::Result<u64>) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_millis(200);
    let mut last = count()?;
    loop {
        std::thread::sleep(Duration::from_millis(5));
        let now = count()?;
        if now == last || Instant::now() >= deadline {
            return Ok(now);
        }
        last = now;
    }
}

/// CPU time of the ksoftirqd threads: softirq work the kernel deferred out of the generating
/// thread (`sum_exec_runtime`, ns, first field of `/proc/<pid>/schedstat`).
fn ksoftirqd_time() -> anyhow::Result<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc")? {
        let dir = entry?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("ksoftirqd/") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or_default();
    }
    Ok(Duration::from_nanos(total))
}

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    sent: u64,
    received: u64,
    run: LiveRun,
    softirqd: Duration,
}

impl Sample {
    /// Frames at the sink per second of CPU the kernel spent on them: its timing of the
    /// generator run (which includes the softirq work done inline) plus ksoftirqd's.
    /// Unlike wall time, it does not count the time other tasks had the CPU.
    pub fn pps(&self) -> f64 {
        self.received as f64 / (self.run.kernel + self.softirqd).as_secs_f64()
    }

    pub fn wall_pps(&self) -> f64 {
        self.received as f64 / self.run.wall.as_secs_f64()
    }

    pub fn deferred(&self) -> f64 {
        self.softirqd.as_secs_f64() / (self.run.kernel + self.softirqd).as_secs_f64()
    }

    pub fn delivered(&self) -> f64 {
        self.received as f64 / self.sent as f64
    }
}

/// Runs part 3, prints its tables and returns its verdicts.
pub fn run(settings: Settings) -> anyhow::Result<Vec<Verdict>> {
    let mut topo = Topology::build()?;
    println!(
        "== 3. packets/s through the edge namespace (ue -> edge -> super over veth; \
         live-frame generator, XDP_DROP sink; {} interleaved rounds of ~{:.2} s per path) ==",
        settings.rounds, settings.seconds
    );
    println!(
        "frames {UE} -> {HIT} UDP, tenant uplink; {SMALL} tenant prefixes ({LARGE} in the \
         '100,000 prefixes' row). The edge forwards it IP in IP to super 0 (outer {EDGE_V4} -> {}, edge \
         <-> super MTU {UNDERLAY_MTU}). Mpps = frames counted at the sink / CPU time the kernel \
         spent (generator run as the kernel times it, softirq work included, + ksoftirqd); \
         wall-clock Mpps alongside, ksoftirqd = deferred share; medians over the rounds, ratios \
         taken within each round [interquartile range]. Linux paths: no XDP program in the edge \
         namespace, GRO on e-ue, ip_forward; the tunnel: the edge's route for the tenant prefix \
         into an ipip device, or through an lwt bpf encap (bench.bpf.c's hsn_bench_lwt_ipip) \
         pushing the same outer header, then routed again (the stand-in where the kernel has no \
         ipip). 'metering off' is bench.bpf.c's hsn_bench_fwd, 'plain redirect' its \
         hsn_bench_l2. Super side: the sink drops every frame on arrival, \
         so no decapsulation is in any figure; before the rounds hsn_super on s1-e took \
         {CHECK_COUNT} frames of each tunnelled path and size as the edge's tunnel packets and \
         decapsulated them all",
        super_edge_v4(0)
    );
    let (paths, missing) = topo.paths();
    let mut verdicts = Vec::new();
    for len in SIZES {
        let figures = measure_size(&mut topo, &paths, settings, len)?;
        verdicts.extend(report_size(&figures, &missing));
    }
    drop(topo);
    Ok(verdicts)
}

fn measure_size(
    topo: &mut Topology,
    paths: &[Path],
    settings: Settings,
    len: usize,
) -> anyhow::Result<Figures> {
    let frame = udp_frame(UE, HIT, len, UE_MAC, EDGE_IN_MAC);
    // Calibration (also a warm-up): size each path's runs to the wanted wall time.
    let mut counts = vec![0u32; Path::ALL.len()];
    for &path in paths {
        let sample = topo.measure(path, &frame, CALIBRATION_COUNT)?;
        let count = (sample.wall_pps() * settings.seconds).clamp(MIN_COUNT, MAX_COUNT);
        counts[path.index()] = count as u32;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); Path::ALL.len()];
    for _ in 0..settings.rounds {
        for &path in paths {
            if stopped() {
                anyhow::bail!("interrupted");
            }
            let i = path.index();
            samples[i].push(topo.measure(path, &frame, counts[i])?);
        }
    }
    Ok(Figures {
        len,
        counts,
        samples,
    })
}
