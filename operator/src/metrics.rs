//! One Prometheus registry for the operator, with a sub-registry per subsystem.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-controller metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `hsnnetwork` or `meccluster`.
    pub controller: &'static str,
}

/// Labels of reconcile errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `hsnnetwork` or `meccluster`.
    pub controller: &'static str,
    /// The error's short label, e.g. `member-apply`.
    pub category: &'static str,
}

/// Labels of requests to member clusters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberRequestLabels {
    /// MecCluster name.
    pub cluster: String,
    /// HTTP method: GET for reads; POST, PUT, PATCH, DELETE for writes.
    pub method: String,
}

/// Labels of per-cluster gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// MecCluster name.
    pub cluster: String,
}

/// Every metric the operator exports.
#[derive(Debug)]
pub struct Metrics {
    /// Reconciles started.
    pub reconciles: Family<ControllerLabels, Counter>,
    /// Reconciles that failed, by error category.
    pub errors: Family<ErrorLabels, Counter>,
    /// Reconcile durations.
    pub duration: Family<ControllerLabels, Histogram>,
    /// Requests sent to member clusters' API servers.
    pub member_requests: Family<MemberRequestLabels, Counter>,
    /// 1 when a member cluster is Ready.
    pub member_ready: Family<ClusterLabels, Gauge>,
    /// Time from detecting a lost cluster or super node to updated routes.
    pub failover: Histogram,
    /// Writes to the hub (statuses, HsnNodes, annotations), by controller.
    pub hub_writes: Family<ControllerLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            member_requests: Family::default(),
            member_ready: Family::default(),
            failover: Histogram::new(exponential_buckets(0.1, 2.0, 12)),
            hub_writes: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("hsn_operator");
        r.register("reconciles", "Reconciles started", m.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Reconciles that failed, by category",
            m.errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            m.duration.clone(),
        );
        r.register(
            "member_requests",
            "Requests sent to member clusters' API servers, by method",
            m.member_requests.clone(),
        );
        r.register(
            "member_ready",
            "1 when the member cluster is Ready",
            m.member_ready.clone(),
        );
        r.register(
            "failover_seconds",
            "Time from detecting a lost cluster or super node to updated routes",
            m.failover.clone(),
        );
        r.register(
            "hub_writes",
            "Writes to the hub cluster",
            m.hub_writes.clone(),
        );
        Arc::new(m)
    }

    /// Runs one reconcile of `controller` and records it: its duration and, when it fails,
    /// the error's `category`.
    pub async fn reconcile<T, E>(
        &self,
        controller: &'static str,
        category: fn(&E) -> &'static str,
        reconcile: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = reconcile.await;
        let error = result.as_ref().err().map(category);
        self.observe(controller, started.elapsed(), error);
        result
    }

    fn observe(&self, controller: &'static str, took: Duration, error: Option<&'static str>) {
        self.reconciles
            .get_or_create(&ControllerLabels { controller })
            .inc();
        self.duration
            .get_or_create(&ControllerLabels { controller })
            .observe(took.as_secs_f64());
        if let Some(category) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    controller,
                    category,
                })
                .inc();
        }
    }

    /// Counts one write to the hub by `controller`.
    pub fn hub_write(&self, controller: &'static str) {
        self.hub_writes
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    /// Writes (non-GET requests) sent to member `cluster` so far.
    pub fn member_writes(&self, cluster: &str) -> u64 {
        ["POST", "PUT", "PATCH", "DELETE"]
            .iter()
            .map(|method| {
                self.member_requests
                    .get_or_create(&MemberRequestLabels {
                        cluster: cluster.to_string(),
                        method: method.to_string(),
                    })
                    .get()
            })
            .sum()
    }
}
