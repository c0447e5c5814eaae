//! The agents' shipping against the replicated ledger: edge and super spools shipped
//! through different super nodes of a four-validator network (real CometBFT, real
//! `hsn-ledger replica` processes) are acknowledged once committed, attested on every
//! replica, and a replayed spool file is a duplicate.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use hsn_agent::metrics::Metrics;
use hsn_agent::shipper::{EdgeKeys, Shipper, ShipperConfig};
use hsn_core::Role;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_testkit::ledger_net::replicated::{NETWORK, Replicated};
use prometheus_client::registry::Registry;

mod common;

use common::{past_epochs, spool_header, write_spool};

fn edge_addr() -> IpAddr {
    "10.0.0.5".parse().unwrap()
}

fn shipper(role: Role, key: &SigningKey, edge: NodeKey, spool: &Path, url: &str) -> Shipper {
    let metrics = Metrics::register(&mut Registry::default());
    let mut c = ShipperConfig::new(NETWORK, role, key.clone(), spool.to_owned());
    c.endpoint = Some(url.to_owned());
    c.edge_keys = EdgeKeys(BTreeMap::from([(edge_addr(), edge)]));
    c.rpc_timeout = Duration::from_secs(30);
    Shipper::new(c, metrics)
}

/// Rounds [`ship_all`] makes at most.
const ROUNDS: usize = 5;

/// Ships `shipper`'s spool to `url` until every file is acknowledged, as the agent's
/// shipper does: a round the ledger could not commit in time ("resubmit", Unavailable) is
/// sent again (identical submissions are idempotent), at most [`ROUNDS`] rounds. The items
/// the acknowledging rounds stored, and found already stored (a timed-out round's
/// transaction that committed after all is found again).
async fn ship_all(shipper: &mut Shipper, url: &str) -> (u64, u64) {
    let (mut stored, mut duplicates) = (0, 0);
    for _ in 0..ROUNDS {
        let round = shipper.ship_once(url).await;
        stored += round.stored;
        duplicates += round.duplicates;
        if round.errors.is_empty() {
            return (stored, duplicates);
        }
        assert!(
            round.errors.iter().all(|(_, e)| e.label() == "unavailable"),
            "{:?}",
            round.errors
        );
    }
    panic!("not acknowledged in {ROUNDS} rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spools_ship_to_the_replicated_ledger() {
    if let Err(skip) = hsn_testkit::require_binaries(&["cometbft"]) {
        eprintln!("skipped: {skip}");
        return;
    }
    let mut r = Replicated::init(4, 1, Duration::from_secs(10), |s| {
        s.epoch_seconds = u64::from(hsn_testkit::ledger::EPOCH_SECONDS);
        s.late_window_seconds = 3600;
    })
    .unwrap();
    r.start_all().unwrap();
    for i in 0..4 {
        r.net
            .wait_height(i, 2, Duration::from_secs(60))
            .await
            .unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let epochs = past_epochs();
    let (edge_key, super_key) = (r.edges[0].clone(), r.supers[0].clone());
    let edge = NodeKey::of(&edge_key);
    let spool = |role: Role, key: &SigningKey, step| {
        let dir = tmp.path().join(role.as_str());
        let header = spool_header(
            NETWORK,
            role,
            "agent",
            hex::encode(key.verifying_key().as_bytes()),
        );
        let observed = (role == Role::Super).then(edge_addr);
        write_spool(&dir, &header, observed, &epochs, step);
        dir
    };
    let edge_spool = spool(Role::Edge, &edge_key, (25_600, 9_000));
    let super_spool = spool(Role::Super, &super_key, (25_000, 8_800));

    // Each item stored once (below, on every replica), reported stored, or as a duplicate
    // when a round that timed out committed after all.
    let url = r.replica(1).url();
    let mut edge_shipper = shipper(Role::Edge, &edge_key, edge, &edge_spool, &url);
    let (stored, duplicates) = ship_all(&mut edge_shipper, &url).await;
    assert_eq!(stored + duplicates, 4);
    let url = r.replica(2).url();
    let mut super_shipper = shipper(Role::Super, &super_key, edge, &super_spool, &url);
    let (stored, duplicates) = ship_all(&mut super_shipper, &url).await;
    assert_eq!(stored + duplicates, 4);

    // A replayed file (its acknowledgement lost): a duplicate, through yet another super.
    let last = super_spool.join(format!("epoch-{:020}", epochs[1]));
    std::fs::rename(last.with_extension("sent"), last.with_extension("json")).unwrap();
    let url = r.replica(3).url();
    let mut replayer = shipper(Role::Super, &super_key, edge, &super_spool, &url);
    let (stored, duplicates) = ship_all(&mut replayer, &url).await;
    // A duplicate, or, when replica 3 had not applied the first commit yet, the outcome of
    // that one commit (the same bytes are one transaction); stored once either way (below).
    assert_eq!(stored + duplicates, 2, "identical replay");

    // On every replica: the four entries, each attested.
    let height = r.net.status(2).await.unwrap().height;
    for i in 0..4 {
        r.net
            .wait_height(i, height + 1, Duration::from_secs(60))
            .await
            .unwrap();
        let mut client = r.replica(i).client().await.unwrap();
        let status = client
            .status(pb::StatusRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.pending_entries, 4, "replica {i}: {status:?}");
        let verdicts: Vec<i32> = {
            let mut keys = Vec::new();
            for &epoch in &epochs {
                for direction in [pb::Direction::Uplink, pb::Direction::Downlink] {
                    keys.push(pb::RecordKey {
                        epoch,
                        node_key: edge.0.to_vec(),
                        tenant: "acme".into(),
                        direction: direction as i32,
                    });
                }
            }
            let found = client
                .lookup_records(pb::LookupRecordsRequest { keys })
                .await
                .unwrap()
                .into_inner();
            found
                .locations
                .iter()
                .map(|l| {
                    l.entry
                        .as_ref()
                        .and_then(|e| e.judgement.as_ref())
                        .map_or(0, |j| j.verdict)
                })
                .collect()
        };
        assert_eq!(
            verdicts,
            vec![pb::Verdict::Attested as i32; 4],
            "replica {i}"
        );
    }
}
