//! The agent's Lease: renewed every heartbeat (and on every status change) with the
//! annotations the operator reads. The operator creates the Lease when it places the agent;
//! the agent only updates it (its Role grants no `create`), and waits, saying so, while it
//! does not exist.

use std::sync::Arc;
use std::time::Duration;

use hsn_api::node::lease;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::status::AgentStatus;
use hsn_core::Role;

/// Field manager of the agent's writes.
pub const FIELD_MANAGER: &str = "hsn-agent";

/// What names and identifies this agent's Lease.
#[derive(Clone, Debug)]
pub struct LeaseIdentity {
    /// `super-<ordinal>` or `edge-<node>`.
    pub name: String,
    /// Holder: this agent's pod name. The operator trusts the Lease only when it names the
    /// pod it placed for it.
    pub holder: String,
    /// The pod's UID, so that a pod replaced under the same name is told apart.
    pub pod_uid: String,
    /// Edge or super.
    pub role: Role,
    /// Public key, hex.
    pub public_key: String,
    /// Lease duration.
    pub duration_seconds: u32,
    /// `--advertise-address`: where this agent receives datapath traffic.
    pub address: Option<std::net::IpAddr>,
}

/// Why the Lease name could not be derived.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LeaseNameError {
    /// A super node's pod name has no StatefulSet ordinal suffix.
    #[error("pod name {0:?} has no StatefulSet ordinal (want hsn-super-node-<n>)")]
    NoOrdinal(String),
}

/// The StatefulSet ordinal at the end of a pod name (`hsn-super-node-3` → 3).
pub fn ordinal_of(pod: &str) -> Result<u32, LeaseNameError> {
    pod.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .ok_or_else(|| LeaseNameError::NoOrdinal(pod.to_owned()))
}

/// The update this agent makes to its Lease now, as a JSON merge patch: its annotations
/// (those it no longer sets removed, as are those of older agents nothing reads any more
/// ([`lease::RETIRED_KEYS`]); the operator's left alone) and the Lease spec. A merge patch
/// never creates: on a missing Lease it fails with 404.
pub fn patch(id: &LeaseIdentity, status: &AgentStatus, acquired: Timestamp) -> Value {
    let annotations = lease::Annotations {
        public_key: Some(id.public_key.clone()),
        role: Some(id.role),
        datapath: Some(status.datapath.clone()),
        address: id.address,
        last_epoch: status.last_epoch,
        routes_error: status.routes_error.clone(),
        pod_uid: Some(id.pod_uid.clone()),
        ledger: status.ledger.clone(),
    };
    let mut written: Map<String, Value> = lease::KEYS
        .iter()
        .chain(&lease::RETIRED_KEYS)
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    written.extend(annotations.to_map().into_iter().map(|(k, v)| (k, v.into())));
    json!({
        "metadata": {"annotations": written},
        "spec": {
            "holderIdentity": id.holder,
            "leaseDurationSeconds": i32::try_from(id.duration_seconds).unwrap_or(i32::MAX),
            "acquireTime": MicroTime(acquired),
            "renewTime": MicroTime(Timestamp::now()),
        },
    })
}

/// What one renewal found.
#[derive(Debug)]
pub enum Renewal {
    /// The Lease is renewed.
    Renewed,
    /// The Lease does not exist (yet): nothing was written.
    Missing,
}

/// Renews the Lease once.
pub async fn renew(
    api: &Api<Lease>,
    id: &LeaseIdentity,
    status: &AgentStatus,
    acquired: Timestamp,
) -> Result<Renewal, kube::Error> {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match api
        .patch(
            &id.name,
            &params,
            &Patch::Merge(patch(id, status, acquired)),
        )
        .await
    {
        Ok(_) => Ok(Renewal::Renewed),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Renewal::Missing),
        Err(e) => Err(e),
    }
}

/// What the renewal loop last reported, so each change is logged once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Renewing,
    Missing,
    Failing,
}

/// How soon a missing Lease is looked for again (at most a heartbeat).
const MISSING_RECHECK: Duration = Duration::from_secs(1);

