//! Crash safety: the real `hsn-ledger` is SIGKILLed at random points while clients stream
//! submissions, many times over, on the same store. After every restart the chain verifies,
//! every acknowledged record and observation is there, unchanged, and the request the kill
//! cut off is there entirely or not at all; at the end everything acknowledged is sealed
//! into blocks and the file verifies offline.
//!
//! `HSN_SIGKILL_ROUNDS` (default 20) and `HSN_SIGKILL_SEED` (default: the clock, printed)
//! reproduce a run.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::{Network, hsnctl_json, now};
use ed25519_dalek::SigningKey;
use hsn_core::Direction;
use hsn_ledger::chain::walk_remote;
use hsn_ledger::verify::VerifyOptions;
use hsn_ledger_api::pb::{self, ledger_client::LedgerClient};
use hsn_ledger_api::record::{RecordKey, SignedObservation, SignedRecord};
use hsn_testkit::ledger_fixtures::Slot;
use tonic::Code;
use tonic::transport::Channel;

/// Something the ledger acknowledged.
#[derive(Clone, Debug)]
enum Acked {
    Record(SignedRecord),
    Observation(SignedObservation),
}

impl Acked {
    fn key(&self) -> RecordKey {
        match self {
            Self::Record(r) => r.body.key(),
            Self::Observation(o) => o.body.key(),
        }
    }
}

/// splitmix64: small, seedable, good enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_appends_loses_no_acknowledged_record() -> Result<()> {
    let rounds = env_u64("HSN_SIGKILL_ROUNDS").unwrap_or(20);
    let seed = env_u64("HSN_SIGKILL_SEED").unwrap_or_else(|| now() ^ u64::from(std::process::id()));
    println!("HSN_SIGKILL_SEED={seed} HSN_SIGKILL_ROUNDS={rounds}");
    let mut rng = Rng(seed);
    let net = Network::new(8)?;
    let flags = [
        "--epoch-seconds",
        "1",
        "--grace-seconds",
        "1",
        "--seal-interval-ms",
        "50",
    ];
    let mut acked: Vec<Acked> = Vec::new();
    let mut kills_with_requests_in_flight = 0;
    let mut cut_off: Vec<Acked> = Vec::new();
    for round in 0..rounds {
        let mut server = net.start(&flags)?;
        let mut client = server.client().await?;
        check(&mut client, &acked)
            .await
            .with_context(|| format!("after restart {round}"))?;
        all_or_nothing(&mut client, &cut_off)
            .await
            .with_context(|| format!("after restart {round}"))?;
        let edges = net.edges.clone();
        let (sup, url) = (net.sup.clone(), server.url());
        let stream_seed = rng.next();
        let submitter = tokio::spawn(async move {
            submit_until_killed(&url, &edges, &sup, round, stream_seed).await
        });
        // The random kill point; what happens around it is the test.
        tokio::time::sleep(Duration::from_millis(20 + rng.below(400))).await;
        server.kill()?;
        let (round_acked, in_flight) =
            tokio::time::timeout(Duration::from_secs(30), submitter).await???;
        kills_with_requests_in_flight += usize::from(in_flight.is_some());
        cut_off = in_flight.unwrap_or_default();
        acked.extend(round_acked);
    }
    println!(
        "{} items acknowledged over {rounds} kills ({kills_with_requests_in_flight} mid-request)",
        acked.len()
    );
    ensure!(
        acked.len() as u64 >= rounds,
        "too few acknowledgements for the test to mean anything"
    );

    // One more restart: everything acknowledged gets sealed, and the file verifies offline.
    let mut server = net.start(&flags)?;
    let mut client = server.client().await?;
    check(&mut client, &acked).await?;
    all_or_nothing(&mut client, &cut_off).await?;
    let last_epoch = acked.iter().map(|a| a.key().epoch).max().unwrap_or(0);
    wait_sealed(&mut client, last_epoch).await?;
    for chunk in acked.chunks(1000) {
        let found = lookup(&mut client, chunk).await?;
        ensure!(
            found.iter().all(|l| l.sealed),
            "an acknowledged entry is not in a block"
        );
    }
    server.terminate()?;
    let db = net.files.db.display().to_string();
    hsnctl_json(&["ledger", "verify", "--db", &db, "-o", "json"]).context("offline verify")?;
    Ok(())
}

