//! Four CometBFT validators on loopback with the built-in kvstore: they commit, a
//! transaction sent through one is readable from another, one killed leaves the others
//! committing and catches up after a restart, two killed stop all commits until one returns.

use std::time::Duration;

use anyhow::{Result, ensure};
use hsn_testkit::comet::{App, CometNet};

const TIMEOUT: Duration = Duration::from_secs(120);

/// Sends `key=value` through validator `via` and waits until validator `read` serves it.
async fn put(net: &CometNet, via: usize, read: usize, key: &str, value: &str) -> Result<()> {
    let tx = format!("{key}={value}");
    let result = net.broadcast_tx_sync(via, tx.as_bytes()).await?;
    ensure!(result.code == 0, "CheckTx refused {tx}: {result:?}");
    hsn_testkit::wait_for_ok(
        &format!("{key} readable at validator {read}"),
        TIMEOUT,
        || async {
            let got = net
                .abci_query(read, key.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            if got == value.as_bytes() {
                Ok(())
            } else {
                Err(format!("{key} = {:?}", String::from_utf8_lossy(&got)))
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_commit_survive_one_loss_and_stop_without_quorum() -> Result<()> {
    let mut net = CometNet::init(&[App::Kvstore, App::Kvstore, App::Kvstore, App::Kvstore])?;
    net.start_all()?;
    for i in 0..4 {
        net.wait_height(i, 3, TIMEOUT).await?;
    }
    put(&net, 1, 0, "alpha", "1").await?;

    // One of four down: the other three hold more than 2/3 of the power.
    net.kill(3);
    let before = net.status(0).await?.height;
    net.wait_height(0, before + 5, TIMEOUT).await?;
    put(&net, 2, 1, "beta", "2").await?;

    // Back: it replays what it missed and serves it.
    net.start(3)?;
    let target = net.status(0).await?.height;
    net.wait_height(3, target, TIMEOUT).await?;
    hsn_testkit::wait_for_ok("beta at the restarted validator", TIMEOUT, || async {
        let got = net
            .abci_query(3, b"beta")
            .await
            .map_err(|e| e.to_string())?;
        (got == b"2")
            .then_some(())
            .ok_or_else(|| format!("{got:?}"))
    })
    .await?;

    // Two of four down: no quorum, no block.
    net.kill(2);
    net.kill(3);
    // A block being finalized when they died may still land; after that nothing can.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stalled = net.status(0).await?.height;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = net.status(0).await?.height;
    ensure!(
        after == stalled,
        "committed without quorum: {stalled} → {after}"
    );

    // One back: three of four again, commits resume.
    net.start(2)?;
    net.wait_height(0, stalled + 3, TIMEOUT).await?;
    let s = net.status(0).await?;
    println!(
        "chain {}: height {} app hash {}",
        net.chain_id(),
        s.height,
        s.app_hash
    );
    Ok(())
}
