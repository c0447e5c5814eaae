//! The failover clock: from detecting a lost cluster or super node to routes updated in
//! every reachable member.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Mutex;

use hsn_api::HsnNetwork;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::apply::MemberOutcome;
use super::fetch::Fetched;
use crate::metrics::Metrics;
use crate::plan::{Plan, Previous};

/// Detection times already observed, per network UID, so each failover counts once.
#[derive(Debug, Default)]
pub struct Failovers {
    observed: Mutex<HashMap<String, Timestamp>>,
}

impl Failovers {
    /// Observes a failover when super nodes of the previous plan are gone from this one
    /// and every reachable member took the new routes.
    pub fn observe(
        &self,
        network: &HsnNetwork,
        previous: &Previous,
        plan: &Plan,
        fetched: &Fetched,
        outcomes: &BTreeMap<String, MemberOutcome>,
        metrics: &Metrics,
    ) {
        let detected = previous
            .supers
            .iter()
            .filter(|s| !plan.live_supers.contains(s))
            .filter_map(|s| {
                let member = fetched
                    .members
                    .iter()
                    .find(|(_, m)| m.view.name == s.cluster);
                member
                    .and_then(|(_, m)| m.not_ready_since)
                    .or_else(|| fetched.lease_expiry(s))
            })
            .min();
        let Some(detected) = detected else { return };
        if outcomes
            .values()
            .any(|o| matches!(o, MemberOutcome::Failed(_)))
        {
            return;
        }
        let uid = network.uid().unwrap_or_default();
        let mut observed = self.observed.lock().expect("failover lock");
        if observed.get(&uid) == Some(&detected) {
            return;
        }
        let seconds = Timestamp::now()
            .duration_since(detected)
            .as_secs_f64()
            .max(0.0);
        metrics.failover.observe(seconds);
        tracing::info!(network = %network.name_any(), seconds, "failover: routes updated");
        observed.insert(uid, detected);
    }
}
