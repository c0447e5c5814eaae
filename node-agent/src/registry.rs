//! Super nodes: the registry changes the operator publishes in the member's ledger
//! ConfigMap (`hsn-ledger`, key `registry`), handed to this node's ledger as soon as they
//! change (`SubmitRegistryChange`). The ledger also reads the ConfigMap's mounted copy, but
//! the kubelet refreshes that about once a minute: a new edge's records would be refused as
//! from an unknown key (kept in its spool, retried) for that long.

use std::time::Duration;

use futures::StreamExt as _;
use hsn_api::routes::{LEDGER_CONFIGMAP, REGISTRY_KEY};
use hsn_ledger_api::client::{self, ClientTls};
use hsn_ledger_api::pb::{self, ledger_client::LedgerClient};
use hsn_ledger_api::registry::parse_published;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use tonic::Code;
use tonic::transport::Channel;

use crate::status::StatusTx;

/// Time between attempts while the ledger cannot take a change.
pub const RETRY: Duration = Duration::from_secs(2);

/// Where this super node's ledger is.
#[derive(Clone, Debug)]
pub struct LedgerTarget {
    /// gRPC endpoint (`--ledger-endpoint`).
    pub endpoint: String,
    /// TLS toward it, as the shipper uses.
    pub tls: Option<ClientTls>,
}

/// Follows the ledger ConfigMap through `api` and delivers each new registry change to the
/// ledger at `target`, until the status channel closes. A change the ledger took or
/// refused for good (a used nonce) is not sent again; one it could not answer is retried
/// every [`RETRY`].
pub async fn follow(api: Api<ConfigMap>, target: LedgerTarget, status: StatusTx) {
    let config = watcher::Config::default().fields(&format!("metadata.name={LEDGER_CONFIGMAP}"));
    let mut changes = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut latest: Option<Vec<u8>> = None;
    let mut delivered: Option<Vec<u8>> = None;
    let mut client: Option<LedgerClient<Channel>> = None;
    let mut failing = false;
    loop {
        let pending = latest.is_some() && latest != delivered;
        tokio::select! {
            event = changes.next() => match event {
                None => return,
                Some(Ok(cm)) => match published(&cm) {
                    Ok(tx) => latest = tx,
                    Err(error) => tracing::warn!(%error, "the ledger ConfigMap's registry change"),
                },
                // Transient (API down, watch expired): the backoff retries.
                Some(Err(error)) => tracing::warn!(%error, "watching the ledger ConfigMap"),
            },
            () = tokio::time::sleep(RETRY), if pending => {}
            () = status.closed() => return,
        }
        let Some(tx) = latest.clone().filter(|tx| delivered.as_ref() != Some(tx)) else {
            continue;
        };
        match deliver(&target, &mut client, tx.clone()).await {
            Ok(Some(reply)) if reply.taken => {
                tracing::info!(tx = %reply.detail, "registry change handed to the ledger");
                delivered = Some(tx);
                failing = false;
            }
            Ok(reply) => {
                let why = reply.map_or_else(|| "refused".to_owned(), |r| r.detail);
                tracing::info!(%why, "registry change not taken (applied already, or refused)");
                delivered = Some(tx);
                failing = false;
            }
            Err(error) => {
                client = None;
                if !failing {
                    tracing::warn!(endpoint = %target.endpoint, %error,
                        "cannot hand the registry change to the ledger; retrying");
                    failing = true;
                }
            }
        }
    }
}

/// The change the ConfigMap holds (none while it has no registry yet).
fn published(cm: &ConfigMap) -> Result<Option<Vec<u8>>, String> {
    match cm.data.as_ref().and_then(|d| d.get(REGISTRY_KEY)) {
        Some(text) => parse_published(text),
        None => Ok(None),
    }
}

/// The ledger's answer; `None` when it refuses the call for good (not a registry change,
/// or a ledger that keeps no chain); an error when it should be asked again.
async fn deliver(
    target: &LedgerTarget,
    client: &mut Option<LedgerClient<Channel>>,
    transaction: Vec<u8>,
) -> Result<Option<pb::SubmitRegistryChangeResponse>, String> {
    if client.is_none() {
        let connected = client::connect(&target.endpoint, target.tls.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        *client = Some(connected);
    }
    let ledger = client.as_mut().expect("connected above");
    match ledger
        .submit_registry_change(pb::SubmitRegistryChangeRequest { transaction })
        .await
    {
        Ok(reply) => Ok(Some(reply.into_inner())),
        Err(s) if matches!(s.code(), Code::InvalidArgument | Code::FailedPrecondition) => {
            tracing::warn!(status = %s, "the ledger refuses registry changes");
            Ok(None)
        }
        Err(s) => Err(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configmap(registry: Option<&str>) -> ConfigMap {
        ConfigMap {
            data: registry.map(|r| [(REGISTRY_KEY.to_owned(), r.to_owned())].into()),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn the_configmap_holds_one_change_or_none() {
        assert_eq!(published(&configmap(None)), Ok(None));
        assert_eq!(published(&configmap(Some(""))), Ok(None));
        assert_eq!(published(&configmap(Some("0a00\n"))), Ok(Some(vec![10, 0])));
        assert!(published(&configmap(Some("not hex"))).is_err());
    }
}
