//! Clients: the hub from a kubeconfig (or in-cluster), members the way the operator reaches
//! them (the hub itself for `local: true`, else the kubeconfig in the MecCluster's Secret).

use std::path::Path;
use std::time::Duration;

use hsn_api::MecCluster;
use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Api, Client, Config};

use super::ClusterError;

/// The hub cluster.
#[derive(Clone)]
pub struct Hub {
    /// Its client.
    pub client: Client,
    /// Its API server URL, for messages.
    pub url: String,
    /// The namespace of the kubeconfig context (else `default`).
    pub default_namespace: String,
    timeout: Duration,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("url", &self.url).finish()
    }
}

/// Builds the hub client: `--kubeconfig`, else `$KUBECONFIG` or `~/.kube/config`, else the
/// in-cluster service account.
pub async fn hub(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    timeout: Duration,
) -> Result<Hub, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let file = match kubeconfig {
        Some(path) => Kubeconfig::read_from(path).map(Some),
        None => match Kubeconfig::read() {
            Ok(k) => Ok(Some(k)),
            Err(e) if is_missing_default(&e) => Ok(None),
            Err(e) => Err(e),
        },
    }
    .map_err(|e| match e {
        KubeconfigError::ReadConfig(source, path) => ClusterError::KubeconfigRead { path, source },
        e => ClusterError::Kubeconfig(e),
    })?;
    let mut config = match file {
        Some(k) => Config::from_custom_kubeconfig(k, &options)
            .await
            .map_err(ClusterError::Kubeconfig)?,
        None if context.is_none() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            Config::incluster().map_err(|e| ClusterError::InCluster(e.to_string()))?
        }
        None => return Err(ClusterError::NoKubeconfig),
    };
    with_timeouts(&mut config, timeout);
    let url = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| ClusterError::Client(describe(&e)))?;
    Ok(Hub {
        client,
        url,
        default_namespace,
        timeout,
    })
}

/// No `$KUBECONFIG` and no `~/.kube/config`: not an error of a file, there is none.
fn is_missing_default(e: &KubeconfigError) -> bool {
    let env_set = std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty());
    match e {
        KubeconfigError::FindPath => true,
        KubeconfigError::ReadConfig(io, _) => !env_set && io.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

fn with_timeouts(config: &mut Config, timeout: Duration) {
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
}

/// Why a member's client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// Neither `local` nor a Secret (the API server refuses such MecClusters).
    #[error("the MecCluster names neither local: true nor a kubeconfigSecretRef")]
    NoAccess,
    /// The Secret is not there.
    #[error("kubeconfig Secret {namespace}/{name} not found")]
    SecretNotFound {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// Reading the Secret failed.
    #[error("reading kubeconfig Secret {namespace}/{name}: {reason}")]
    SecretRead {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The API error.
        reason: String,
    },
    /// The Secret lacks the key.
    #[error("kubeconfig Secret {namespace}/{name} has no key {key:?}")]
    SecretKeyMissing {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The key.
        key: String,
    },
    /// The kubeconfig does not make a client.
    #[error("kubeconfig in Secret {namespace}/{name} is invalid: {reason}")]
    KubeconfigInvalid {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// The client of a member cluster. Secrets that name no namespace are looked up in
/// `operator_namespace`, as the operator does.
pub async fn member(
    hub: &Hub,
    cluster: &MecCluster,
    operator_namespace: &str,
) -> Result<Client, MemberError> {
    if cluster.spec.local == Some(true) {
        return Ok(hub.client.clone());
    }
    let r = cluster
        .spec
        .kubeconfig_secret_ref
        .as_ref()
        .ok_or(MemberError::NoAccess)?;
    let namespace = r.namespace.as_deref().unwrap_or(operator_namespace);
    let (ns, name) = (namespace.to_owned(), r.name.clone());
    let secret = Api::<Secret>::namespaced(hub.client.clone(), namespace)
        .get_opt(&r.name)
        .await
        .map_err(|e| MemberError::SecretRead {
            namespace: ns.clone(),
            name: name.clone(),
            reason: describe(&e),
        })?
        .ok_or_else(|| MemberError::SecretNotFound {
            namespace: ns.clone(),
            name: name.clone(),
        })?;
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .ok_or_else(|| MemberError::SecretKeyMissing {
            namespace: ns.clone(),
            name: name.clone(),
            key: r.key.clone(),
        })?;
    let invalid = |reason: String| MemberError::KubeconfigInvalid {
        namespace: ns.clone(),
        name: name.clone(),
        reason,
    };
    let text = std::str::from_utf8(&data.0).map_err(|e| invalid(e.to_string()))?;
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| invalid(e.to_string()))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| invalid(e.to_string()))?;
    with_timeouts(&mut config, hub.timeout);
    Client::try_from(config).map_err(|e| invalid(describe(&e)))
}

/// A kube error for people: the API's message and reason, or the transport's causes
/// (`tcp connect error: Connection refused`) without kube's debug dump.
pub fn describe(e: &kube::Error) -> String {
    if let kube::Error::Api(status) = e {
        let reason = &status.reason;
        return match (status.message.is_empty(), reason.is_empty()) {
            (false, false) => format!("{} ({reason})", status.message),
            (false, true) => status.message.clone(),
            _ => format!("HTTP {} {reason}", status.code),
        };
    }
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// Whether the request never got an answer from the API server.
pub fn is_transport(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}
