//! Part 3's table, ratios and verdicts for one frame size.

use crate::forwarding::{Path, Sample};
use crate::program_cost::LARGE;
use crate::report::{Spread, Verdict, median};

/// Part 3 targets: edge XDP vs Linux forwarding, metering on vs off.
const REDIRECT_OVER_LINUX: f64 = 3.5;
/// Also with the 100,000-prefix table, where the hit's /16 holds several longer prefixes.
const METER_ON_OVER_OFF: f64 = 0.95;

/// Per-round samples for one frame size, indexed like [`Path::ALL`] (empty: not measured).
pub struct Figures {
    pub len: usize,
    pub counts: Vec<u32>,
    pub samples: Vec<Vec<Sample>>,
}

impl Figures {
    fn measured(&self, path: Path) -> bool {
        !self.samples[path.index()].is_empty()
    }

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

    /// Median over the rounds of `a`'s time over the ceiling minus `b`'s.
    fn extra_ns(&self, a: Path, b: Path) -> Spread {
        let over = |p: Path| -> Vec<f64> {
            let ceiling = &self.samples[Path::Ceiling.index()];
            self.samples[p.index()]
                .iter()
                .zip(ceiling)
                .map(|(s, c)| 1e9 / s.pps() - 1e9 / c.pps())
                .collect()
        };
        Spread::paired(&over(a), &over(b), |x, y| x - y)
    }
}

fn label(met: bool) -> &'static str {
    if met { "MET" } else { "NOT MET" }
}

pub fn report_size(f: &Figures, missing: &[(Path, String)]) -> Vec<Verdict> {
    println!(
        "{} B frames:{:>42} {:>9} {:>13} {:>10} {:>10} {:>10}",
        f.len, "Mpps", "ns/frame", "over ceiling", "wall Mpps", "ksoftirqd", "delivered"
    );
    for path in Path::ALL {
        if !f.measured(path) {
            let why = missing
                .iter()
                .find(|(p, _)| *p == path)
                .map_or("", |(_, why)| why.as_str());
            println!("  {:<44} not measured: {why}", path.label());
            continue;
        }
        let pps = f.median(path, Sample::pps);
        let over = match path {
            Path::Ceiling => String::new(),
            _ => format!("{:.0} ns", f.over_ceiling_ns(path).median),
        };
        println!(
            "  {:<44} {:>7.3} {:>9.0} {:>13} {:>10.3} {:>9.1}% {:>9.1}%  ({} frames/run)",
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
    line(
        "edge IP-in-IP redirect / Linux plain forwarding",
        &spread(redirect, "x"),
        &format!(
            "target >= {REDIRECT_OVER_LINUX:.1}x  {}",
            label(met_redirect)
        ),
    );
    line(
        "metering on / off (both IP in IP)",
        &spread(meter, ""),
        &format!("target >= {METER_ON_OVER_OFF:.2}  {}", label(met_meter)),
    );
    report_tunnels(f);
    let work = |a: Path, b: Path| {
        let (a, b) = (f.over_ceiling_ns(a).median, f.over_ceiling_ns(b).median);
        a / b
    };
    let large = f.paired(Path::EdgeLarge, Path::NoMeter, |on, off| on / off);
    let met_large = large.median >= METER_ON_OVER_OFF;
    line(
        &format!("metering on / off, {LARGE} prefixes"),
        &spread(large, ""),
        &format!("target >= {METER_ON_OVER_OFF:.2}  {}", label(met_large)),
    );
    println!(
        "  (information, not a target: on the edge namespace's own work, 'over ceiling', \
         Linux plain / edge is {:.2}x and no meter / meter {:.2})",
        work(Path::Linux, Path::Edge),
        work(Path::NoMeter, Path::Edge),
    );
    vec![
        Verdict::new(
            format!("3. edge IP-in-IP redirect / Linux forwarding, {} B", f.len),
            format!("{:.2}x", redirect.median),
            format!(">= {REDIRECT_OVER_LINUX:.1}x"),
            met_redirect,
        ),
        Verdict::new(
            format!("3. metering on / off, {} B", f.len),
            format!("{:.2}", meter.median),
            format!(">= {METER_ON_OVER_OFF:.2}"),
            met_meter,
        ),
        Verdict::new(
            format!("3. metering on / off, {LARGE} prefixes, {} B", f.len),
            format!("{:.2}", large.median),
            format!(">= {METER_ON_OVER_OFF:.2}"),
            met_large,
        ),
    ]
}

/// One ratio line: what, value, what follows.
fn line(what: &str, value: &str, tail: &str) {
    println!("  {what:<50} {value:<22} {tail}");
}

/// `median<unit> [p25..p75]`.
fn spread(s: Spread, unit: &str) -> String {
    format!("{:.2}{unit} [{:.2}..{:.2}]", s.median, s.p25, s.p75)
}

/// The tunnel's lines: what IP in IP costs the XDP path over its plain redirect, and the
/// edge's tunnel against the kernel's. Information: no targets.
fn report_tunnels(f: &Figures) {
    let tunnel = f.paired(Path::NoMeter, Path::Plain, |encap, plain| encap / plain);
    let extra = f.extra_ns(Path::NoMeter, Path::Plain);
    line(
        "tunnel cost: IP-in-IP / plain XDP redirect",
        &spread(tunnel, ""),
        &format!(
            "{:+.0} ns per frame [{:.0}..{:.0}] (neither meters)",
            extra.median, extra.p25, extra.p75
        ),
    );
    for (kernel, what) in [
        (
            Path::LinuxIpip,
            "edge IP-in-IP redirect / Linux ipip device",
        ),
        (
            Path::LinuxLwt,
            "edge IP-in-IP redirect / Linux lwt IP-in-IP route",
        ),
    ] {
        if !f.measured(kernel) {
            line(what, "not measured", "(see its row)");
            continue;
        }
        let ratio = f.paired(Path::Edge, kernel, |e, k| e / k);
        let own = f.paired(kernel, Path::Linux, |k, l| k / l);
        line(
            what,
            &spread(ratio, "x"),
            &format!(
                "(Linux tunnel / Linux plain: {}; on the edge namespace's own work, 'over \
                 ceiling', Linux tunnel / edge is {:.2}x)",
                spread(own, ""),
                f.over_ceiling_ns(kernel).median / f.over_ceiling_ns(Path::Edge).median,
            ),
        );
    }
}