/// Streams batches (new records, plus observations of the previous batch's records) until
/// the server dies; returns what was acknowledged and the request the kill cut off, if any.
async fn submit_until_killed(
    url: &str,
    edges: &[SigningKey],
    sup: &SigningKey,
    round: u64,
    seed: u64,
) -> Result<(Vec<Acked>, Option<Vec<Acked>>)> {
    let mut rng = Rng(seed);
    let mut client = match hsn_ledger_api::client::connect(url, None).await {
        Ok(c) => c,
        Err(_) => return Ok((Vec::new(), None)),
    };
    let mut acked = Vec::new();
    let mut to_observe: Vec<SignedRecord> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for batch in 0..100_000u64 {
        ensure!(
            Instant::now() < deadline,
            "the server was not killed in time"
        );
        let epoch = now();
        let records: Vec<SignedRecord> = (0..1 + rng.below(8))
            .map(|i| {
                let edge = &edges[rng.below(edges.len() as u64) as usize];
                let slot = Slot::new(
                    "net-a",
                    epoch,
                    &format!("r{round}-b{batch}-{i}"),
                    Direction::Uplink,
                );
                slot.record(edge, 1000 + rng.below(1_000_000), batch)
            })
            .collect();
        let observations: Vec<SignedObservation> = to_observe
            .iter()
            .map(|r| {
                let slot = Slot::new("net-a", r.body.epoch, &r.body.tenant, r.body.direction);
                slot.observation(sup, r.body.node, r.body.bytes + rng.below(8192))
            })
            .collect();
        let request = pb::SubmitRecordsRequest {
            records: records.iter().map(SignedRecord::to_pb).collect(),
            observations: observations.iter().map(SignedObservation::to_pb).collect(),
        };
        let mut batch: Vec<Acked> = records.iter().cloned().map(Acked::Record).collect();
        batch.extend(observations.into_iter().map(Acked::Observation));
        match client.submit_records(request).await {
            Ok(_) => {
                acked.extend(batch);
                to_observe = records;
            }
            // Observations that arrive after their epoch was sealed: nothing was stored.
            Err(s) if s.code() == Code::FailedPrecondition => to_observe.clear(),
            Err(s)
                if matches!(
                    s.code(),
                    Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
                ) =>
            {
                return Ok((acked, Some(batch)));
            }
            Err(s) => bail!("unexpected refusal: {s:?}"),
        }
    }
    bail!("the server was not killed")
}

/// The chain verifies, and every acknowledged item is stored as acknowledged.
async fn check(client: &mut LedgerClient<Channel>, acked: &[Acked]) -> Result<()> {
    walk_remote(client, VerifyOptions::default(), |_, _| {}).await?;
    for chunk in acked.chunks(1000) {
        let found = lookup(client, chunk).await?;
        for (a, location) in chunk.iter().zip(found) {
            ensure!(location.found, "acknowledged {} is missing", a.key());
            ensure!(
                stored(a, &location),
                "acknowledged {} is stored differently",
                a.key()
            );
        }
    }
    Ok(())
}

/// A request cut off by the kill is stored entirely or not at all.
async fn all_or_nothing(client: &mut LedgerClient<Channel>, request: &[Acked]) -> Result<()> {
    if request.is_empty() {
        return Ok(());
    }
    let found = lookup(client, request).await?;
    let stored = request
        .iter()
        .zip(&found)
        .filter(|(a, l)| stored(a, l))
        .count();
    ensure!(
        stored == 0 || stored == request.len(),
        "{stored} of {} items of one cut-off request are stored",
        request.len()
    );
    Ok(())
}

/// Whether the entry at `location` holds exactly this half.
fn stored(a: &Acked, location: &pb::RecordLocation) -> bool {
    let Some(entry) = &location.entry else {
        return false;
    };
    match a {
        Acked::Record(r) => entry.record.as_ref() == Some(&r.to_pb()),
        Acked::Observation(o) => entry.observation.as_ref() == Some(&o.to_pb()),
    }
}

async fn lookup(
    client: &mut LedgerClient<Channel>,
    items: &[Acked],
) -> Result<Vec<pb::RecordLocation>> {
    let keys = items.iter().map(|a| a.key().to_pb()).collect();
    let found = client
        .lookup_records(pb::LookupRecordsRequest { keys })
        .await?
        .into_inner()
        .locations;
    ensure!(
        found.len() == items.len(),
        "lookup answered {} of {}",
        found.len(),
        items.len()
    );
    Ok(found)
}

/// Polls Status (bounded) until every epoch through `epoch` is sealed.
async fn wait_sealed(client: &mut LedgerClient<Channel>, epoch: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.status(pb::StatusRequest {}).await?.into_inner();
        if status.sealed_through.is_some_and(|s| s >= epoch) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "epoch {epoch} not sealed in 30 s: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
