//! What a stopped agent leaves behind. Its programs stay attached, counting, for the next
//! agent (a restart, an upgrade), unless no agent will follow: its namespace is being deleted
//! because the network left this cluster; then leaving them attached would keep steering
//! tenant traffic to a super node that is gone, so they are removed.

use std::path::Path;
use std::time::Duration;

use hsn_ebpf::PinDir;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

/// Where a cluster-mode agent lives, to tell at shutdown a restart (another agent will take
/// the programs over) from an uninstall (nobody will: leaving them attached would keep
/// steering tenant traffic to a super node that is gone).
#[derive(Debug)]
pub struct Residence {
    /// Namespaces of the agent's cluster.
    pub namespaces: Api<Namespace>,
    /// The agent's namespace.
    pub namespace: String,
}

impl Residence {
    /// How long shutdown waits for the answer; the pod's grace period is 30 s by default.
    const TIMEOUT: Duration = Duration::from_secs(3);

    /// Why no agent will follow, when the namespace is gone or being deleted, or this
    /// agent's ServiceAccount is (see [`leaving`]). When it cannot tell, `None`: the programs
    /// stay, as for a restart.
    pub async fn leaving(&self) -> Option<&'static str> {
        let answer = tokio::time::timeout(Self::TIMEOUT, self.namespaces.get_opt(&self.namespace))
            .await
            .unwrap_or_else(|_| Err(kube::Error::Service("timed out".into())));
        match leaving(&answer) {
            Ok(reason) => reason,
            Err(error) => {
                tracing::warn!(%error, namespace = self.namespace,
                    "reading the namespace at shutdown failed; the programs stay attached");
                None
            }
        }
    }
}

/// What the namespace read at shutdown says: gone (404) or being deleted means leaving. So
/// does 401: this agent's ServiceAccount token was rejected, i.e. the ServiceAccount was
/// deleted, which the operator does only with the namespace (a namespace's content is often
/// gone before its pods are stopped). 403 and anything else: cannot tell (an operator whose
/// Role predates the namespace rule gives 403 on every stop).
fn leaving(
    answer: &Result<Option<Namespace>, kube::Error>,
) -> Result<Option<&'static str>, &kube::Error> {
    match answer {
        Ok(None) => Ok(Some("the namespace is gone")),
        Ok(Some(ns)) => Ok(ns
            .metadata
            .deletion_timestamp
            .is_some()
            .then_some("the namespace is being deleted")),
        Err(kube::Error::Api(status)) if status.code == 401 => {
            Ok(Some("the agent's ServiceAccount was deleted (401)"))
        }
        Err(error) => Err(error),
    }
}

/// Applies the policy once the agent has stopped: removes the network's programs when no
/// agent will follow (see [`Residence::leaving`]); standalone agents always leave them.
pub async fn after_stop(
    residence: Option<&Residence>,
    bpffs: &Path,
    network: &str,
) -> Result<(), hsn_ebpf::Error> {
    let leaving = match residence {
        Some(residence) => residence.leaving().await,
        None => None,
    };
    match leaving {
        Some(reason) => {
            tracing::info!(
                reason,
                "no agent will follow: removing this network's programs"
            );
            remove_programs(bpffs, network)
        }
        None => {
            tracing::info!("the programs stay attached, counting, for the next agent");
            Ok(())
        }
    }
}

/// `hsn-agent cleanup`, and an agent whose namespace is being deleted: unpins the network's
/// links and maps (a program no process holds any more is detached).
pub fn remove_programs(bpffs: &Path, network: &str) -> Result<(), hsn_ebpf::Error> {
    let pin = PinDir::under(bpffs, network)?;
    pin.remove()?;
    tracing::info!(dir = %pin.path().display(), "removed the pinned XDP links and maps");
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("test", "test")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn gone_deleting_or_unauthenticated_is_leaving_and_the_rest_is_not_or_unknown() {
        let leaves = |answer| leaving(&answer).map(|r| r.is_some()).ok();
        let mut ns = Namespace::default();
        assert_eq!(leaves(Ok(Some(ns.clone()))), Some(false));
        ns.metadata.deletion_timestamp = Some(Time(Default::default()));
        assert_eq!(leaves(Ok(Some(ns))), Some(true));
        assert_eq!(leaves(Ok(None)), Some(true));
        assert_eq!(leaves(Err(api_error(401))), Some(true));
        assert!(leaving(&Err(api_error(403))).is_err());
        assert!(leaving(&Err(api_error(500))).is_err());
        assert!(leaving(&Err(kube::Error::Service("timed out".into()))).is_err());
    }
}
