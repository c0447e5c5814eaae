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

/// Labels of the network reconcile's stages.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// One of [`Metrics::STAGES`].
    pub stage: &'static str,
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

/// Labels of failed applies to a member.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApplyFailureLabels {
    /// MecCluster name.
    pub cluster: String,
    /// What failed, e.g. `write` or `conflict`.
    pub category: &'static str,
}

/// Labels of a network's condition gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NetworkConditionLabels {
    /// The HsnNetwork's namespace.
    pub namespace: String,
    /// The HsnNetwork's name.
    pub network: String,
    /// `Ready`, `Progressing` or `Degraded`.
    pub condition: String,
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
    /// Time spent in each stage of a network reconcile.
    pub stage_duration: Family<StageLabels, Histogram>,
    /// Requests sent to member clusters' API servers.
    pub member_requests: Family<MemberRequestLabels, Counter>,
    /// 1 when a member cluster is Ready.
    pub member_ready: Family<ClusterLabels, Gauge>,
    /// Time from detecting a lost cluster or super node to updated routes.
    pub failover: Histogram,
    /// Writes to the hub (statuses, HsnNodes, annotations), by controller.
    pub hub_writes: Family<ControllerLabels, Counter>,
    /// Members a network could not be brought to its plan in, by cluster and category.
    pub member_apply_failures: Family<ApplyFailureLabels, Counter>,
    /// 1 when a network's condition is True, per condition.
    pub network_condition: Family<NetworkConditionLabels, Gauge>,
    /// HsnNodes that claimed a network without being its own, removed.
    pub forged_nodes_removed: Counter,
    /// Member namespaces of networks gone from the hub, removed, by cluster.
    pub orphans_removed: Family<ClusterLabels, Counter>,
}

