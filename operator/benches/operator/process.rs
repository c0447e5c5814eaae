//! The operator process under test and what its /metrics say.

use super::*;

/// Starts the release operator with default probes and a short resync; its log filter is
/// `HSN_BENCH_RUST_LOG` when set (`info,hsn_operator=debug` shows each write, and with
/// `HSN_E2E_LOG_DIR` the log outlives the run).
pub(crate) async fn start_operator(hub: &ControlPlane, dir: &Path) -> Result<Operator> {
    let resync = RESYNC_SECONDS.to_string();
    let filter = std::env::var("HSN_BENCH_RUST_LOG")
        .unwrap_or_else(|_| "info,kube_client::client::builder=off".into());
    let env = [("RUST_LOG", filter.as_str())];
    Operator::spawn(hub.kubeconfig(), dir, &["--resync-seconds", &resync], &env).await
}

/// One scrape of the operator's /metrics.
pub(crate) async fn scrape(op: &Operator) -> Result<Scrape> {
    Ok(Scrape(op.get("/metrics").await?))
}

/// The operator's memory in MiB: (VmRSS, VmHWM, RssFile: the part that is its mapped
/// executable and libraries rather than its heap).
pub(crate) fn rss_mib(op: &Operator) -> Result<(f64, f64, f64)> {
    let pid = op.pid().context("operator exited")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Ok((
        kib("VmRSS:").context("VmRSS")? / 1024.0,
        kib("VmHWM:").context("VmHWM")? / 1024.0,
        kib("RssFile:").context("RssFile")? / 1024.0,
    ))
}

/// One scrape of /metrics.
pub(crate) struct Scrape(pub(crate) String);

/// A cumulative histogram: (upper bound, count) per bucket, then sum and count.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    pub(crate) buckets: Vec<(f64, f64)>,
    pub(crate) sum: f64,
    pub(crate) count: f64,
}

impl Histogram {
    pub(crate) fn since(&self, before: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|(le, n)| {
                let was = before
                    .buckets
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or(0.0, |b| b.1);
                (*le, n - was)
            })
            .collect();
        Histogram {
            buckets,
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    /// Upper bound of the bucket holding quantile `q`.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let rank = q * self.count;
        self.buckets.iter().find(|(_, n)| *n >= rank).map(|b| b.0)
    }

    pub(crate) fn mean(&self) -> f64 {
        self.sum / self.count.max(1.0)
    }
}

impl Scrape {
    pub(crate) fn sum(&self, keep: impl Fn(&str) -> bool) -> f64 {
        self.0
            .lines()
            .filter(|l| keep(l))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub(crate) fn member_writes(&self) -> f64 {
        self.sum(|l| {
            l.starts_with("hsn_operator_member_requests_total{") && !l.contains("method=\"GET\"")
        })
    }

    pub(crate) fn member_reads(&self) -> f64 {
        self.sum(|l| {
            l.starts_with("hsn_operator_member_requests_total{") && l.contains("method=\"GET\"")
        })
    }

    pub(crate) fn hub_writes(&self) -> f64 {
        self.sum(|l| l.starts_with("hsn_operator_hub_writes_total{controller=\"hsnnetwork\"}"))
    }

    pub(crate) fn reconciles(&self) -> f64 {
        self.sum(|l| l.starts_with("hsn_operator_reconciles_total{controller=\"hsnnetwork\"}"))
    }

    pub(crate) fn histogram(&self, name: &str, selector: &str) -> Histogram {
        let mut h = Histogram::default();
        for line in self.0.lines().filter(|l| l.contains(selector)) {
            let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            if line.starts_with(&format!("{name}_bucket{{")) {
                let le = line
                    .split("le=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .and_then(|v| v.parse::<f64>().ok());
                if let Some(le) = le {
                    h.buckets.push((le, value));
                }
            } else if line.starts_with(&format!("{name}_sum")) {
                h.sum = value;
            } else if line.starts_with(&format!("{name}_count")) {
                h.count = value;
            }
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        h
    }

    pub(crate) fn reconcile_durations(&self) -> Histogram {
        self.histogram(
            "hsn_operator_reconcile_duration_seconds",
            "controller=\"hsnnetwork\"",
        )
    }

    /// Time the network reconciles spent in `stage` (see the operator's `Metrics::STAGES`).
    pub(crate) fn stage(&self, stage: &str) -> Histogram {
        self.histogram(
            "hsn_operator_network_reconcile_stage_duration_seconds",
            &format!("stage=\"{stage}\""),
        )
    }

    pub(crate) fn failovers(&self) -> Histogram {
        self.histogram("hsn_operator_failover_seconds", "")
    }
}
