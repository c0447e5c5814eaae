//! Part 3: packets per second through an edge namespace.
//!
//! ```text
//!  ns ue                 ns edge                              ns super
//!  [gen] ue0 ==veth== e-ue  -> edge XDP | Linux | no meter -> e-s1 ==veth== s1-e [sink]
//! ```
//!
//! The namespaces are hsn-testkit's chain (`topology`) with one super node; its service
//! namespace sees none of these frames.
//!
//! The generator is `hsn_bench_gen` run with BPF_F_TEST_XDP_LIVE_FRAMES in `ue`: the kernel
//! sends `count` copies of one frame out of `ue0`, as xdp-trafficgen does, at a rate no
//! userspace sender reaches; the "ceiling" row shows how far it is from capping any path. `hsn_bench_sink` on `s-in`
//! counts and drops what arrives. Only what happens in the edge namespace changes between
//! the paths; generator, frame, topology and sink are the same.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use hsn_ebpf::{EdgeConfig, EdgeDatapath, NextHop};
use hsn_testkit::netns::Netns;
use hsn_testkit::topology::{
    Chain, EDGE_UE_IF, UE_IF, edge_super_if, super_edge_if, super_edge_v4,
};

use crate::frames::{
    EDGE_IN_MAC, HIT, HIT_PREFIX, SIZES, SUPER_MAC, UE, UE_MAC, tenant_table, udp_frame,
};
use crate::object::{BenchObject, FWD, LiveRun, SINK};
use crate::program_cost::{LARGE, SMALL};
use crate::report::{Spread, Verdict, median};
use crate::stopped;

/// Part 3 targets: edge XDP vs Linux forwarding, metering on vs off.
const REDIRECT_OVER_LINUX: f64 = 3.0;
const METER_ON_OVER_OFF: f64 = 0.9;

/// Bounds on the frames one measurement sends, whatever the calibration says.
const MIN_COUNT: f64 = 50_000.0;
const MAX_COUNT: f64 = 50_000_000.0;
const CALIBRATION_COUNT: u32 = 200_000;
/// Fewer than this share of the frames reaching the sink means a broken set-up, not a
/// slow path: stop rather than print a ratio of nothing.
const MIN_DELIVERED: f64 = 0.5;

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
enum Path {
    /// The edge program: tenant lookup, metering, redirect to `e-s1`.
    Edge,
    /// No HSN and no XDP in the edge namespace: the kernel routes the frame (ip_forward)
    /// out of `e-s1`.
    Linux,
    /// `hsn_bench_fwd`: the edge program without tenant lookup and counter.
    NoMeter,
    /// The edge program with the 100,000-prefix table of part 2, where the hit's /16 holds
    /// several longer prefixes (probed) instead of one (compared): information, no target.
    EdgeLarge,
    /// Nothing: the sink drops frames as they arrive on `e-ue`. Not a path through the
    /// edge but the ceiling the generator and the first veth hop set for every path.
    Ceiling,
}

impl Path {
    const ALL: [Self; 5] = [
        Self::Edge,
        Self::Linux,
        Self::NoMeter,
        Self::EdgeLarge,
        Self::Ceiling,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Edge => "edge XDP redirect (metering on)",
            Self::Linux => "Linux forwarding (no HSN)",
            Self::NoMeter => "edge XDP redirect, metering off",
            Self::EdgeLarge => "edge XDP redirect, 100,000 prefixes",
            Self::Ceiling => "ceiling: dropped on arrival at e-ue",
        }
    }

    /// Position in [`Path::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

/// The three namespaces and what is loaded into them; dropping it deletes everything.
struct Topology {
    // Field order is drop order: programs detach before their namespaces go.
    edge: EdgeDatapath,
    edge_large: EdgeDatapath,
    bench: BenchObject,
    chain: Chain,
}

