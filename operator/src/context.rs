//! What every controller shares: clients, the member inventory, metrics, Events, settings.

use std::sync::Arc;
use std::time::Duration;

use hsn_api::MecCluster;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;

use crate::member::{Inventory, MemberClients};
use crate::metrics::Metrics;

/// Timing and placement settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often each member cluster is probed.
    pub probe_interval: Duration,
    /// How long a member may fail its probes before it turns NotReady.
    pub cluster_grace: Duration,
    /// Timeout of one request to a member cluster.
    pub member_timeout: Duration,
    /// How often a network is reconciled when nothing changes (Lease expiry, drift).
    pub resync: Duration,
}

/// Shared state of the controllers.
#[derive(Clone)]
pub struct Context {
    /// Client of the hub cluster.
    pub hub: Client,
    /// Clients of the member clusters.
    pub members: MemberClients,
    /// Members as last probed.
    pub inventory: Inventory,
    /// The MecClusters that exist (the MecCluster controller's cache).
    pub clusters: Store<MecCluster>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event publisher.
    pub recorder: Recorder,
    /// Settings.
    pub settings: Settings,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Context {
    /// The event recorder of the operator.
    pub fn recorder(hub: Client, instance: Option<String>) -> Recorder {
        Recorder::new(
            hub,
            Reporter {
                controller: "hsn-operator".into(),
                instance,
            },
        )
    }
}
