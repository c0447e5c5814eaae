//! One Prometheus registry for the agent (`hsn_agent_*`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of metered traffic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficLabels {
    /// Tenant name (the id when the routes table does not name it).
    pub tenant: String,
    /// `uplink` or `downlink`.
    pub direction: String,
    /// Super nodes: the sending edge's address; empty on an edge.
    pub edge: String,
}

/// Labels naming an error category.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The error's short label.
    pub reason: &'static str,
}

/// Labels of the attach gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttachLabels {
    /// Interface name.
    pub interface: String,
    /// `xdp-native` or `xdp-generic`.
    pub mode: String,
}

/// The reason labels each error family can take ([`Metrics::init`]).
#[derive(Clone, Debug, Default)]
pub struct KnownReasons {
    /// Of `routes_errors`.
    pub routes: Vec<&'static str>,
    /// Of `map_update_errors`.
    pub map_update: Vec<&'static str>,
    /// Of `epoch_errors`.
    pub epoch: Vec<&'static str>,
    /// Of `ledger_submit_errors`.
    pub ledger_submit: Vec<&'static str>,
}

/// Every metric the agent exports.
#[derive(Debug)]
pub struct Metrics {
    /// IP bytes committed to the spool.
    pub bytes: Family<TrafficLabels, Counter>,
    /// Packets committed to the spool.
    pub packets: Family<TrafficLabels, Counter>,
    /// Time to program the maps for one desired state.
    pub map_update: Histogram,
    /// Map programming failures, by hsn-ebpf error label.
    pub map_update_errors: Family<ReasonLabels, Counter>,
    /// 1 per interface the program is attached to.
    pub attached: Family<AttachLabels, Gauge>,
    /// Frames the datapath could not parse (the kernel's counter, followed per epoch).
    pub parse_errors: Counter,
    /// The kernel counter's value at the last sample.
    parse_errors_seen: AtomicU64,
    /// Routes tables refused, by reason.
    pub routes_errors: Family<ReasonLabels, Counter>,
    /// Epochs closed into the spool.
    pub epochs: Counter,
    /// Epoch closes that failed (read or persist), by reason.
    pub epoch_errors: Family<ReasonLabels, Counter>,
    /// Lease renewals that failed.
    pub lease_errors: Counter,
    /// 1 while the agent's Lease does not exist (the operator creates it); 0 once renewed.
    pub lease_missing: Gauge,
    /// Records (edge) or observations (super) the ledger acknowledged, duplicates included.
    pub ledger_shipped: Counter,
    /// Of those, identical re-submissions the ledger already had.
    pub ledger_duplicates: Counter,
    /// Spool files acknowledged and renamed to `.sent`.
    pub ledger_files_sent: Counter,
    /// Failed ledger submissions (per file or per round), by reason.
    pub ledger_submit_errors: Family<ReasonLabels, Counter>,
    /// Spool files not yet acknowledged by the ledger.
    pub ledger_backlog: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them under `hsn_agent` in `registry`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Self {
            bytes: Family::default(),
            packets: Family::default(),
            map_update: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            map_update_errors: Family::default(),
            attached: Family::default(),
            parse_errors: Counter::default(),
            parse_errors_seen: AtomicU64::new(0),
            routes_errors: Family::default(),
            epochs: Counter::default(),
            epoch_errors: Family::default(),
            lease_errors: Counter::default(),
            lease_missing: Gauge::default(),
            ledger_shipped: Counter::default(),
            ledger_duplicates: Counter::default(),
            ledger_files_sent: Counter::default(),
            ledger_submit_errors: Family::default(),
            ledger_backlog: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("hsn_agent");
        r.register(
            "tenant_bytes",
            "IP bytes metered into the spool",
            m.bytes.clone(),
        );
        r.register(
            "tenant_packets",
            "Packets metered into the spool",
            m.packets.clone(),
        );
        r.register(
            "map_update_seconds",
            "Time to program the BPF maps for one routes change",
            m.map_update.clone(),
        );
        r.register(
            "map_update_errors",
            "Failed BPF map updates, by reason",
            m.map_update_errors.clone(),
        );
        r.register(
            "attached",
            "1 per interface the XDP program is attached to",
            m.attached.clone(),
        );
        r.register(
            "datapath_parse_errors",
            "Frames the datapath could not parse (kernel counter)",
            m.parse_errors.clone(),
        );
        r.register(
            "routes_errors",
            "Routes tables refused, by reason",
            m.routes_errors.clone(),
        );
        r.register("epochs", "Epochs closed into the spool", m.epochs.clone());
        r.register(
            "epoch_errors",
            "Epoch closes that failed, by reason",
            m.epoch_errors.clone(),
        );
        r.register(
            "lease_errors",
            "Failed Lease renewals",
            m.lease_errors.clone(),
        );
        r.register(
            "lease_missing",
            "1 while the agent's Lease does not exist yet (the operator creates it)",
            m.lease_missing.clone(),
        );
        r.register(
            "ledger_records_shipped",
            "Records or observations acknowledged by the ledger (duplicates included)",
            m.ledger_shipped.clone(),
        );
        r.register(
            "ledger_duplicates",
            "Re-submissions the ledger already had, identical",
            m.ledger_duplicates.clone(),
        );
        r.register(
            "ledger_files_sent",
            "Spool files acknowledged by the ledger",
            m.ledger_files_sent.clone(),
        );
        r.register(
            "ledger_submit_errors",
            "Failed ledger submissions, by reason",
            m.ledger_submit_errors.clone(),
        );
        r.register(
            "ledger_backlog_files",
            "Spool files not yet acknowledged by the ledger",
            m.ledger_backlog.clone(),
        );
        Arc::new(m)
    }

