//! Parts 1 and 2: nanoseconds per packet of the edge program through BPF_PROG_TEST_RUN with
//! a repeat count, as the kernel times them (average per run, no syscall in it), next to a
//! bare XDP_PASS program measured the same way in the same rounds; and, from the same rounds,
//! what the tunnel costs over the plain MAC-rewrite redirect it replaced.
//!
//! With a repeat count the kernel runs every repetition on the same buffer: a program that
//! encapsulates would see its own output from the second run on (the edge would time a
//! tunnel packet of an unknown peer). So every program is timed through `hsn_bench_timed`,
//! which restores the frame and tail-calls it: each figure includes that step, which the
//! differences cancel; the bare XDP_PASS row shows what it adds.

use std::time::{Duration, Instant};

use aya::programs::ProgramFd;
use hsn_ebpf::{EdgeConfig, EdgeDatapath, TenantPrefixes};

use crate::frames::{
    EDGE_IN_MAC, HIT, HIT_TENANT, MISS, SIZES, UE, UE_MAC, prefix_count, tenant_table, test_hop,
    udp_frame,
};
use crate::object::{BenchObject, FWD, L2, PASS, edge_program_fd};
use crate::report::{Spread, Verdict, median};
use crate::stopped;

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
/// The outer IPv4 header the tunnel adds.
const OUTER: usize = 20;

/// Part 1 target: a hit costs at most this much over XDP_PASS.
const HIT_OVER_PASS_NS: f64 = 40.0;
/// Part 2 target: 100,000 prefixes cost at most this much over 10.
const LARGE_OVER_SMALL_NS: f64 = 40.0;
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
    edge.set_next_hop(test_hop())?;
    Ok(edge)
}

/// The programs timed, in the order of [`Figures`]' rows after the bare XDP_PASS.
struct Programs {
    pass: ProgramFd,
    no_meter: ProgramFd,
    plain: ProgramFd,
    small: ProgramFd,
    large: ProgramFd,
}

/// What one measurement runs.
enum Subject<'a> {
    /// `hsn_bench_pass` run directly: what [`crate::object::TIMED`] adds to every row.
    BarePass,
    /// The edge run directly, on a frame it leaves as it is (a miss): the same addition?
    BareEdge(&'a EdgeDatapath),
    Timed(&'a ProgramFd),
}

struct Measurement<'a> {
    subject: Subject<'a>,
    frame: Vec<u8>,
    samples: Vec<f64>,
}

impl Measurement<'_> {
    fn run(&mut self, bench: &mut BenchObject, repeat: u32) -> anyhow::Result<()> {
        let took: Duration = match &self.subject {
            Subject::BarePass => bench.time(PASS, &self.frame, repeat)?,
            Subject::BareEdge(edge) => edge.time_packet(&self.frame, repeat)?,
            Subject::Timed(program) => bench.time_timed(program, &self.frame, repeat)?,
        };
        self.samples.push(took.as_nanos() as f64);
        Ok(())
    }
}

/// Checks that each subject does what its row says before timing it, through the same
/// restoring wrapper and with a repeat count: one change of the frame after 3 runs shows
/// each run started from the frame as given.
fn check_verdicts(
    bench: &mut BenchObject,
    programs: &Programs,
    edges: [&EdgeDatapath; 2],
    frames: &[(Vec<u8>, Vec<u8>)],
) -> anyhow::Result<()> {
    const RUNS: u32 = 3;
    for (hit, miss) in frames {
        let len = hit.len();
        let mut expect = |program: &ProgramFd, frame: &[u8], want: (u32, usize), what: &str| {
            let got = bench.run_timed(program, frame, RUNS)?;
            anyhow::ensure!(
                got == want,
                "{what}, {len} B: verdict and length {got:?} after {RUNS} runs, expected {want:?}"
            );
            Ok(())
        };
        expect(&programs.pass, hit, (XDP_PASS, len), PASS)?;
        expect(
            &programs.no_meter,
            hit,
            (XDP_REDIRECT, len + OUTER),
            "hsn_bench_fwd (encapsulate)",
        )?;
        expect(&programs.plain, hit, (XDP_REDIRECT, len), "hsn_bench_l2")?;
        for (edge, program) in edges.into_iter().zip([&programs.small, &programs.large]) {
            let before = hits(&edge.counters()?);
            expect(program, hit, (XDP_REDIRECT, len + OUTER), "edge hit")?;
            expect(program, miss, (XDP_PASS, len), "edge miss")?;
            let metered = hits(&edge.counters()?) - before;
            anyhow::ensure!(
                metered == u64::from(RUNS),
                "{RUNS} hits metered as {metered} packets of tenant {HIT_TENANT}"
            );
        }
    }
    Ok(())
}

