//! Reaching a member cluster from the hub: the kubeconfig Secret a MecCluster names, read,
//! refused unless it is self-contained ([`self_contained`]), and turned into a client
//! configuration. The operator (which caches and instruments the clients) and `hsnctl` share
//! it, so both read `kubeconfigSecretRef` the same way and neither runs what a Secret says.

pub mod self_contained;

use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};

use crate::{MecCluster, MecClusterReason};

pub use self_contained::{Entry, Refusal, refusals};

/// Why a member cluster cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
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
    #[error("reading kubeconfig Secret {namespace}/{name}: {}", describe(.source))]
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
    /// The kubeconfig parses but is not self-contained: it would make the reader run a
    /// program, read a file of its own or send the credentials elsewhere.
    #[error(
        "kubeconfig in Secret {namespace}/{name} is refused (it must be self-contained): {}",
        join(.refusals)
    )]
    KubeconfigRefused {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// Each refused field, with its entry.
        refusals: Vec<Refusal>,
    },
}

fn join(refusals: &[Refusal]) -> String {
    let text: Vec<String> = refusals.iter().map(ToString::to_string).collect();
    text.join("; ")
}

impl AccessError {
    /// Condition reason for this error.
    pub fn reason(&self) -> MecClusterReason {
        match self {
            Self::NoAccess => MecClusterReason::NoAccess,
            Self::SecretNotFound { .. } => MecClusterReason::SecretNotFound,
            Self::SecretRead { .. } => MecClusterReason::SecretUnreadable,
            Self::SecretKeyMissing { .. } => MecClusterReason::SecretKeyMissing,
            Self::KubeconfigInvalid { .. } => MecClusterReason::KubeconfigInvalid,
            Self::KubeconfigRefused { .. } => MecClusterReason::KubeconfigRefused,
        }
    }
}

/// The kubeconfig a MecCluster's Secret holds.
#[derive(Clone, Debug)]
pub struct KubeconfigSecret {
    /// Secret namespace.
    pub namespace: String,
    /// Secret name.
    pub name: String,
    /// The key of the Secret's data that holds the kubeconfig.
    pub key: String,
    /// The Secret's resourceVersion: a client built from it is good until this changes.
    pub resource_version: String,
    /// The kubeconfig, as stored.
    pub kubeconfig: Vec<u8>,
}

impl KubeconfigSecret {
    /// Reads the Secret `cluster` names (in `default_namespace` when the reference names
    /// none); `None` for a cluster with `local: true`, which is the hub itself.
    pub async fn read(
        hub: &Client,
        cluster: &MecCluster,
        default_namespace: &str,
    ) -> Result<Option<Self>, AccessError> {
        if cluster.spec.local == Some(true) {
            return Ok(None);
        }
        let r = cluster
            .spec
            .kubeconfig_secret_ref
            .as_ref()
            .ok_or(AccessError::NoAccess)?;
        let namespace = r.namespace.as_deref().unwrap_or(default_namespace);
        let secret = Api::<Secret>::namespaced(hub.clone(), namespace)
            .get_opt(&r.name)
            .await
            .map_err(|source| AccessError::SecretRead {
                namespace: namespace.to_owned(),
                name: r.name.clone(),
                source,
            })?
            .ok_or_else(|| AccessError::SecretNotFound {
                namespace: namespace.to_owned(),
                name: r.name.clone(),
            })?;
        let kubeconfig = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .ok_or_else(|| AccessError::SecretKeyMissing {
                namespace: namespace.to_owned(),
                name: r.name.clone(),
                key: r.key.clone(),
            })?
            .0
            .clone();
        Ok(Some(Self {
            namespace: namespace.to_owned(),
            name: r.name.clone(),
            key: r.key.clone(),
            resource_version: secret.resource_version().unwrap_or_default(),
            kubeconfig,
        }))
    }

    /// The client configuration the kubeconfig describes (its current context); a kubeconfig
    /// that is not self-contained is refused before kube sees it.
    pub async fn config(&self) -> Result<Config, AccessError> {
        let text = std::str::from_utf8(&self.kubeconfig).map_err(|e| self.invalid(e))?;
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| self.invalid(e))?;
        let refusals = refusals(&kubeconfig);
        if !refusals.is_empty() {
            return Err(AccessError::KubeconfigRefused {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                refusals,
            });
        }
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| self.invalid(e))
    }

    /// The error for a kubeconfig that cannot make a client, for `reason`.
    pub fn invalid(&self, reason: impl std::fmt::Display) -> AccessError {
        AccessError::KubeconfigInvalid {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            reason: reason.to_string(),
        }
    }
}

/// Bounds every request of a client built from `config` by `timeout`: to connect, to
/// write, and to wait for each read, counted from the request's write. Not from the time
/// its pooled connection went idle, which is kube's way unless told: a request on a
/// connection idle for most of `timeout` then failed ("client error (SendRequest)")
/// however fast the server answered.
pub fn set_timeouts(config: &mut Config, timeout: std::time::Duration) {
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    config.reset_reader_on_write = true;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(kubeconfig: &str) -> KubeconfigSecret {
        KubeconfigSecret {
            namespace: "hsn-system".into(),
            name: "mec-a".into(),
            key: "kubeconfig".into(),
            resource_version: "7".into(),
            kubeconfig: kubeconfig.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn a_kubeconfig_becomes_a_config_and_garbage_a_named_error() {
        let good = r#"
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"#;
        let config = secret(good).config().await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        let bad = secret("not: [a kubeconfig").config().await.unwrap_err();
        assert_eq!(bad.reason().as_str(), "KubeconfigInvalid");
        assert!(
            bad.to_string()
                .starts_with("kubeconfig in Secret hsn-system/mec-a is invalid"),
            "{bad}"
        );
    }

    #[tokio::test]
    async fn a_kubeconfig_that_runs_a_program_is_refused_before_kube_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let exec = format!(
            r#"
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:1"}}}}]
users: [{{name: u, user: {{exec: {{apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, "touch {}"]}}}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
"#,
            marker.display()
        );
        let e = secret(&exec).config().await.unwrap_err();
        assert_eq!(e.reason().as_str(), "KubeconfigRefused");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "kubeconfig in Secret hsn-system/mec-a is refused (it must be self-contained): \
                 user \"u\" sets exec: runs a program"
            ),
            "{text}"
        );
        assert!(!marker.exists());
    }

    #[test]
    fn api_errors_read_as_their_message() {
        let e = kube::Error::Api(Box::new(
            kube::core::Status::failure("secrets \"x\" is forbidden", "Forbidden").with_code(403),
        ));
        assert_eq!(describe(&e), "secrets \"x\" is forbidden (Forbidden)");
    }
}
