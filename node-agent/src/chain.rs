//! Super nodes: the network's chain as their own ledger replica sees it, read every
//! heartbeat and carried in the Lease (`hsn.io/ledger`), where the operator picks it up for
//! the HsnNetwork's `status.ledger`.
//!
//! The head changes with every block: it is stored in the status without waking the Lease
//! loop, so it rides on the next heartbeat's renewal instead of adding writes of its own.

use std::time::Duration;

use hsn_api::network::LedgerHead;
use hsn_ledger_api::client::{self, ClientTls};
use hsn_ledger_api::pb::{self, ledger_client::LedgerClient};
use tonic::transport::Channel;

use crate::status::StatusTx;

/// Where the super's replica is and how often to read it.
#[derive(Clone, Debug)]
pub struct ChainWatch {
    /// The HsnNetwork: a replica of another network is not reported.
    pub network: String,
    /// The replica's gRPC endpoint (`--ledger-endpoint`).
    pub endpoint: String,
    /// TLS toward it, as the shipper uses.
    pub tls: Option<ClientTls>,
    /// Time between reads (the Lease heartbeat).
    pub every: Duration,
}

/// What a replica's `Status` says, in the HsnNetwork's terms.
pub fn head_of(status: &pb::StatusResponse) -> LedgerHead {
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    LedgerHead {
        height: int(status.height),
        head_hash: hex::encode(&status.head_hash),
        chain_height: int(status.app_height),
        validators: i32::try_from(status.validators.len()).unwrap_or(i32::MAX),
        last_final_epoch: status.sealed_through.map(int),
        reported_by: None,
    }
}

/// Reads the replica every `every` until the status channel closes; a failed read drops
/// the connection (the next one connects anew). A replica that cannot be read leaves the
/// last report in place (the operator shows the most advanced super's).
pub async fn run(watch: ChainWatch, status: StatusTx) {
    let mut client: Option<LedgerClient<Channel>> = None;
    let mut failing = false;
    loop {
        match read(&watch, &mut client).await {
            Ok(head) => {
                if failing {
                    tracing::info!(endpoint = %watch.endpoint, "reading the ledger replica again");
                    failing = false;
                }
                status.send_if_modified(|s| {
                    s.ledger = Some(head);
                    false
                });
            }
            Err(error) => {
                client = None;
                if !failing {
                    tracing::warn!(endpoint = %watch.endpoint, %error,
                        "cannot read the ledger replica's status; retrying each heartbeat");
                    failing = true;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(watch.every) => {}
            () = status.closed() => return,
        }
    }
}

async fn read(
    watch: &ChainWatch,
    client: &mut Option<LedgerClient<Channel>>,
) -> Result<LedgerHead, String> {
    let deadline = watch.every.max(Duration::from_secs(1));
    if client.is_none() {
        let connected = tokio::time::timeout(
            deadline,
            client::connect(&watch.endpoint, watch.tls.as_ref()),
        )
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        *client = Some(connected);
    }
    let mut c = client.clone().ok_or("not connected")?;
    let reply = tokio::time::timeout(deadline, c.status(pb::StatusRequest {}))
        .await
        .map_err(|_| "Status timed out".to_owned())?
        .map_err(|s| s.to_string())?
        .into_inner();
    if reply.network != watch.network {
        return Err(format!("the replica serves network {:?}", reply.network));
    }
    Ok(head_of(&reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replicas_status_reads_as_the_networks_head() {
        let status = pb::StatusResponse {
            network: "metro".into(),
            height: 12,
            head_hash: vec![0xab; 32],
            app_height: 140,
            sealed_through: Some(9),
            validators: vec![pb::ValidatorStatus::default(); 3],
            ..Default::default()
        };
        let head = head_of(&status);
        assert_eq!(
            head,
            LedgerHead {
                height: 12,
                head_hash: "ab".repeat(32),
                chain_height: 140,
                validators: 3,
                last_final_epoch: Some(9),
                reported_by: None,
            }
        );
        let empty = head_of(&pb::StatusResponse::default());
        assert_eq!(
            (empty.head_hash.as_str(), empty.last_final_epoch),
            ("", None)
        );
    }
}
