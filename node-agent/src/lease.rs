//! The agent's Lease: created and renewed every heartbeat (and on every status change) by
//! server-side apply, carrying the annotations the operator reads.

use std::sync::Arc;
use std::time::Duration;

use hsn_api::node::lease;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
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
    /// Holder: the node name.
    pub holder: String,
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

/// The Lease as this agent writes it now.
pub fn desired(id: &LeaseIdentity, status: &AgentStatus, acquired: Timestamp) -> Lease {
    let annotations = lease::Annotations {
        public_key: Some(id.public_key.clone()),
        role: Some(id.role),
        datapath: Some(status.datapath.clone()),
        address: id.address,
        mac: status.mac.clone(),
        last_epoch: status.last_epoch,
        // Omitted when cleared: server-side apply then removes it, as this manager owned it.
        routes_error: status.routes_error.clone(),
    };
    Lease {
        metadata: ObjectMeta {
            name: Some(id.name.clone()),
            annotations: Some(annotations.to_map()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(id.holder.clone()),
            lease_duration_seconds: Some(i32::try_from(id.duration_seconds).unwrap_or(i32::MAX)),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..LeaseSpec::default()
        }),
    }
}

/// Applies the Lease once.
pub async fn renew(
    api: &Api<Lease>,
    id: &LeaseIdentity,
    status: &AgentStatus,
    acquired: Timestamp,
) -> Result<(), kube::Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(
        &id.name,
        &params,
        &Patch::Apply(desired(id, status, acquired)),
    )
    .await
    .map(drop)
}

/// Renews every `heartbeat` and whenever the status changes, until `status` closes.
pub async fn run(
    api: Api<Lease>,
    id: LeaseIdentity,
    mut status: watch::Receiver<AgentStatus>,
    heartbeat: Duration,
    metrics: Arc<Metrics>,
) {
    let acquired = Timestamp::now();
    let mut failing = false;
    loop {
        let current = status.borrow_and_update().clone();
        match renew(&api, &id, &current, acquired).await {
            Ok(()) if failing => {
                tracing::info!(lease = id.name, "Lease renewed again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) => {
                metrics.lease_errors.inc();
                if !failing {
                    tracing::warn!(%error, lease = id.name, "renewing the Lease failed; retrying each heartbeat");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(heartbeat) => {}
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
            holder: "n1".into(),
            role: Role::Edge,
            public_key: "ab".into(),
            duration_seconds: 15,
            address: Some("10.1.0.7".parse().unwrap()),
        };
        let mut status = AgentStatus {
            routes_error: Some("bad".into()),
            datapath: "xdp-generic".into(),
            last_epoch: None,
            mac: None,
        };
        let l = desired(&id, &status, Timestamp::now());
        let a = l.metadata.annotations.unwrap();
        assert_eq!(a[lease::ROLE_ANNOTATION], "edge");
        assert_eq!(a[lease::DATAPATH_ANNOTATION], "xdp-generic");
        assert_eq!(a[lease::ROUTES_ERROR_ANNOTATION], "bad");
        assert!(!a.contains_key(lease::LAST_EPOCH_ANNOTATION));
        assert_eq!(a[lease::ADDRESS_ANNOTATION], "10.1.0.7");
        assert!(!a.contains_key(lease::MAC_ANNOTATION));
        status.routes_error = None;
        status.last_epoch = Some(9);
        status.mac = Some("02:00:00:00:00:07".into());
        let a = desired(&id, &status, Timestamp::now())
            .metadata
            .annotations
            .unwrap();
        assert!(!a.contains_key(lease::ROUTES_ERROR_ANNOTATION));
        assert_eq!(a[lease::LAST_EPOCH_ANNOTATION], "9");
        assert_eq!(a[lease::MAC_ANNOTATION], "02:00:00:00:00:07");
    }
}
