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

    let url = r.replica(1).url();
    let round = shipper(Role::Edge, &edge_key, edge, &edge_spool, &url)
        .ship_once(&url)
        .await;
    assert!(round.errors.is_empty(), "{:?}", round.errors);
    assert_eq!((round.stored, round.duplicates), (4, 0));
    let url = r.replica(2).url();
    let round = shipper(Role::Super, &super_key, edge, &super_spool, &url)
        .ship_once(&url)
        .await;
    assert!(round.errors.is_empty(), "{:?}", round.errors);
    assert_eq!((round.stored, round.duplicates), (4, 0));

    // A replayed file (its acknowledgement lost): a duplicate, through yet another super.
    let last = super_spool.join(format!("epoch-{:020}", epochs[1]));
    std::fs::rename(last.with_extension("sent"), last.with_extension("json")).unwrap();
    let url = r.replica(3).url();
    let round = shipper(Role::Super, &super_key, edge, &super_spool, &url)
        .ship_once(&url)
        .await;
    assert!(round.errors.is_empty(), "{:?}", round.errors);
    // A duplicate, or, when replica 3 had not applied the first commit yet, the outcome of
    // that one commit (the same bytes are one transaction); stored once either way (below).
    assert_eq!(round.stored + round.duplicates, 2, "identical replay");

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
