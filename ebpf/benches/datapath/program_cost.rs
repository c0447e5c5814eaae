//! Parts 1 and 2: nanoseconds per packet of the edge program through BPF_PROG_TEST_RUN with
//! a repeat count, as the kernel times them (average per run, no syscall in it), next to a
//! bare XDP_PASS program measured the same way in the same rounds.

use std::time::{Duration, Instant};

use hsn_ebpf::{EdgeConfig, EdgeDatapath, NextHop, TenantPrefixes, XdpAction};

use crate::frames::{
    EDGE_IN_MAC, EDGE_OUT_MAC, HIT, HIT_TENANT, MISS, SIZES, SUPER_MAC, UE, UE_MAC, prefix_count,
    tenant_table, udp_frame,
};
use crate::object::{BenchObject, FWD, PASS};
use crate::report::{Spread, Verdict, median};
use crate::stopped;

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

/// Part 1 target: a hit costs at most this much over XDP_PASS.
const HIT_OVER_PASS_NS: f64 = 50.0;
/// Part 2 target: 100,000 prefixes cost at most this much over 10.
const LARGE_OVER_SMALL_NS: f64 = 60.0;
pub const SMALL: usize = 10;
pub const LARGE: usize = 100_000;

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Interleaved rounds; each figure is the median over them.
    pub rounds: usize,
    /// Runs per BPF_PROG_TEST_RUN call.
    pub repeat: u32,
}

/// An edge with `table` and a next hop out of `lo` (ifindex 1, in every namespace), which is
/// all bpf_redirect_map needs to return XDP_REDIRECT under BPF_PROG_TEST_RUN.
fn edge_with(table: &[TenantPrefixes]) -> anyhow::Result<EdgeDatapath> {
    let mut edge = EdgeDatapath::load(&EdgeConfig {
        pin: None,
        redirect_uplink: true,
    })?;
    edge.set_tenants(table)?;
    edge.set_next_hop(NextHop {
        ifindex: 1,
        dst_mac: SUPER_MAC,
        src_mac: EDGE_OUT_MAC,
    })?;
    Ok(edge)
}

/// What one measurement runs.
enum Subject<'a> {
    Bench(&'a BenchObject, &'static str),
    Edge(&'a EdgeDatapath),
}

struct Measurement<'a> {
    subject: Subject<'a>,
    frame: Vec<u8>,
    samples: Vec<f64>,
}

impl Measurement<'_> {
    fn run(&mut self, repeat: u32) -> anyhow::Result<()> {
        let took: Duration = match &self.subject {
            Subject::Bench(bench, name) => bench.time(name, &self.frame, repeat)?,
            Subject::Edge(edge) => edge.time_packet(&self.frame, repeat)?,
        };
        self.samples.push(took.as_nanos() as f64);
        Ok(())
    }
}

/// Checks that each subject does what its row says before timing it.
fn check_verdicts(
    bench: &BenchObject,
    small: &EdgeDatapath,
    large: &EdgeDatapath,
    frames: &[(Vec<u8>, Vec<u8>)],
) -> anyhow::Result<()> {
    for (hit, miss) in frames {
        anyhow::ensure!(bench.action(PASS, hit)? == XDP_PASS, "{PASS} did not pass");
        anyhow::ensure!(
            bench.action(FWD, hit)? == XDP_REDIRECT,
            "{FWD} did not redirect"
        );
        for edge in [small, large] {
            let before = edge.counters()?;
            anyhow::ensure!(
                edge.run_packet(hit)?.action == XdpAction::Redirect,
                "hit not redirected"
            );
            anyhow::ensure!(
                edge.run_packet(miss)?.action == XdpAction::Pass,
                "miss not passed"
            );
            let after = edge.counters()?;
            let hits = |c: &[hsn_ebpf::TenantCounter]| {
                c.iter()
                    .filter(|c| c.tenant.get() == HIT_TENANT)
                    .map(|c| c.packets)
                    .sum::<u64>()
            };
            anyhow::ensure!(
                hits(&after) == hits(&before) + 1,
                "hit not metered as tenant {HIT_TENANT}"
            );
        }
    }
    Ok(())
}

/// Per-round ns per packet for one frame size.
struct Figures {
    len: usize,
    pass: Vec<f64>,
    no_meter: Vec<f64>,
    hit: Vec<f64>,
    miss: Vec<f64>,
    hit_large: Vec<f64>,
    miss_large: Vec<f64>,
}