impl Topology {
    fn build() -> anyhow::Result<Self> {
        // Forwarding on, static neighbours: no ARP on the wire.
        let chain = Chain::builder().build()?;
        let (ue_ns, edge_ns, super_ns) = (&chain.ue, &chain.edge, &chain.supers[0]);
        let (e_out, s_in) = (edge_super_if(0), super_edge_if(0));
        // veth takes frames redirected into it only on an end with NAPI: one running XDP, or
        // with GRO on. GRO lets the Linux path run without any XDP program on e-ue.
        edge_ns.exec("ethtool", &["-K", EDGE_UE_IF, "gro", "on"])?;
        // Linux path: route the tenant prefix to the super node.
        let tenant_route = HIT_PREFIX.to_string();
        let super_addr = super_edge_v4(0);
        edge_ns.ip(&[
            "route",
            "add",
            &tenant_route,
            "via",
            &super_addr,
            "dev",
            &e_out,
        ])?;

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
        edge_ns.run(|| -> anyhow::Result<()> {
            let hop = NextHop::via(&e_out, SUPER_MAC)?;
            bench.set_next_hop(hop.ifindex, hop.dst_mac, hop.src_mac)?;
            edge.set_next_hop(hop)?;
            edge_large.set_next_hop(hop)?;
            Ok(())
        })??;
        super_ns.run(|| bench.attach(SINK, &s_in))??;
        Ok(Self {
            edge,
            edge_large,
            bench,
            chain,
        })
    }