fn hits(counters: &[hsn_ebpf::TenantCounter]) -> u64 {
    counters
        .iter()
        .filter(|c| c.tenant.get() == HIT_TENANT)
        .map(|c| c.packets)
        .sum()
}

/// Per-round ns per packet for one frame size.
struct Figures {
    len: usize,
    bare_pass: Vec<f64>,
    bare_miss: Vec<f64>,
    pass: Vec<f64>,
    no_meter: Vec<f64>,
    plain: Vec<f64>,
    hit: Vec<f64>,
    miss: Vec<f64>,
    hit_large: Vec<f64>,
    miss_large: Vec<f64>,
}

/// Runs parts 1 and 2, prints their tables and returns their verdicts.
pub fn run(settings: Settings) -> anyhow::Result<Vec<Verdict>> {
    let mut bench = BenchObject::load(0)?;
    bench.set_next_hop(&test_hop())?;
    let small_table = tenant_table(SMALL);
    let large_table = tenant_table(LARGE);
    let mut small = edge_with(&small_table)?;
    let started = Instant::now();
    let mut large = edge_with(&large_table)?;
    let load_large = started.elapsed();
    let programs = Programs {
        pass: bench.program_fd(PASS)?,
        no_meter: bench.program_fd(FWD)?,
        plain: bench.program_fd(L2)?,
        small: edge_program_fd(&mut small)?,
        large: edge_program_fd(&mut large)?,
    };

    let frames: Vec<(Vec<u8>, Vec<u8>)> = SIZES
        .iter()
        .map(|&len| {
            (
                udp_frame(UE, HIT, len, UE_MAC, EDGE_IN_MAC),
                udp_frame(UE, MISS, len, UE_MAC, EDGE_IN_MAC),
            )
        })
        .collect();
    check_verdicts(&mut bench, &programs, [&small, &large], &frames)?;

    // Per size, in `Figures` order.
    let mut rows: Vec<Vec<Measurement<'_>>> = frames
        .iter()
        .map(|(hit, miss)| {
            let m = |subject, frame: &Vec<u8>| Measurement {
                subject,
                frame: frame.clone(),
                samples: Vec::new(),
            };
            vec![
                m(Subject::BarePass, hit),
                m(Subject::BareEdge(&small), miss),
                m(Subject::Timed(&programs.pass), hit),
                m(Subject::Timed(&programs.no_meter), hit),
                m(Subject::Timed(&programs.plain), hit),
                m(Subject::Timed(&programs.small), hit),
                m(Subject::Timed(&programs.small), miss),
                m(Subject::Timed(&programs.large), hit),
                m(Subject::Timed(&programs.large), miss),
            ]
        })
        .collect();
    for _ in 0..settings.rounds {
        for m in rows.iter_mut().flatten() {
            if stopped() {
                anyhow::bail!("interrupted");
            }
            m.run(&mut bench, settings.repeat)?;
        }
    }
    let figures: Vec<Figures> = SIZES
        .iter()
        .zip(&rows)
        .map(|(&len, row)| {
            let [
                bare_pass,
                bare_miss,
                pass,
                no_meter,
                plain,
                hit,
                miss,
                hit_large,
                miss_large,
            ] = [0, 1, 2, 3, 4, 5, 6, 7, 8].map(|i| row[i].samples.clone());
            Figures {
                len,
                bare_pass,
                bare_miss,
                pass,
                no_meter,
                plain,
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
        "tenant table: {} IPv4 prefixes (hit: {UE} -> {HIT}, tenant {HIT_TENANT}, tunnelled: \
         IP in IP, redirected; miss: {UE} -> {MISS}, two lookups, passed)",
        prefix_count(&small_table)
    );
    let mut verdicts = report_part1(&figures);
    println!();
    report_tunnel_cost(&figures);
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
            format!("<= {HIT_OVER_PASS_NS:.0} ns"),
            ok,
        ));
    }
    let each = |f: fn(&Figures) -> f64| -> String {
        figures
            .iter()
            .map(|fig| format!("{:.0}", f(fig)))
            .collect::<Vec<_>>()
            .join("/")
    };
    println!(
        "('edge, no meter': hsn_bench_fwd, the edge's parse and forwarding (the encapsulating \
         redirect) without tenant lookup and counter; edge hit - it = what metering costs. Every \
         figure includes hsn_bench_timed, which restores the frame and tail-calls the program \
         (64/1500 B): XDP_PASS timed directly {} ns, through it {} (+{} ns); the edge miss, \
         which leaves the frame as it is, directly {} ns, through it {} (+{} ns). Columns are \
         medians over the rounds; differences are taken within each round, median and \
         interquartile range)",
        each(|f| median(&f.bare_pass)),
        each(|f| median(&f.pass)),
        each(|f| Spread::paired(&f.pass, &f.bare_pass, |t, b| t - b).median),
        each(|f| median(&f.bare_miss)),
        each(|f| median(&f.miss)),
        each(|f| Spread::paired(&f.miss, &f.bare_miss, |t, b| t - b).median),
    );
    verdicts
}