impl Metrics {
    /// The stages of a network reconcile: reading the hub and the members, the chain's keys
    /// and registry, then writing the members and the HsnNodes (these two at the same time),
    /// then the network status.
    pub const STAGES: [&'static str; 5] = ["fetch", "chain", "apply", "nodes", "status"];

    /// Records that a network reconcile spent `took` in `stage`.
    pub fn stage(&self, stage: &'static str, took: Duration) {
        debug_assert!(Self::STAGES.contains(&stage), "unknown stage {stage}");
        self.stage_duration
            .get_or_create(&StageLabels { stage })
            .observe(took.as_secs_f64());
    }

    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            stage_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            member_requests: Family::default(),
            member_ready: Family::default(),
            failover: Histogram::new(exponential_buckets(0.1, 2.0, 12)),
            hub_writes: Family::default(),
            member_apply_failures: Family::default(),
            network_condition: Family::default(),
            forged_nodes_removed: Counter::default(),
            orphans_removed: Family::default(),
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
            "network_reconcile_stage_duration_seconds",
            "Time a network reconcile spends in each stage (fetch, chain, apply, nodes, status)",
            m.stage_duration.clone(),
        );
        for stage in Self::STAGES {
            let _ = m.stage_duration.get_or_create(&StageLabels { stage });
        }
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
        r.register(
            "member_apply_failures",
            "Failed applies of a network to a member cluster, by cluster and category",
            m.member_apply_failures.clone(),
        );
        r.register(
            "network_condition",
            "1 when the HsnNetwork's condition (Ready, Progressing, Degraded) is True",
            m.network_condition.clone(),
        );
        r.register(
            "forged_hsnnodes_removed",
            "HsnNodes that claimed a network the operator did not create them for, removed",
            m.forged_nodes_removed.clone(),
        );
        r.register(
            "orphan_namespaces_removed",
            "Member namespaces of networks that no longer exist in the hub, removed",
            m.orphans_removed.clone(),
        );
        Arc::new(m)
    }

    /// Sets a network's condition gauges from its status conditions.
    pub fn network_conditions(
        &self,
        namespace: &str,
        network: &str,
        conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    ) {
        for c in conditions {
            self.network_condition
                .get_or_create(&NetworkConditionLabels {
                    namespace: namespace.to_owned(),
                    network: network.to_owned(),
                    condition: c.type_.clone(),
                })
                .set(i64::from(c.status == "True"));
        }
    }

    /// Drops a deleted network's condition gauges.
    pub fn forget_network(&self, namespace: &str, network: &str) {
        for condition in ["Ready", "Progressing", "Degraded"] {
            self.network_condition.remove(&NetworkConditionLabels {
                namespace: namespace.to_owned(),
                network: network.to_owned(),
                condition: condition.to_owned(),
            });
        }
    }

    /// Creates `controller`'s series at zero, with every error `category` it can report,
    /// so that an `increase(...) > 0` alert sees the first error.
    pub fn init_controller(&self, controller: &'static str, categories: &[&'static str]) {
        let labels = ControllerLabels { controller };
        let _ = self.reconciles.get_or_create(&labels);
        let _ = self.duration.get_or_create(&labels);
        let _ = self.hub_writes.get_or_create(&labels);
        for &category in categories {
            let _ = self.errors.get_or_create(&ErrorLabels {
                controller,
                category,
            });
        }
    }

    /// Creates member `cluster`'s series at zero, with every apply-failure `category`.
    pub fn init_member(&self, cluster: &str, categories: &[&'static str]) {
        for &category in categories {
            let _ = self
                .member_apply_failures
                .get_or_create(&ApplyFailureLabels {
                    cluster: cluster.to_owned(),
                    category,
                });
        }
        let _ = self.orphans_removed.get_or_create(&ClusterLabels {
            cluster: cluster.to_owned(),
        });
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let _ = self.member_requests.get_or_create(&MemberRequestLabels {
                cluster: cluster.to_owned(),
                method: method.to_owned(),
            });
        }
    }

    /// Counts one failed apply to member `cluster`.
    pub fn member_apply_failed(&self, cluster: &str, category: &'static str) {
        self.member_apply_failures
            .get_or_create(&ApplyFailureLabels {
                cluster: cluster.to_owned(),
                category,
            })
            .inc();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_promtool_clean_and_errors_start_at_zero() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.init_controller(
            crate::network::CONTROLLER,
            crate::network::Error::CATEGORIES,
        );
        metrics.init_controller(
            crate::meccluster::CONTROLLER,
            crate::meccluster::Error::CATEGORIES,
        );
        metrics.init_member("mec-a", crate::network::APPLY_FAILURE_CATEGORIES);
        metrics.failover.observe(1.5);
        let ready: k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition =
            serde_json::from_value(serde_json::json!({
                "type": "Degraded", "status": "True", "reason": "ApplyFailed", "message": "",
                "lastTransitionTime": "2026-12-03T00:00:00Z"
            }))
            .unwrap();
        metrics.network_conditions("edge-net", "metro", &[ready]);
        let text = hsn_runtime::admin::encode(&registry).unwrap();
        hsn_testkit::promtool::check_metrics(&text).unwrap();
        for series in [
            r#"hsn_operator_reconcile_errors_total{controller="hsnnetwork",category="hub-api"} 0"#,
            r#"hsn_operator_reconcile_errors_total{controller="meccluster",category="member-cleanup"} 0"#,
            r#"hsn_operator_member_apply_failures_total{cluster="mec-a",category="write"} 0"#,
            r#"hsn_operator_member_requests_total{cluster="mec-a",method="DELETE"} 0"#,
            r#"hsn_operator_network_condition{namespace="edge-net",network="metro",condition="Degraded"} 1"#,
            "hsn_operator_forged_hsnnodes_removed_total 0",
            r#"hsn_operator_orphan_namespaces_removed_total{cluster="mec-a"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
        metrics.forget_network("edge-net", "metro");
        let text = hsn_runtime::admin::encode(&registry).unwrap();
        assert!(!text.contains("network=\"metro\""), "{text}");
    }
}
