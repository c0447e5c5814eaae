//! Shared by the replicated-ledger tests: submitting as an agent does, verifying and
//! waiting for endorsement through `hsnctl`, one replicated network at a time.

use std::time::{Duration, Instant};

use super::hsnctl_json;
use anyhow::{Result, bail};
use hsn_core::Direction;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_testkit::ledger_fixtures::Slot;
use hsn_testkit::ledger_net::replicated::{NETWORK, Replicated};
use tonic::Code;

pub const EPOCH: u64 = 2;

/// One replicated network at a time: four validators per test on two cores is enough.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn now() -> u64 {
    super::now()
}

/// Edge `e`'s record and super `s`'s observation of it, for `epoch` and tenant `tenant`.
pub fn pair(
    r: &Replicated,
    e: usize,
    s: usize,
    epoch: u64,
    tenant: &str,
    bytes: u64,
) -> pb::SubmitRecordsRequest {
    let slot = Slot::new(NETWORK, epoch, tenant, Direction::Uplink);
    let edge = &r.edges[e];
    pb::SubmitRecordsRequest {
        records: vec![slot.record(edge, bytes, 1).to_pb()],
        observations: vec![
            slot.observation(&r.supers[s], NodeKey::of(edge), bytes)
                .to_pb(),
        ],
    }
}

pub async fn submit_once(
    r: &Replicated,
    via: usize,
    request: pb::SubmitRecordsRequest,
) -> Result<pb::SubmitRecordsResponse, tonic::Status> {
    let mut client = r
        .replica(via)
        .client()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    client
        .submit_records(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Submits as an agent does: UNAVAILABLE (not committed in time, or the chain's time
/// behind the epoch) is retried, for at most 60 s.
pub async fn submit(
    r: &Replicated,
    via: usize,
    request: pb::SubmitRecordsRequest,
) -> Result<pb::SubmitRecordsResponse, tonic::Status> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match submit_once(r, via, request.clone()).await {
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            result => return result,
        }
    }
}

pub async fn status(r: &Replicated, i: usize) -> Result<pb::StatusResponse> {
    let mut client = r.replica(i).client().await?;
    Ok(client.status(pb::StatusRequest {}).await?.into_inner())
}

/// `hsnctl ledger verify` against replica `i`: the summary.
pub fn verify(r: &Replicated, i: usize) -> Result<serde_json::Value> {
    let url = r.replica(i).url();
    hsnctl_json(&["ledger", "--addr", &url, "verify", "-o", "json"])
}

/// Waits until replica `i` has at least `blocks` ledger blocks, they verify and a validator
/// quorum endorsed every one.
pub async fn wait_verified(
    r: &Replicated,
    i: usize,
    blocks: u64,
    within: Duration,
) -> Result<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let last = match verify(r, i) {
            Ok(v)
                if v["blocks"].as_u64().unwrap_or(0) >= blocks
                    && v["awaiting_endorsement"].as_u64() == Some(0) =>
            {
                return Ok(v);
            }
            Ok(v) => format!("{v}"),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() > deadline {
            bail!(
                "replica {i}: {blocks} verified blocks not reached within {within:?}; last: {last}\nlog:\n{}",
                r.replica_log(i)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