/// The encapsulating redirect against the plain one it replaced, both without metering.
fn report_tunnel_cost(figures: &[Figures]) {
    println!(
        "== 1b. the tunnel over a plain redirect, ns per packet (same rounds as 1; no metering \
         in either) =="
    );
    println!(
        "{:<6} {:>18} {:>18} {:>24} {:>22}",
        "frame",
        "plain (MAC rewrite)",
        "IP in IP (encap)",
        "encap - plain [IQR]",
        "encap / plain, over PASS"
    );
    for f in figures {
        let cost = Spread::paired(&f.no_meter, &f.plain, |encap, plain| encap - plain);
        let encap_work: Vec<f64> = f.no_meter.iter().zip(&f.pass).map(|(e, p)| e - p).collect();
        let plain_work: Vec<f64> = f.plain.iter().zip(&f.pass).map(|(e, p)| e - p).collect();
        let ratio = Spread::paired(&encap_work, &plain_work, |e, p| e / p);
        println!(
            "{:<6} {:>15.0} ns {:>15.0} ns {:>8.0} ns [{:.0}..{:.0}] {:>14.2}x [{:.2}..{:.2}]",
            format!("{} B", f.len),
            median(&f.plain),
            median(&f.no_meter),
            cost.median,
            cost.p25,
            cost.p75,
            ratio.median,
            ratio.p25,
            ratio.p75,
        );
    }
    println!(
        "(plain: bench.bpf.c's hsn_bench_l2, the edge's parse and its forwarding before the \
         tunnel: pop VLAN tags, rewrite the Ethernet header from the next hop, redirect; IP in \
         IP: hsn_bench_fwd, the same parse and hsn_edge_forward: fit check, MSS clamp, a 20-byte \
         outer IPv4 header with its checksum, redirect. 'over PASS': each program's time minus \
         XDP_PASS's in the same round)"
    );
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
                format!("<= +{LARGE_OVER_SMALL_NS:.0} ns"),
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