    /// Puts `path` in place on `e-ue`.
    fn select(&mut self, path: Path) -> anyhow::Result<()> {
        let Self {
            edge,
            edge_large,
            bench,
            chain,
        } = self;
        chain.edge.run(|| -> anyhow::Result<()> {
            match path {
                Path::Edge => {
                    edge.attach(EDGE_UE_IF)
                        .context("attaching the edge to e-ue")?;
                }
                Path::Linux => {}
                Path::NoMeter => bench.attach(FWD, EDGE_UE_IF)?,
                Path::EdgeLarge => {
                    edge_large
                        .attach(EDGE_UE_IF)
                        .context("attaching the 100,000-prefix edge to e-ue")?;
                }
                Path::Ceiling => bench.attach(SINK, EDGE_UE_IF)?,
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
        }
        Ok(())
    }

    /// Sends `count` frames and waits for the sink to stop counting.
    fn measure(&mut self, path: Path, frame: &[u8], count: u32) -> anyhow::Result<Sample> {
        self.select(path)?;
        let result = self.send(frame, count);
        self.unselect(path)?;
        let sample = result?;
        if sample.delivered() < MIN_DELIVERED {
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
        let received = self.drained(before)?;
        Ok(Sample {
            sent: u64::from(count),
            received,
            run,
            softirqd: ksoftirqd_time()?.saturating_sub(softirqd_before),
        })
    }

    /// Frames counted since `before`, once the count has stopped moving (at most 200 ms:
    /// what is still queued after the generator returns is a few rings' worth).
    fn drained(&self, before: u64) -> anyhow::Result<u64> {
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut last = self.bench.sink_packets()?;
        loop {
            std::thread::sleep(Duration::from_millis(5));
            let now = self.bench.sink_packets()?;
            if now == last || Instant::now() >= deadline {
                return Ok(now - before);
            }
            last = now;
        }
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
struct Sample {
    sent: u64,
    received: u64,
    run: LiveRun,
    softirqd: Duration,
}

impl Sample {
    /// Frames at the sink per second of CPU the kernel spent on them: its timing of the
    /// generator run (which includes the softirq work done inline) plus ksoftirqd's.
    /// Unlike wall time, it does not count the time other tasks had the CPU.
    fn pps(&self) -> f64 {
        self.received as f64 / (self.run.kernel + self.softirqd).as_secs_f64()
    }

    fn wall_pps(&self) -> f64 {
        self.received as f64 / self.run.wall.as_secs_f64()
    }

    fn deferred(&self) -> f64 {
        self.softirqd.as_secs_f64() / (self.run.kernel + self.softirqd).as_secs_f64()
    }

    fn delivered(&self) -> f64 {
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
        "frames {UE} -> {HIT} UDP, tenant uplink; {SMALL} tenant prefixes (the last edge row: \
         {LARGE}). Mpps = frames counted \
         at the sink / CPU time the kernel spent (generator run as the kernel times it, softirq \
         work included, + ksoftirqd); wall-clock Mpps alongside, ksoftirqd = deferred share; medians over the rounds, ratios taken within each round [interquartile range]. \
         Linux forwarding: no XDP program in the edge namespace, GRO on e-ue, ip_forward; \
         'metering off' is bench.bpf.c's hsn_bench_fwd"
    );
    let mut verdicts = Vec::new();
    for len in SIZES {
        let figures = measure_size(&mut topo, settings, len)?;
        verdicts.extend(report_size(&figures));
    }
    drop(topo);
    Ok(verdicts)
}

/// Per-round samples for one frame size, indexed like [`Path::ALL`].
struct Figures {
    len: usize,
    counts: Vec<u32>,
    samples: Vec<Vec<Sample>>,
}

impl Figures {
    /// Median over the rounds of `f` for `path`.
    fn median(&self, path: Path, f: fn(&Sample) -> f64) -> f64 {
        median(&self.samples[path.index()].iter().map(f).collect::<Vec<_>>())
    }

    /// Per-round `f(a, b)` on the pps of two paths measured in the same round.
    fn paired(&self, a: Path, b: Path, f: impl Fn(f64, f64) -> f64) -> Spread {
        let pps =
            |p: Path| -> Vec<f64> { self.samples[p.index()].iter().map(Sample::pps).collect() };
        Spread::paired(&pps(a), &pps(b), f)
    }

    /// Per-frame time beyond what generator, first hop and sink cost on their own.
    fn over_ceiling_ns(&self, path: Path) -> Spread {
        self.paired(path, Path::Ceiling, |p, c| 1e9 / p - 1e9 / c)
    }
}

fn measure_size(topo: &mut Topology, settings: Settings, len: usize) -> anyhow::Result<Figures> {
    let frame = udp_frame(UE, HIT, len, UE_MAC, EDGE_IN_MAC);
    // Calibration (also a warm-up): size each path's runs to the wanted wall time.
    let mut counts = Vec::new();
    for path in Path::ALL {
        let sample = topo.measure(path, &frame, CALIBRATION_COUNT)?;
        let count = (sample.wall_pps() * settings.seconds).clamp(MIN_COUNT, MAX_COUNT);
        counts.push(count as u32);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); Path::ALL.len()];
    for _ in 0..settings.rounds {
        for path in Path::ALL {
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

fn report_size(f: &Figures) -> Vec<Verdict> {
    println!(
        "{} B frames:{:>34} {:>9} {:>13} {:>10} {:>10} {:>10}",
        f.len, "Mpps", "ns/frame", "over ceiling", "wall Mpps", "ksoftirqd", "delivered"
    );
    for path in Path::ALL {
        let pps = f.median(path, Sample::pps);
        let over = match path {
            Path::Ceiling => String::new(),
            _ => format!("{:.0} ns", f.over_ceiling_ns(path).median),
        };
        println!(
            "  {:<36} {:>7.3} {:>9.0} {:>13} {:>10.3} {:>9.1}% {:>9.1}%  ({} frames/run)",
            path.label(),
            pps / 1e6,
            1e9 / pps,
            over,
            f.median(path, Sample::wall_pps) / 1e6,
            f.median(path, Sample::deferred) * 100.0,
            f.median(path, Sample::delivered) * 100.0,
            f.counts[path.index()],
        );
    }
    let redirect = f.paired(Path::Edge, Path::Linux, |e, l| e / l);
    let meter = f.paired(Path::Edge, Path::NoMeter, |on, off| on / off);
    let met_redirect = redirect.median >= REDIRECT_OVER_LINUX;
    let met_meter = meter.median >= METER_ON_OVER_OFF;
    let label = |met| if met { "MET" } else { "NOT MET" };
    println!(
        "  edge redirect / Linux forwarding     {:>6.2}x [{:.2}..{:.2}]   target >= {REDIRECT_OVER_LINUX:.1}x  {}",
        redirect.median,
        redirect.p25,
        redirect.p75,
        label(met_redirect)
    );
    println!(
        "  metering on / off                    {:>6.2}  [{:.2}..{:.2}]   target >= {METER_ON_OVER_OFF:.2}  {}",
        meter.median,
        meter.p25,
        meter.p75,
        label(met_meter)
    );
    let work = |a: Path, b: Path| {
        let (a, b) = (f.over_ceiling_ns(a).median, f.over_ceiling_ns(b).median);
        a / b
    };
    let large = f.paired(Path::EdgeLarge, Path::NoMeter, |on, off| on / off);
    println!(
        "  (information, not a target: on the edge namespace's own work, 'over ceiling', \
         Linux / edge is {:.2}x and no meter / meter {:.2}; with {LARGE} prefixes, where the \
         hit's /16 holds several longer prefixes, metering on / off is {:.2} [{:.2}..{:.2}])",
        work(Path::Linux, Path::Edge),
        work(Path::NoMeter, Path::Edge),
        large.median,
        large.p25,
        large.p75,
    );
    vec![
        Verdict::new(
            format!("3. edge redirect / Linux forwarding, {} B", f.len),
            format!("{:.2}x", redirect.median),
            ">= 3x",
            met_redirect,
        ),
        Verdict::new(
            format!("3. metering on / off, {} B", f.len),
            format!("{:.2}", meter.median),
            ">= 0.9",
            met_meter,
        ),
    ]
}
