//! Clients: the hub from a kubeconfig (or in-cluster), members the way the operator reaches
//! them (the hub itself for `local: true`, else the kubeconfig in the MecCluster's Secret).

use std::path::Path;
use std::time::Duration;

use hsn_api::MecCluster;
use hsn_api::access::{KubeconfigSecret, set_timeouts};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

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
    set_timeouts(&mut config, timeout);
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

/// Why a member's client could not be built: the operator's reasons, word for word.
pub use hsn_api::access::{AccessError as MemberError, describe};

/// The client of a member cluster. Secrets that name no namespace are looked up in
/// `operator_namespace`, as the operator does.
pub async fn member(
    hub: &Hub,
    cluster: &MecCluster,
    operator_namespace: &str,
) -> Result<Client, MemberError> {
    let Some(secret) = KubeconfigSecret::read(&hub.client, cluster, operator_namespace).await?
    else {
        return Ok(hub.client.clone());
    };
    let mut config = secret.config().await?;
    set_timeouts(&mut config, hub.timeout);
    Client::try_from(config).map_err(|e| secret.invalid(describe(&e)))
}

/// Whether the request never got an answer from the API server.
pub fn is_transport(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}
