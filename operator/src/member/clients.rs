//! Clients for member clusters: built from each MecCluster's kubeconfig Secret (read by
//! [`hsn_api::access`], as `hsnctl` reads it) or the hub's configuration for `local: true`,
//! cached, and rebuilt when the Secret changes. Every request a member client sends is
//! counted by cluster and method.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hsn_api::MecCluster;
use hsn_api::access::{AccessError, KubeconfigSecret, describe, set_timeouts};
use kube::client::{Body, ClientBuilder as Builder};
use kube::{Client, Config, ResourceExt};
use tower::util::MapRequestLayer;

use crate::metrics::{MemberRequestLabels, Metrics};

#[derive(Clone)]
struct Cached {
    /// What the client was built from: "local", or the Secret's resourceVersion.
    source: String,
    client: Client,
}

/// The member-client cache.
#[derive(Clone)]
pub struct MemberClients {
    hub: Client,
    hub_config: Config,
    operator_namespace: String,
    timeout: Duration,
    metrics: Arc<Metrics>,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for MemberClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberClients")
            .field("operator_namespace", &self.operator_namespace)
            .finish()
    }
}

impl MemberClients {
    /// A cache whose Secrets default to `operator_namespace` and whose requests time out
    /// after `timeout`.
    pub fn new(
        hub: Client,
        hub_config: Config,
        operator_namespace: String,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            hub,
            hub_config,
            operator_namespace,
            timeout,
            metrics,
            cache: Arc::default(),
        }
    }

    /// The client of `cluster`, reusing the cached one while its Secret is unchanged.
    pub async fn client(&self, cluster: &MecCluster) -> Result<Client, AccessError> {
        let name = cluster.name_any();
        let Some(secret) =
            KubeconfigSecret::read(&self.hub, cluster, &self.operator_namespace).await?
        else {
            return self.cached(&name, "local", || {
                self.counted(&name, self.hub_config.clone()).map_err(|e| {
                    AccessError::KubeconfigInvalid {
                        namespace: String::new(),
                        name: name.clone(),
                        reason: describe(&e),
                    }
                })
            });
        };
        if let Some(client) = self.lookup(&name, &secret.resource_version) {
            return Ok(client);
        }
        let config = secret.config().await?;
        let client = self
            .counted(&name, config)
            .map_err(|e| secret.invalid(describe(&e)))?;
        self.cached(&name, &secret.resource_version, || Ok(client))
    }

    /// Forgets the client of a deleted cluster.
    pub fn forget(&self, cluster: &str) {
        self.cache
            .lock()
            .expect("member cache lock")
            .remove(cluster);
    }

    fn lookup(&self, name: &str, source: &str) -> Option<Client> {
        let cache = self.cache.lock().expect("member cache lock");
        cache
            .get(name)
            .filter(|c| c.source == source)
            .map(|c| c.client.clone())
    }

    fn cached(
        &self,
        name: &str,
        source: &str,
        build: impl FnOnce() -> Result<Client, AccessError>,
    ) -> Result<Client, AccessError> {
        if let Some(client) = self.lookup(name, source) {
            return Ok(client);
        }
        let client = build()?;
        self.cache.lock().expect("member cache lock").insert(
            name.to_string(),
            Cached {
                source: source.to_string(),
                client: client.clone(),
            },
        );
        Ok(client)
    }

    /// A client for `config` whose requests time out ([`set_timeouts`]: without it a member
    /// apply failed in every `make bench-operator` rollout, a GET on a connection the
    /// previous reconcile left idle, and the network waited a reconcile longer for Ready)
    /// and are counted under `cluster`.
    fn counted(&self, cluster: &str, mut config: Config) -> Result<Client, kube::Error> {
        set_timeouts(&mut config, self.timeout);
        let metrics = self.metrics.clone();
        let label = cluster.to_string();
        let count = MapRequestLayer::new(move |req: http::Request<Body>| {
            metrics
                .member_requests
                .get_or_create(&MemberRequestLabels {
                    cluster: label.clone(),
                    method: req.method().to_string(),
                })
                .inc();
            req
        });
        Ok(Builder::try_from(config)?.with_layer(&count).build())
    }
}
