//! The ledger replicated over four super nodes on real CometBFT validators (loopback):
//! submissions through any super commit once on every replica, ledger blocks are endorsed
//! by a validator quorum through vote extensions and verify on every replica; a validator
//! down leaves the others committing and catches up; two down stop commits and
//! acknowledgements until one is back. Late records within and after the window.

mod common;

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use common::hsnctl_json;
use common::replica::*;
use hsn_core::Direction;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_testkit::ledger_fixtures::Slot;
use hsn_testkit::ledger_net::replicated::{NETWORK, Replicated};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_commit_once_endorse_and_survive_faults() -> Result<()> {
    if let Err(skip) = hsn_testkit::require_binaries(&["cometbft"]) {
        eprintln!("skipped: {skip}");
        return Ok(());
    }
    let _one = ONE_AT_A_TIME.lock().await;
    // The late window outlasts the two-validator outage below (the commit timeout, then a
    // restart), so the record held up in it is still on time.
    let mut r = Replicated::init(4, 3, Duration::from_secs(3), |s| {
        s.epoch_seconds = EPOCH;
        s.late_window_seconds = 12;
    })?;
    r.start_all()?;
    for i in 0..4 {
        r.net.wait_height(i, 2, Duration::from_secs(60)).await?;
    }

    // Through any replica, once: the same batch through another is a duplicate.
    let epoch = now() / EPOCH;
    let done = submit(&r, 1, pair(&r, 0, 0, epoch, "video", 1_000_000)).await?;
    assert_eq!((done.stored, done.attested), (2, 1), "{done:?}");
    // Through another replica: acknowledged with the outcome of the one commit (when that
    // replica had not applied it yet) or as duplicates; either way stored once (below).
    let again = submit(&r, 2, pair(&r, 0, 0, epoch, "video", 1_000_000)).await?;
    assert_eq!(again.stored + again.duplicates, 2, "{again:?}");
    // A refusal answers with the usual code, through the replica's check.
    let stranger = hsn_testkit::ledger_fixtures::signing_key(99);
    let slot = Slot::new(NETWORK, epoch, "video", Direction::Uplink);
    let unknown = pb::SubmitRecordsRequest {
        records: vec![slot.record(&stranger, 5, 1).to_pb()],
        observations: vec![],
    };
    let refused = submit(&r, 3, unknown).await.expect_err("unknown key");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // The epoch seals by block time on every replica, and a validator quorum endorses it.
    let mut heads = Vec::new();
    for i in 0..4 {
        let v = wait_verified(&r, i, 1, Duration::from_secs(60)).await?;
        heads.push(status(&r, i).await?.head_hash);
        assert_eq!(
            v["entries"].as_u64(),
            Some(1),
            "one entry, committed once: {v}"
        );
    }
    ensure!(
        heads.windows(2).all(|w| w[0] == w[1]) || heads.iter().any(Vec::is_empty),
        "heads differ: {heads:?}"
    );

    // One validator down: the others go on; everything acknowledged is on every replica.
    r.kill(3)?;
    let mut acked = Vec::new();
    for k in 0..6u64 {
        let epoch = now() / EPOCH;
        let request = pair(
            &r,
            (k % 3) as usize,
            (k % 3) as usize,
            epoch,
            &format!("t{k}"),
            10_000 + k,
        );
        let done = match submit(&r, (k % 3) as usize, request.clone()).await {
            Ok(done) => done,
            Err(e) => bail!("submission {k} with one validator down: {e:?}"),
        };
        assert!(done.stored + done.duplicates == 2, "{done:?}");
        acked.push(request);
    }
    r.start(3)?;
    r.net
        .wait_height(3, r.net.status(0).await?.height, Duration::from_secs(120))
        .await?;
    let blocks = verify(&r, 0)?["blocks"].as_u64().unwrap_or(0);
    wait_verified(&r, 3, blocks, Duration::from_secs(60)).await?;
    for request in &acked {
        let again = submit(&r, 3, request.clone()).await?;
        assert_eq!(
            again.stored, 0,
            "acknowledged before the restart, stored on the restarted replica: {again:?}"
        );
    }

    // Two down: no commit, no acknowledgement; one back: it resumes.
    r.kill(2)?;
    r.kill(3)?;
    let epoch = now() / EPOCH;
    let stuck = pair(&r, 0, 0, epoch, "stuck", 777);
    let refused = submit_once(&r, 0, stuck.clone())
        .await
        .expect_err("no quorum, no acknowledgement");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    r.start(2)?;
    let done = submit(&r, 0, stuck).await;
    let done = done.map_err(|e| anyhow::anyhow!("after a validator came back: {e:?}"))?;
    assert_eq!(done.stored + done.duplicates, 2, "{done:?}");
    let blocks = verify(&r, 0)?["blocks"].as_u64().unwrap_or(0);
    for i in 0..3 {
        wait_verified(&r, i, blocks, Duration::from_secs(60)).await?;
    }
    Ok(())
}

