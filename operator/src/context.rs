//! What every controller shares: clients, the member inventory, metrics, Events, settings.

use std::sync::Arc;
use std::time::Duration;

use hsn_api::MecCluster;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::member::{Inventory, MemberClients};
use crate::metrics::Metrics;
use crate::resources::{FIELD_MANAGER, Owner};

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
    /// The operator's own namespace: its leader Lease, and each network's chain Secret
    /// (genesis and registry administrator key).
    pub operator_namespace: String,
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
    /// The hub's identity (its `kube-system` UID), which marks what it writes in members.
    pub hub_identity: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .field("hub_identity", &self.hub_identity)
            .finish()
    }
}

impl Context {
    /// The writer of what this hub puts into the member of MecCluster `cluster`.
    pub fn owner(&self, cluster: &str) -> Owner {
        Owner {
            hub: self.hub_identity.clone(),
            cluster: cluster.to_string(),
        }
    }

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

    /// Server-side applies `status` to the `K` named `name` under the operator's field
    /// manager, and counts the write for `controller`.
    pub async fn apply_status<K>(
        &self,
        controller: &'static str,
        api: &Api<K>,
        name: &str,
        status: &impl Serialize,
    ) -> Result<(), kube::Error>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let patch = typed::<K>(json!({ "status": status }));
        api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &patch)
            .await?;
        self.metrics.hub_write(controller);
        Ok(())
    }

    /// Server-side applies `metadata` and `spec` to the `K` named `name` under the
    /// operator's field manager, and counts the write for `controller`.
    pub async fn apply_spec<K>(
        &self,
        controller: &'static str,
        api: &Api<K>,
        name: &str,
        metadata: &impl Serialize,
        spec: &impl Serialize,
    ) -> Result<(), kube::Error>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let patch = typed::<K>(json!({ "metadata": metadata, "spec": spec }));
        api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &patch)
            .await?;
        self.metrics.hub_write(controller);
        Ok(())
    }
}

/// `fields` of a `K` as an apply patch: with `K`'s apiVersion and kind.
fn typed<K: Resource<DynamicType = ()>>(mut fields: Value) -> Patch<Value> {
    fields["apiVersion"] = K::api_version(&()).into();
    fields["kind"] = K::kind(&()).into();
    Patch::Apply(fields)
}
