//! Clients for member clusters: built from each MecCluster's kubeconfig Secret (or the hub
//! client for `local: true`), cached, and rebuilt when the Secret changes. Every request a
//! member client sends is counted by cluster and method.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hsn_api::MecCluster;
use k8s_openapi::api::core::v1::Secret;
use kube::client::{Body, ClientBuilder as Builder};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use tower::util::MapRequestLayer;

use crate::metrics::{MemberRequestLabels, Metrics};

/// Why a member client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// The MecCluster names neither `local` nor a Secret (the API server prevents this).
    #[error("MecCluster names neither local: true nor a kubeconfigSecretRef")]
    NoAccess,
    /// The Secret does not exist.
    #[error("kubeconfig Secret {namespace}/{name} not found")]
    SecretNotFound {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// Reading the Secret failed.
    #[error("reading kubeconfig Secret {namespace}/{name}: {source}")]
    SecretRead {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// The Secret lacks the key.
    #[error("kubeconfig Secret {namespace}/{name} has no key {key:?}")]
    SecretKeyMissing {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// The kubeconfig does not parse or cannot be turned into a client.
    #[error("kubeconfig in Secret {namespace}/{name} is invalid: {reason}")]
    KubeconfigInvalid {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl MemberError {
    /// Condition reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoAccess => "NoAccess",
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::SecretRead { .. } => "SecretUnreadable",
            Self::SecretKeyMissing { .. } => "SecretKeyMissing",
            Self::KubeconfigInvalid { .. } => "KubeconfigInvalid",
        }
    }
}

#[derive(Clone)]
struct Cached {
    /// What the client was built from: "local", or the Secret's resourceVersion.
    source: String,
    client: Client,
}

/// The member-client cache.
#[derive(Clone)]
pub struct Members {
    hub: Client,
    hub_config: Config,
    operator_namespace: String,
    timeout: Duration,
    metrics: Arc<Metrics>,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("operator_namespace", &self.operator_namespace)
            .finish()
    }
}

impl Members {
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
    pub async fn client(&self, cluster: &MecCluster) -> Result<Client, MemberError> {
        let name = cluster.name_any();
        if cluster.spec.local == Some(true) {
            return self.cached(&name, "local", || {
                self.counted(&name, self.hub_config.clone())
            });
        }
        let r = cluster
            .spec
            .kubeconfig_secret_ref
            .as_ref()
            .ok_or(MemberError::NoAccess)?;
        let namespace = r
            .namespace
            .clone()
            .unwrap_or_else(|| self.operator_namespace.clone());
        let secrets: Api<Secret> = Api::namespaced(self.hub.clone(), &namespace);
        let secret = secrets
            .get_opt(&r.name)
            .await
            .map_err(|source| MemberError::SecretRead {
                namespace: namespace.clone(),
                name: r.name.clone(),
                source,
            })?
            .ok_or_else(|| MemberError::SecretNotFound {
                namespace: namespace.clone(),
                name: r.name.clone(),
            })?;
        let version = secret.resource_version().unwrap_or_default();
        let data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .ok_or_else(|| MemberError::SecretKeyMissing {
                namespace: namespace.clone(),
                name: r.name.clone(),
                key: r.key.clone(),
            })?;
        let invalid = |reason: String| MemberError::KubeconfigInvalid {
            namespace: namespace.clone(),
            name: r.name.clone(),
            reason,
        };
        if let Some(client) = self.lookup(&name, &version) {
            return Ok(client);
        }
        let text = std::str::from_utf8(&data.0).map_err(|e| invalid(e.to_string()))?;
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| invalid(e.to_string()))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| invalid(e.to_string()))?;
        let client = self
            .counted(&name, config)
            .map_err(|e| invalid(e.to_string()))?;
        self.cached(&name, &version, || Ok(client))
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
        build: impl FnOnce() -> Result<Client, MemberError>,
    ) -> Result<Client, MemberError> {
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

    /// A client for `config` whose requests time out and are counted under `cluster`.
    fn counted(&self, cluster: &str, mut config: Config) -> Result<Client, MemberError> {
        config.connect_timeout = Some(self.timeout);
        config.read_timeout = Some(self.timeout);
        config.write_timeout = Some(self.timeout);
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
        let builder = Builder::try_from(config).map_err(|e| MemberError::KubeconfigInvalid {
            namespace: String::new(),
            name: cluster.to_string(),
            reason: e.to_string(),
        })?;
        Ok(builder.with_layer(&count).build())
    }
}