/// The single-machine mode is a one-validator chain through the same code. Records for an
/// epoch are accepted within its late window (here an hour and 20 s: one submitted an hour
/// after its epoch is stored, sealed when the window ends and rewarded); after the window
/// they are refused with their own reason. Rewards and status name nodes from the
/// replicated registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_records_within_the_window_are_paid_and_after_it_refused() -> Result<()> {
    if let Err(skip) = hsn_testkit::require_binaries(&["cometbft"]) {
        eprintln!("skipped: {skip}");
        return Ok(());
    }
    let _one = ONE_AT_A_TIME.lock().await;
    const EPOCH: u64 = 10;
    let mut r = Replicated::init(1, 2, Duration::from_secs(10), |s| {
        s.epoch_seconds = EPOCH;
        s.late_window_seconds = 3620;
    })?;
    r.start_all()?;
    r.net.wait_height(0, 2, Duration::from_secs(60)).await?;

    // Ended at least an hour ago, at most 3610 s ago: inside the window.
    let late = (now() - 3600) / EPOCH - 1;
    let done = submit(&r, 0, pair(&r, 0, 0, late, "video", 5_000_000)).await?;
    assert_eq!((done.stored, done.attested), (2, 1), "{done:?}");
    // Ended more than 3630 s ago: outside.
    let too_late = late - 3;
    let refused = submit(&r, 0, pair(&r, 1, 0, too_late, "video", 7))
        .await
        .expect_err("after the window");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let reason = refused
        .metadata()
        .get(hsn_ledger_api::refusal::REASON_METADATA);
    assert_eq!(
        reason.and_then(|v| v.to_str().ok()),
        Some("epoch_sealed"),
        "{refused:?}"
    );

    // Not final until the window ends; then sealed, endorsed and paid, by name.
    let url = r.replica(0).url();
    let rewards = |url: &str| {
        let (from, to) = (late.to_string(), late.to_string());
        hsnctl_json(&[
            "ledger", "--addr", url, "rewards", "--from", &from, "--to", &to, "-o", "json",
        ])
    };
    let early = rewards(&url)?;
    assert!(
        early["final_through"].as_u64().is_none_or(|f| f < late),
        "{early}"
    );
    wait_verified(&r, 0, 1, Duration::from_secs(60)).await?;
    let paid = rewards(&url)?;
    assert!(
        paid["final_through"].as_u64().is_some_and(|f| f >= late),
        "{paid}"
    );
    let node = &paid["nodes"][0];
    assert_eq!(node["name"], "edge-0", "{paid}");
    assert_eq!(node["node"], NodeKey::of(&r.edges[0]).to_string(), "{paid}");
    assert_eq!(node["attested_bytes"].as_u64(), Some(5_000_000), "{paid}");
    assert_eq!(node["reward"].as_u64(), Some(1_000_000), "{paid}");

    let status = hsnctl_json(&["ledger", "--addr", &url, "status", "-o", "json"])?;
    assert_eq!(status["replicated"], true, "{status}");
    assert_eq!(
        status["late_window_seconds"].as_u64(),
        Some(3620),
        "{status}"
    );
    assert_eq!(status["validators"][0]["name"], "super-0", "{status}");
    assert!(
        status["validators"][0]["last_signed_block"]
            .as_u64()
            .is_some(),
        "{status}"
    );
    Ok(())
}