/// Renews every `heartbeat` and whenever the status changes, until `status` closes. A
/// failing renewal is retried each heartbeat, a missing Lease every [`MISSING_RECHECK`];
/// neither stops the agent.
pub async fn run(
    api: Api<Lease>,
    id: LeaseIdentity,
    mut status: watch::Receiver<AgentStatus>,
    heartbeat: Duration,
    metrics: Arc<Metrics>,
) {
    let acquired = Timestamp::now();
    let mut state = State::Renewing;
    loop {
        let current = status.borrow_and_update().clone();
        let now = match renew(&api, &id, &current, acquired).await {
            Ok(Renewal::Renewed) => State::Renewing,
            Ok(Renewal::Missing) => State::Missing,
            Err(error) => {
                metrics.lease_errors.inc();
                if state != State::Failing {
                    tracing::warn!(%error, lease = id.name, "renewing the Lease failed; retrying each heartbeat");
                }
                State::Failing
            }
        };
        metrics.lease_missing.set(i64::from(now == State::Missing));
        if now != state {
            match now {
                State::Renewing => tracing::info!(lease = id.name, "Lease renewed"),
                State::Missing => tracing::warn!(
                    lease = id.name,
                    "Lease does not exist: the operator creates it for the agents it places, and \
                     this agent may only update it; waiting for it (checked every second)"
                ),
                State::Failing => {}
            }
            state = now;
        }
        // A missing Lease is looked for again sooner: the operator writes an agent's Lease
        // beside its pods, and a new agent is seen alive from its first renewal on.
        let wait = match state {
            State::Missing => heartbeat.min(MISSING_RECHECK),
            State::Renewing | State::Failing => heartbeat,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = status.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_ordinals_come_from_the_pod_name() {
        assert_eq!(ordinal_of("hsn-super-node-3"), Ok(3));
        assert_eq!(ordinal_of("hsn-super-node-12"), Ok(12));
        assert!(ordinal_of("hsn-super-node").is_err());
    }

    #[test]
    fn annotations_follow_the_status() {
        let id = LeaseIdentity {
            name: "edge-n1".into(),
            holder: "hsn-edge-bb-x1".into(),
            pod_uid: "u-1".into(),
            role: Role::Edge,
            public_key: "ab".into(),
            duration_seconds: 15,
            address: Some("10.1.0.7".parse().unwrap()),
        };
        let mut status = AgentStatus {
            routes_error: Some("bad".into()),
            datapath: "xdp-generic".into(),
            last_epoch: None,
            ledger: None,
        };
        let p = patch(&id, &status, Timestamp::now());
        let a = &p["metadata"]["annotations"];
        assert_eq!(a[lease::ROLE_ANNOTATION], "edge");
        assert_eq!(a[lease::DATAPATH_ANNOTATION], "xdp-generic");
        assert_eq!(a[lease::ROUTES_ERROR_ANNOTATION], "bad");
        assert_eq!(a[lease::POD_UID_ANNOTATION], "u-1");
        assert!(a[lease::LAST_EPOCH_ANNOTATION].is_null());
        assert_eq!(a[lease::ADDRESS_ANNOTATION], "10.1.0.7");
        // Every annotation is the agent's to set or remove, and those older agents wrote
        // that nothing reads any more are removed; no other key is touched.
        assert!(a["hsn.io/mac"].is_null());
        assert_eq!(
            a.as_object().unwrap().len(),
            lease::KEYS.len() + lease::RETIRED_KEYS.len()
        );
        assert_eq!(p["spec"]["holderIdentity"], "hsn-edge-bb-x1");
        assert_eq!(p["spec"]["leaseDurationSeconds"], 15);
        status.routes_error = None;
        status.last_epoch = Some(9);
        let p = patch(&id, &status, Timestamp::now());
        let a = &p["metadata"]["annotations"];
        assert!(a[lease::ROUTES_ERROR_ANNOTATION].is_null());
        assert_eq!(a[lease::LAST_EPOCH_ANNOTATION], "9");
        assert!(a[lease::LEDGER_ANNOTATION].is_null());
        status.ledger = Some(hsn_api::network::LedgerHead {
            height: 3,
            ..Default::default()
        });
        let p = patch(&id, &status, Timestamp::now());
        let written = p["metadata"]["annotations"][lease::LEDGER_ANNOTATION]
            .as_str()
            .unwrap();
        let read: hsn_api::network::LedgerHead = serde_json::from_str(written).unwrap();
        assert_eq!(Some(read), status.ledger);
    }
}
