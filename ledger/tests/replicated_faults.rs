//! Faults of the replicated ledger: a replica with a changed store, SIGKILL rounds of
//! replicas and CometBFT nodes, validator set changes through the registry.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use common::flip_every;
use common::hsnctl_json;
use common::replica::*;
use hsn_core::Direction;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_testkit::ledger_fixtures::Slot;
use hsn_testkit::ledger_net::replicated::{NETWORK, Replicated};

/// A replica whose store was changed behind its back computes another app hash at the
/// first block that touches the change: it stops (CometBFT refuses to go on with an app
/// hash the others did not commit) while the others go on. A copied store file verifies
/// offline, also right after a crash, and a flipped byte in it is named by block and
/// entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_replica_diverges_alone_and_verify_names_the_place() -> Result<()> {
    if let Err(skip) = hsn_testkit::require_binaries(&["cometbft"]) {
        eprintln!("skipped: {skip}");
        return Ok(());
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut r = Replicated::init(4, 1, Duration::from_secs(5), |s| {
        s.epoch_seconds = EPOCH;
        s.late_window_seconds = 20;
    })?;
    r.start_all()?;
    for i in 0..4 {
        r.net.wait_height(i, 2, Duration::from_secs(60)).await?;
    }
    // A sealed entry to flip in a copy, a pending one to flip in replica 3's own store.
    let epoch = now() / EPOCH;
    submit(&r, 0, pair(&r, 0, 0, epoch, "sealme", 1_000)).await?;
    let slot = Slot::new(NETWORK, epoch, "flipme", Direction::Uplink);
    let record = pb::SubmitRecordsRequest {
        records: vec![slot.record(&r.edges[0], 2_000, 2).to_pb()],
        observations: vec![],
    };
    submit(&r, 0, record).await?;
    let height = r.net.status(0).await?.height;
    // CometBFT stores a block before its application commits it: one more.
    r.net
        .wait_height(3, height + 1, Duration::from_secs(30))
        .await?;
    r.kill(3)?;
    // Changed through the store's own API (a flipped byte in the file is caught by redb's
    // page checksums, which roll the file back to its previous commit; CometBFT then
    // replays the blocks after it and the replica heals): the claim grows by one byte.
    {
        let store = hsn_ledger::store::Store::open(&r.db(3))?;
        let key = slot.record(&r.edges[0], 2_000, 2).body.key();
        store.write(|t| -> Result<()> {
            let mut entry = t.pending(&key)?.context("replica 3 holds the record")?;
            entry.record.as_mut().context("a record")?.body.bytes += 1;
            t.put_pending(&entry)?;
            Ok(())
        })?;
    }
    r.start(3)?;
    // The observation completes the entry: replica 3 no longer has its record.
    let observation = pb::SubmitRecordsRequest {
        records: vec![],
        observations: vec![
            slot.observation(&r.supers[1], NodeKey::of(&r.edges[0]), 2_000)
                .to_pb(),
        ],
    };
    let done = submit(&r, 1, observation).await?;
    assert_eq!(done.attested, 1, "{done:?}");
    let diverged_at = r.net.status(0).await?.height;
    r.net
        .wait_height(0, diverged_at + 5, Duration::from_secs(60))
        .await?;
    // CometBFT on replica 3 refuses to go on: in consensus "+2/3 committed an invalid
    // block: wrong Block.Header.AppHash", while still catching up the same error from
    // block sync; either way it stays behind while the others went on.
    let log_file = r.net.home(3).join("cometbft.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log_file)?.contains("wrong Block.Header.AppHash") {
        ensure!(
            Instant::now() < deadline,
            "replica 3 did not stop on its changed store:\n{}",
            r.net.log_tail(3, 20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let others = r.net.status(0).await?.height;
    r.net
        .wait_height(0, others + 5, Duration::from_secs(60))
        .await?;
    let three = r.net.status(3).await.map(|s| s.height).unwrap_or(0);
    ensure!(three < others + 5, "replica 3 went on to {three}");

    // Offline: a copy taken right after a crash verifies; a flipped byte is named.
    wait_verified(&r, 2, 1, Duration::from_secs(60)).await?;
    r.kill(2)?;
    let copy = r.dir.path().join("copy.redb");
    std::fs::copy(r.db(2), &copy)?;
    let copy_s = copy.display().to_string();
    let clean = hsnctl_json(&["ledger", "verify", "--db", &copy_s, "-o", "json"])?;
    assert!(clean["blocks"].as_u64().unwrap_or(0) >= 1, "{clean}");
    // Repaired in place (it is our copy) and closed cleanly, so redb reads the pages as
    // they are; a byte flipped in a file that still needs repair fails redb's checksums,
    // which hsnctl reports as a corrupt store.
    drop(hsn_ledger::store::Store::open(&copy)?);
    // Entries are in key order: "flipme" is entry 0, "sealme" entry 1.
    flip_every(&copy, b"sealme", b't')?;
    let tampered = common::hsnctl(&["ledger", "verify", "--db", &copy_s])?;
    let stderr = String::from_utf8(tampered.stderr)?;
    assert_eq!(tampered.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("verification failed at block 0, entry 1: record signature does not verify"),
        "{stderr}"
    );
    Ok(())
}

/// SIGKILL loops: each round kills one super node's replica (CometBFT then loses its
/// application and exits) or only its CometBFT node, while submissions stream through
/// another super node, then restarts it. At the end every acknowledged submission is on
/// every replica and every replica's chain verifies. `HSN_REPLICA_SIGKILL_ROUNDS` sets the
/// rounds (default 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_rounds_lose_no_acknowledged_record() -> Result<()> {
    if let Err(skip) = hsn_testkit::require_binaries(&["cometbft"]) {
        eprintln!("skipped: {skip}");
        return Ok(());
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let rounds: usize = std::env::var("HSN_REPLICA_SIGKILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut r = Replicated::init(4, 3, Duration::from_secs(5), |s| {
        s.epoch_seconds = EPOCH;
        s.late_window_seconds = 30;
    })?;
    r.start_all()?;
    for i in 0..4 {
        r.net.wait_height(i, 2, Duration::from_secs(60)).await?;
    }
    let mut acked = Vec::new();
    let mut seq = 0u64;
    for round in 0..rounds {
        let victim = round % 4;
        let via = (victim + 1) % 4;
        let replica_too = round % 2 == 0;
        let kill_after = Duration::from_millis(150 + 97 * (round as u64 % 5));
        let started = Instant::now();
        let mut killed = false;
        for _ in 0..6 {
            if !killed && started.elapsed() >= kill_after {
                if replica_too {
                    r.kill_replica(victim)?;
                } else {
                    r.kill_cometbft(victim);
                }
                killed = true;
            }
            seq += 1;
            let e = (seq % 3) as usize;
            let request = pair(&r, e, via, now() / EPOCH, &format!("k{seq}"), 1_000 + seq);
            let done = submit(&r, via, request.clone()).await;
            let done =
                done.map_err(|e| anyhow::anyhow!("round {round}, submission {seq}: {e:?}"))?;
            assert_eq!(done.stored + done.duplicates, 2, "{done:?}");
            acked.push(request);
        }
        if !killed {
            r.kill_replica(victim)?;
        }
        r.start(victim)?;
        let height = r.net.status(via).await?.height;
        r.net
            .wait_height(victim, height, Duration::from_secs(120))
            .await?;
    }
    let height = r.net.status(0).await?.height;
    for i in 0..4 {
        r.net
            .wait_height(i, height + 1, Duration::from_secs(120))
            .await?;
    }
    for i in 0..4 {
        for request in &acked {
            let again = submit(&r, i, request.clone()).await;
            let again = again.map_err(|e| anyhow::anyhow!("replica {i}: {e:?}"))?;
            assert_eq!(
                again.stored, 0,
                "replica {i} lacks an acknowledged submission: {again:?}"
            );
        }
        verify(&r, i)?;
    }
    eprintln!(
        "{rounds} rounds, {} acknowledged submissions, all on every replica",
        acked.len()
    );
    Ok(())
}

/// The validator set follows the registry's supers: an administrator's registry change
/// adding a super makes its (running, not yet validating) node a validator; removing one
/// takes it out, and the chain goes on without it; new ledger blocks list the new set and
/// verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_follow_registry_changes() -> Result<()> {
    use hsn_core::Role;
    use hsn_ledger::replica::registry::sign_change;
    use hsn_ledger_api::keys::RegisteredKey;
    if let Err(skip) = hsn_testkit::require_binaries(&["cometbft"]) {
        eprintln!("skipped: {skip}");
        return Ok(());
    }
    let _one = ONE_AT_A_TIME.lock().await;
    // Four nodes; the genesis registry names the first three supers only.
    let mut r = Replicated::init(4, 1, Duration::from_secs(5), |s| {
        s.epoch_seconds = EPOCH;
        s.late_window_seconds = 2;
        let fourth = s
            .nodes
            .iter()
            .position(|n| n.name == "super-3")
            .expect("super-3");
        s.nodes.remove(fourth);
    })?;
    r.start_all()?;
    for i in 0..4 {
        r.net.wait_height(i, 2, Duration::from_secs(60)).await?;
    }
    let validators = |v: &serde_json::Value| -> Vec<String> {
        v["validators"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v["name"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let status = |i: usize| {
        let url = r.replica(i).url();
        hsnctl_json(&["ledger", "--addr", &url, "status", "-o", "json"])
    };
    assert_eq!(validators(&status(3)?), ["super-0", "super-1", "super-2"]);

    let super3 = RegisteredKey {
        role: Role::Super,
        key: NodeKey::of(&r.supers[3]),
        name: "super-3".into(),
        retired: false,
    };
    let broadcast = hsn_ledger_api::registry::transaction;
    let add = broadcast(sign_change(NETWORK, 0, &[super3], &[], &r.admin));
    let result = r.net.broadcast_tx_sync(0, &add).await?;
    assert_eq!(result.code, 0, "{result:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while validators(&status(3)?).len() < 4 {
        ensure!(
            Instant::now() < deadline,
            "super-3 never joined: {}",
            status(3)?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A replayed change is refused (its nonce is used), as is one not signed by an admin.
    // (CometBFT's cache may refuse the same bytes before the ledger sees them.)
    match r.net.broadcast_tx_sync(1, &add).await {
        Ok(replayed) => assert_ne!(replayed.code, 0, "{replayed:?}"),
        Err(e) => ensure!(
            format!("{e:#}").contains("already exists in cache"),
            "{e:#}"
        ),
    }
    let stranger = hsn_testkit::ledger_fixtures::signing_key(4242);
    let forged = broadcast(sign_change(
        NETWORK,
        1,
        &[],
        &[NodeKey::of(&r.supers[1])],
        &stranger,
    ));
    let forged = r.net.broadcast_tx_sync(1, &forged).await?;
    assert_ne!(forged.code, 0, "{forged:?}");

    // Super-0 leaves; stopping it then leaves three of three validators: commits go on.
    let remove = broadcast(sign_change(
        NETWORK,
        1,
        &[],
        &[NodeKey::of(&r.supers[0])],
        &r.admin,
    ));
    assert_eq!(r.net.broadcast_tx_sync(1, &remove).await?.code, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while validators(&status(1)?).contains(&"super-0".to_owned()) {
        ensure!(
            Instant::now() < deadline,
            "super-0 never left: {}",
            status(1)?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // CometBFT applies a validator update two heights later: its own set is then 1, 2, 3.
    let at = r.net.status(1).await?.height;
    r.net
        .wait_height(1, at + 3, Duration::from_secs(30))
        .await?;
    let set = hsn_ledger_api::cometbft::call(r.net.rpc(1), "/validators").await?;
    let mut addresses: Vec<String> = set["validators"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v["address"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    addresses.sort();
    let mut expected: Vec<String> = r.supers[1..]
        .iter()
        .map(|k| hex::encode_upper(hsn_ledger::replica::validator_address(&NodeKey::of(k))))
        .collect();
    expected.sort();
    assert_eq!(addresses, expected, "CometBFT's validator set");
    r.kill(0)?;
    let epoch = now() / EPOCH;
    let done = submit(&r, 3, pair(&r, 0, 3, epoch, "after", 9_000)).await?;
    assert_eq!(
        done.attested, 1,
        "an observation by the new super: {done:?}"
    );
    let blocks = verify(&r, 1)?["blocks"].as_u64().unwrap_or(0);
    let v = wait_verified(&r, 3, blocks + 1, Duration::from_secs(60)).await?;
    let mut client = r.replica(3).client().await?;
    let height = v["blocks"].as_u64().unwrap_or(1) - 1;
    let last = client
        .get_block(pb::GetBlockRequest {
            height,
            include_entries: false,
        })
        .await?
        .into_inner();
    let signers = last
        .block
        .and_then(|b| b.header)
        .and_then(|h| h.header)
        .map(|h| h.signers)
        .unwrap_or_default();
    let expected: Vec<Vec<u8>> = {
        let mut keys: Vec<NodeKey> = r.supers[1..].iter().map(NodeKey::of).collect();
        keys.sort();
        keys.into_iter().map(|k| k.0.to_vec()).collect()
    };
    assert_eq!(
        signers, expected,
        "the newest block lists the new validator set"
    );
    Ok(())
}