    /// Creates every known reason's series at zero, so that an `increase(...) > 0` alert
    /// sees the first error.
    pub fn init(&self, known: &KnownReasons) {
        for (family, reasons) in [
            (&self.routes_errors, &known.routes),
            (&self.map_update_errors, &known.map_update),
            (&self.epoch_errors, &known.epoch),
            (&self.ledger_submit_errors, &known.ledger_submit),
        ] {
            for &reason in reasons {
                let _ = family.get_or_create(&ReasonLabels { reason });
            }
        }
    }

    /// Follows the kernel's parse-error counter: adds what it gained since the last sample
    /// (all of it when it went back, i.e. the program was reloaded with fresh maps).
    pub fn parse_errors_sampled(&self, kernel: u64) {
        let before = self.parse_errors_seen.swap(kernel, Ordering::Relaxed);
        let gained = if kernel >= before {
            kernel - before
        } else {
            kernel
        };
        self.parse_errors.inc_by(gained);
    }

    /// Counts one refused routes table.
    pub fn routes_error(&self, reason: &'static str) {
        self.routes_errors
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Refused routes tables so far, over `reasons` (`IndexError::LABELS`).
    pub fn routes_errors_total(&self, reasons: &[&'static str]) -> u64 {
        reasons
            .iter()
            .map(|&reason| {
                self.routes_errors
                    .get_or_create(&ReasonLabels { reason })
                    .get()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_series_are_exposed_with_their_labels() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.routes_error("malformed");
        metrics.init(&KnownReasons {
            routes: vec!["malformed", "version"],
            ledger_submit: vec!["timeout"],
            ..Default::default()
        });
        metrics.parse_errors_sampled(5);
        metrics.parse_errors_sampled(7);
        metrics.parse_errors_sampled(2); // reloaded: a fresh kernel counter
        let body = hsn_runtime::admin::encode(&registry).unwrap();
        hsn_testkit::promtool::check_metrics(&body).unwrap();
        for series in [
            "hsn_agent_routes_errors_total{reason=\"malformed\"} 1",
            "hsn_agent_routes_errors_total{reason=\"version\"} 0",
            "hsn_agent_ledger_submit_errors_total{reason=\"timeout\"} 0",
            "hsn_agent_datapath_parse_errors_total 9",
            "# TYPE hsn_agent_datapath_parse_errors_total counter",
        ] {
            assert!(body.contains(series), "{series} missing from\n{body}");
        }
        assert!(body.contains("hsn_agent_map_update_seconds"), "{body}");
    }
}
