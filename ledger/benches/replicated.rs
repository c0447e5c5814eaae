//! `make bench-ledger`, replication part: records per second committed by four validators
//! (`hsn-ledger replica` beside CometBFT, loopback) against one `hsn-ledger serve` in the
//! same run, with the same requests from the same concurrent clients, and the commit
//! latency of a submission (p50, p99). Prints figures; asserts nothing about time.
//!
//! Run: `cargo bench -p hsn-ledger --bench replicated` (`-- --requests N --batch M`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hsn_core::{Direction, Role};
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_testkit::ledger_fixtures::{LedgerFiles, Slot};
use hsn_testkit::ledger_net::LedgerProcess;
use hsn_testkit::ledger_net::replicated::{NETWORK, Replicated};

const CLIENTS: usize = 8;
const EPOCH: u64 = 60;

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `requests` requests of `batch` records and their observations, for an epoch that ended.
fn workload(r: &Replicated, requests: usize, batch: usize) -> Vec<pb::SubmitRecordsRequest> {
    let epoch = hsn_testkit_now() / EPOCH - 1;
    (0..requests)
        .map(|q| {
            let mut request = pb::SubmitRecordsRequest::default();
            for i in 0..batch {
                let e = (q * batch + i) % r.edges.len();
                let edge = &r.edges[e];
                let slot = Slot::new(NETWORK, epoch, &format!("t{q}-{i}"), Direction::Uplink);
                let bytes = 1_000_000 + i as u64;
                request
                    .records
                    .push(slot.record(edge, bytes, i as u64).to_pb());
                let sup = &r.supers[q % r.supers.len()];
                request
                    .observations
                    .push(slot.observation(sup, NodeKey::of(edge), bytes).to_pb());
            }
            request
        })
        .collect()
}

fn hsn_testkit_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Submits every request through `urls` (round robin) from `CLIENTS` concurrent clients,
/// retrying UNAVAILABLE; the wall time and each request's latency.
async fn run(urls: &[String], requests: &[pb::SubmitRecordsRequest]) -> (Duration, Vec<Duration>) {
    let queue = Arc::new(std::sync::Mutex::new(
        (0..requests.len()).collect::<Vec<_>>(),
    ));
    let requests = Arc::new(requests.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let url = urls[c % urls.len()].clone();
        let (queue, requests) = (queue.clone(), requests.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = hsn_ledger_api::client::connect(&url, None)
                .await
                .expect("connect");
            let mut latencies = Vec::new();
            loop {
                let Some(i) = queue.lock().expect("queue").pop() else {
                    return latencies;
                };
                let sent = Instant::now();
                loop {
                    match client.submit_records(requests[i].clone()).await {
                        Ok(_) => break,
                        Err(s) if s.code() == tonic::Code::Unavailable => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(s) => panic!("submission refused: {s:?}"),
                    }
                }
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client"));
    }
    (started.elapsed(), latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if let Err(skip) = hsn_testkit::require_binaries(&["cometbft"]) {
        println!("replicated ledger bench skipped: {skip}");
        return Ok(());
    }
    let (count, batch) = (arg("--requests", 48), arg("--batch", 250));
    let mut r = Replicated::init(4, 64, Duration::from_secs(30), |s| {
        s.epoch_seconds = EPOCH;
        s.late_window_seconds = 3600;
    })?;
    let work = workload(&r, count, batch);
    let records = count * batch;
    println!(
        "replicated ledger: {count} requests of {batch} records + {batch} observations, {CLIENTS} clients, \
        loopback; before: {}",
        hsn_testkit::machine()
    );

    // One ledger, the same registry, the same requests.
    let dir = tempfile::tempdir()?;
    let mut nodes: Vec<(Role, &ed25519_dalek::SigningKey, String)> = Vec::new();
    for (i, k) in r.supers.iter().enumerate() {
        nodes.push((Role::Super, k, format!("super-{i}")));
    }
    for (i, k) in r.edges.iter().enumerate() {
        nodes.push((Role::Edge, k, format!("edge-{i}")));
    }
    let named: Vec<(Role, &ed25519_dalek::SigningKey, &str)> =
        nodes.iter().map(|(r, k, n)| (*r, *k, n.as_str())).collect();
    let files = LedgerFiles::write(dir.path(), &r.supers[0], &named)?;
    let mut args = files.serve_args(NETWORK, ([127, 0, 0, 1], 0).into());
    args.extend(["--grace-seconds".into(), "3600".into()]);
    let single = LedgerProcess::start(&args, &dir.path().join("serve.log"))?;
    let (single_time, _) = run(&[single.url()], &work).await;
    drop(single);

    r.start_all()?;
    for i in 0..4 {
        r.net.wait_height(i, 2, Duration::from_secs(60)).await?;
    }
    let urls: Vec<String> = (0..4).map(|i| r.replica(i).url()).collect();
    let (replicated_time, mut latencies) = run(&urls, &work).await;
    latencies.sort();

    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    let (one, four) = (rate(single_time), rate(replicated_time));
    println!("one ledger (hsn-ledger serve):            {one:>10.0} records/s committed");
    println!("four validators (replica + CometBFT):      {four:>10.0} records/s committed");
    println!(
        "ratio four validators / one ledger:        {:>10.2}  (goal >= 0.50: {})",
        four / one,
        if four / one >= 0.5 { "met" } else { "not met" }
    );
    println!(
        "commit latency per submission (4 validators): p50 {:.0} ms, p99 {:.0} ms ({} submissions)",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len()
    );
    println!("after: {}", hsn_testkit::machine());
    Ok(())
}