/// Runs parts 1 and 2, prints their tables and returns their verdicts.
pub fn run(settings: Settings) -> anyhow::Result<Vec<Verdict>> {
    let mut bench = BenchObject::load(0)?;
    bench.set_next_hop(1, SUPER_MAC, EDGE_OUT_MAC)?;
    let small_table = tenant_table(SMALL);
    let large_table = tenant_table(LARGE);
    let small = edge_with(&small_table)?;
    let started = Instant::now();
    let large = edge_with(&large_table)?;
    let load_large = started.elapsed();

    let frames: Vec<(Vec<u8>, Vec<u8>)> = SIZES
        .iter()
        .map(|&len| {
            (
                udp_frame(UE, HIT, len, UE_MAC, EDGE_IN_MAC),
                udp_frame(UE, MISS, len, UE_MAC, EDGE_IN_MAC),
            )
        })
        .collect();
    check_verdicts(&bench, &small, &large, &frames)?;

    // Per size, in `Figures` order: pass, no-meter forward, hit and miss with 10 prefixes,
    // hit and miss with 100k.
    let mut rows: Vec<Vec<Measurement<'_>>> = frames
        .iter()
        .map(|(hit, miss)| {
            let m = |subject, frame: &Vec<u8>| Measurement {
                subject,
                frame: frame.clone(),
                samples: Vec::new(),
            };
            vec![
                m(Subject::Bench(&bench, PASS), hit),
                m(Subject::Bench(&bench, FWD), hit),
                m(Subject::Edge(&small), hit),
                m(Subject::Edge(&small), miss),
                m(Subject::Edge(&large), hit),
                m(Subject::Edge(&large), miss),
            ]
        })
        .collect();
    for _ in 0..settings.rounds {
        for m in rows.iter_mut().flatten() {
            if stopped() {
                anyhow::bail!("interrupted");
            }
            m.run(settings.repeat)?;
        }
    }
    let figures: Vec<Figures> = SIZES
        .iter()
        .zip(&rows)
        .map(|(&len, row)| {
            let [pass, no_meter, hit, miss, hit_large, miss_large] =
                [0, 1, 2, 3, 4, 5].map(|i| row[i].samples.clone());
            Figures {
                len,
                pass,
                no_meter,
                hit,
                miss,
                hit_large,
                miss_large,
            }
        })
        .collect();

    println!(
        "== 1. ns per packet, BPF_PROG_TEST_RUN (kernel-timed average of {} runs; median of {} \
         rounds) ==",
        settings.repeat, settings.rounds
    );
    println!(
        "tenant table: {} IPv4 prefixes (hit: {UE} -> {HIT}, tenant {HIT_TENANT}, redirected; \
         miss: {UE} -> {MISS}, two lookups, passed)",
        prefix_count(&small_table)
    );
    let mut verdicts = report_part1(&figures);
    println!();
    println!(
        "== 2. {SMALL} vs {LARGE} tenant prefixes (same method; {} prefixes /20../28 over 1000 \
         tenants, loaded in {:.2} s) ==",
        prefix_count(&large_table),
        load_large.as_secs_f64()
    );
    verdicts.extend(report_part2(&figures));
    Ok(verdicts)
}

fn met(met: bool) -> &'static str {
    if met { "MET" } else { "NOT MET" }
}

fn report_part1(figures: &[Figures]) -> Vec<Verdict> {
    println!(
        "{:<6} {:>10} {:>16} {:>10} {:>10} {:>22}  target",
        "frame", "XDP_PASS", "edge, no meter", "edge hit", "edge miss", "hit - PASS [IQR]"
    );
    let mut verdicts = Vec::new();
    for f in figures {
        let over = Spread::paired(&f.hit, &f.pass, |hit, pass| hit - pass);
        let ok = over.median <= HIT_OVER_PASS_NS;
        println!(
            "{:<6} {:>7.0} ns {:>13.0} ns {:>7.0} ns {:>7.0} ns {:>6.0} ns [{:.0}..{:.0}]  <= {HIT_OVER_PASS_NS:.0} ns {}",
            format!("{} B", f.len),
            median(&f.pass),
            median(&f.no_meter),
            median(&f.hit),
            median(&f.miss),
            over.median,
            over.p25,
            over.p75,
            met(ok)
        );
        verdicts.push(Verdict::new(
            format!("1. edge hit over XDP_PASS, {} B", f.len),
            format!("{:.0} ns", over.median),
            "<= 50 ns",
            ok,
        ));
    }
    println!(
        "('edge, no meter': hsn_bench_fwd, the edge's parse and forwarding without tenant lookup \
         and counter; edge hit - it = what metering costs. Columns are medians over the rounds; \
         differences are taken within each round, median and interquartile range)"
    );
    verdicts
}

fn report_part2(figures: &[Figures]) -> Vec<Verdict> {
    println!(
        "{:<12} {:>14} {:>14} {:>20}  target",
        "case",
        format!("{SMALL} prefixes"),
        format!("{LARGE}"),
        "delta [IQR]"
    );
    let mut verdicts = Vec::new();
    for f in figures {
        for (case, small, large) in [
            ("hit", &f.hit, &f.hit_large),
            ("miss", &f.miss, &f.miss_large),
        ] {
            let delta = Spread::paired(large, small, |l, s| l - s);
            let ok = delta.median <= LARGE_OVER_SMALL_NS;
            println!(
                "{:<12} {:>11.0} ns {:>11.0} ns {:>6.0} ns [{:.0}..{:.0}]  <= +{LARGE_OVER_SMALL_NS:.0} ns {}",
                format!("{case}, {} B", f.len),
                median(small),
                median(large),
                delta.median,
                delta.p25,
                delta.p75,
                met(ok)
            );
            verdicts.push(Verdict::new(
                format!("2. {case} with {LARGE} vs {SMALL} prefixes, {} B", f.len),
                format!("{:+.0} ns", delta.median),
                "<= +60 ns",
                ok,
            ));
        }
    }
    println!(
        "(the same frame is repeated, so the entries it reads stay in cache: this is the \
         lookup's work, not the cache misses of many different destinations)"
    );
    verdicts
}
