//! Medians, verdicts and the summary of targets printed at the end.

/// The median of `samples` (upper median for an even count); NaN when empty.
pub fn median(samples: &[f64]) -> f64 {
    Spread::of(samples).median
}

/// Median and quartiles of a set of per-round values: how much the rounds agreed.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
}

impl Spread {
    /// Nearest-rank quartiles; NaN when empty.
    pub fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            sorted.get(i).copied().unwrap_or(f64::NAN)
        };
        Self {
            p25: at(0.25),
            median: at(0.5),
            p75: at(0.75),
        }
    }

    /// `f(a[i], b[i])` for each round `i`: a comparison made within each round, so the
    /// machine's speed drifting between rounds cancels out.
    pub fn paired(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> Self {
        let per_round: Vec<f64> = a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
        Self::of(&per_round)
    }
}

/// One target, measured. The targets are issue "Performance"'s (the README's Performance
/// section lists them beside what a run printed).
#[derive(Debug)]
pub struct Verdict {
    /// What was compared, e.g. "edge hit - XDP_PASS, 64 B".
    pub what: String,
    /// The measured value, formatted with its unit.
    pub measured: String,
    /// The target, e.g. "<= 50 ns".
    pub target: String,
    pub met: bool,
}

impl Verdict {
    pub fn new(what: String, measured: String, target: String, met: bool) -> Self {
        Self {
            what,
            measured,
            target,
            met,
        }
    }

    pub fn label(&self) -> &'static str {
        if self.met { "MET" } else { "NOT MET" }
    }
}

pub fn print_summary(verdicts: &[Verdict]) {
    println!();
    println!("== targets ==");
    for v in verdicts {
        println!(
            "{:<52} {:>12}   target {:<8} {}",
            v.what,
            v.measured,
            v.target,
            v.label()
        );
    }
    let missed = verdicts.iter().filter(|v| !v.met).count();
    println!(
        "{} of {} targets met{}",
        verdicts.len() - missed,
        verdicts.len(),
        if missed == 0 {
            ""
        } else {
            " (a missed target is reported, not hidden)"
        }
    );
}
