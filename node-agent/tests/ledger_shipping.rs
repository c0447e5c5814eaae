//! The shipper against a real ledger server (`hsn_ledger::server::run`, what `hsn-ledger
//! serve` runs) on 127.0.0.1: spool files written by the agent's own spool code for an edge
//! and its super are shipped, sealed into blocks, attested and verified with
//! `hsnctl ledger verify`; a ledger that is down at first is retried until it is up; a
//! re-submission after a crash between acknowledgement and rename is an identical duplicate;
//! a super node whose own ledger is down ships to another super node's.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use ed25519_dalek::SigningKey;
use hsn_agent::index::{Desired, RoleState};
use hsn_agent::metrics::{Metrics, ReasonLabels};
use hsn_agent::shipper::{EdgeKeys, Shipper, ShipperConfig};
use hsn_agent::status::AgentStatus;
use hsn_core::Role;
use hsn_ledger::entry::Status as EntryStatus;
use hsn_ledger::verify::VerifyOptions;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

mod common;

use common::{past_epochs, spool_header, write_spool};

use hsn_testkit::ledger::{NETWORK, RunningLedger};

fn keys() -> (SigningKey, SigningKey, SigningKey) {
    let k = |b: u8| SigningKey::from_bytes(&[b; 32]);
    (k(11), k(22), k(33)) // edge agent, super agent, the ledger's own key
}

fn edge_addr() -> IpAddr {
    "10.0.0.5".parse().unwrap()
}

/// A free port on loopback, for a server started later.
fn reserve_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// The ledger the edge and its super node ship to, once it answers; `url` is `http://`.
async fn start_ledger(dir: &Path, listen: SocketAddr) -> (RunningLedger, String) {
    let (edge, sup, ledger_key) = keys();
    let nodes = [
        (Role::Edge, &edge, "edge-n1"),
        (Role::Super, &sup, "super-0"),
        (Role::Super, &ledger_key, "super-0-ledger"),
    ];
    let url = format!("http://{listen}");
    let ledger = RunningLedger::start(dir, listen, &ledger_key, &nodes, None)
        .wait_ready(|| async { hsn_ledger_api::client::connect(&url, None).await.is_ok() })
        .await;
    (ledger, url)
}

/// Closes `epochs` of `role` into `dir`; counters grow by `step` per epoch.
fn close_epochs(dir: &Path, role: Role, key: &SigningKey, epochs: &[u64], step: (u64, u64)) {
    let agent = format!("{}-test", role.as_str());
    let header = spool_header(
        NETWORK,
        role,
        &agent,
        hex::encode(key.verifying_key().as_bytes()),
    );
    let edge = (role == Role::Super).then(edge_addr);
    write_spool(dir, &header, edge, epochs, step);
}

fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    out.sort();
    out
}

fn shipper(role: Role, key: &SigningKey, spool: &Path, url: &str) -> (Shipper, Arc<Metrics>) {
    shipper_with(role, key, spool, url, |_| {})
}

fn shipper_with(
    role: Role,
    key: &SigningKey,
    spool: &Path,
    url: &str,
    adjust: impl FnOnce(&mut ShipperConfig),
) -> (Shipper, Arc<Metrics>) {
    let metrics = Metrics::register(&mut Registry::default());
    let mut c = ShipperConfig::new(NETWORK, role, key.clone(), spool.to_owned());
    c.endpoint = Some(url.to_owned());
    c.edge_keys = EdgeKeys(BTreeMap::from([(edge_addr(), NodeKey::of(&keys().0))]));
    c.interval = Duration::from_millis(100);
    c.backoff_initial = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(400);
    c.rpc_timeout = Duration::from_secs(10);
    adjust(&mut c);
    (Shipper::new(c, metrics.clone()), metrics)
}

/// Walks and verifies the whole chain over gRPC; returns every entry's status.
async fn chain_statuses(url: &str) -> Vec<EntryStatus> {
    let mut client = hsn_ledger_api::client::connect(url, None).await.unwrap();
    let mut statuses = Vec::new();
    let options = VerifyOptions {
        network: Some(NETWORK.into()),
        registry: None,
    };
    hsn_ledger::chain::walk_remote(&mut client, options, |_, entries| {
        statuses.extend(entries.iter().map(|e| e.status(true)));
    })
    .await
    .unwrap();
    statuses
}

#[tokio::test]
async fn edge_and_super_spools_become_attested_verified_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let (edge_key, super_key, _) = keys();
    let [e1, e2] = past_epochs();
    let (edge_spool, super_spool) = (tmp.path().join("edge"), tmp.path().join("super"));
    // The super sees a little less than the edge claims: within the 4096-byte tolerance.
    close_epochs(
        &edge_spool,
        Role::Edge,
        &edge_key,
        &[e1, e2],
        (25_600, 9_000),
    );
    close_epochs(
        &super_spool,
        Role::Super,
        &super_key,
        &[e1, e2],
        (25_000, 8_800),
    );
    let (ledger, url) = start_ledger(tmp.path(), reserve_port()).await;

    let (mut edge, edge_metrics) = shipper(Role::Edge, &edge_key, &edge_spool, &url);
    let round = edge.ship_once(&url).await;
    assert!(round.errors.is_empty(), "{:?}", round.errors);
    assert_eq!(round.sent, vec![e1, e2], "oldest first");
    assert_eq!((round.stored, round.duplicates, round.backlog), (4, 0, 0));
    assert_eq!(edge_metrics.ledger_shipped.get(), 4);
    assert_eq!(edge_metrics.ledger_backlog.get(), 0);

    let (mut sup, _) = shipper(Role::Super, &super_key, &super_spool, &url);
    let round = sup.ship_once(&url).await;
    assert!(round.errors.is_empty(), "{:?}", round.errors);
    assert_eq!((round.stored, round.duplicates), (4, 0));

    // Crash between the acknowledgement and the rename: the file is still unsent on restart.
    let last = super_spool.join(format!("epoch-{e2:020}"));
    std::fs::rename(last.with_extension("sent"), last.with_extension("json")).unwrap();
    let (mut restarted, metrics) = shipper(Role::Super, &super_key, &super_spool, &url);
    let round = restarted.ship_once(&url).await;
    assert!(round.errors.is_empty(), "{:?}", round.errors);
    assert_eq!(round.sent, vec![e2]);
    assert_eq!((round.stored, round.duplicates), (0, 2), "identical replay");
    assert_eq!(metrics.ledger_duplicates.get(), 2);

    // Seal, then check blocks, attestations and the whole chain.
    let mut client = hsn_ledger_api::client::connect(&url, None).await.unwrap();
    let sealed = client
        .seal_epochs(pb::SealEpochsRequest { through_epoch: e2 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sealed.blocks.len(), 2, "one block per epoch");
    let statuses = chain_statuses(&url).await;
    assert_eq!(statuses, vec![EntryStatus::Attested; 4], "no duplicates");
    let status = client
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((status.height, status.pending_entries), (2, 0));
    assert_eq!(status.evidence_count, 0, "no conflicting submissions");

    // `hsnctl ledger verify --keys`, in process.
    let cli = hsnctl::Cli::parse_from([
        "hsnctl",
        "ledger",
        "--addr",
        &url,
        "verify",
        "--keys",
        ledger.registry_file.to_str().unwrap(),
    ]);
    let mut out = Vec::new();
    hsnctl::run(cli, &mut out).await.unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(&format!(
            "chain verified: network {NETWORK}, 2 blocks, 4 entries"
        )),
        "verify output: {out}"
    );

    // Nothing left in either spool; the ack renamed, nothing deleted the newest snapshot.
    for dir in [&edge_spool, &super_spool] {
        assert!(files(dir, ".json").is_empty(), "{dir:?}");
        assert_eq!(files(dir, ".sent").len(), 2, "{dir:?}");
    }

    // A replay of a sealed epoch (crash after ack, before rename, then sealed) stays OK.
    let last = edge_spool.join(format!("epoch-{e2:020}"));
    std::fs::rename(last.with_extension("sent"), last.with_extension("json")).unwrap();
    let round = edge.ship_once(&url).await;
    assert!(round.errors.is_empty(), "{:?}", round.errors);
    assert_eq!((round.stored, round.duplicates), (0, 2));
    assert_eq!(chain_statuses(&url).await.len(), 4);
}

#[tokio::test]
async fn a_ledger_down_at_first_is_retried_until_it_is_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (edge_key, _, _) = keys();
    let [e1, e2] = past_epochs();
    let spool = tmp.path().join("edge");
    close_epochs(&spool, Role::Edge, &edge_key, &[e1, e2], (4_000, 1_000));
    let listen = reserve_port();
    let url = format!("http://{listen}");
    let (ship, metrics) = shipper(Role::Edge, &edge_key, &spool, &url);
    let (_desired_tx, desired) = watch::channel(None);
    let (_status_tx, status) = watch::channel(AgentStatus::default());
    let running = tokio::spawn(ship.run(desired, status));

    let connect_errors = || {
        metrics
            .ledger_submit_errors
            .get_or_create(&ReasonLabels { reason: "connect" })
            .get()
    };
    for _ in 0..400 {
        if connect_errors() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(connect_errors() >= 3, "retried while the ledger was down");
    assert_eq!(
        files(&spool, ".json").len(),
        2,
        "nothing acknowledged, nothing removed"
    );
    assert_eq!(metrics.ledger_backlog.get(), 2);

    let (_ledger, url) = start_ledger(tmp.path(), listen).await;
    for _ in 0..400 {
        if files(&spool, ".json").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        files(&spool, ".json").is_empty(),
        "shipped once the ledger was up"
    );
    assert_eq!(metrics.ledger_backlog.get(), 0);
    assert_eq!(metrics.ledger_shipped.get(), 4);
    running.abort();

    let mut client = hsn_ledger_api::client::connect(&url, None).await.unwrap();
    let status = client
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.pending_entries, 4, "every record arrived, once");
}

/// A super node whose own pod's ledger is down (restarting, or stopping with the pod while
/// the agent drains) ships its observations to another super node's ledger of the chain,
/// found in its routes table, and keeps trying its own in between.
#[tokio::test]
async fn a_super_whose_ledger_is_down_ships_to_another_supers() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, super_key, _) = keys();
    let [e1, e2] = past_epochs();
    let spool = tmp.path().join("super");
    close_epochs(&spool, Role::Super, &super_key, &[e1, e2], (25_000, 8_800));
    let listen = reserve_port();
    let (_other, other_url) = start_ledger(tmp.path(), listen).await;
    let own = format!("http://{}", reserve_port());
    let (ship, metrics) = shipper_with(Role::Super, &super_key, &spool, &own, |c| {
        c.ledger_port = listen.port();
    });
    let table = Desired {
        epoch_seconds: 60,
        tenants: Vec::new(),
        tenant_names: Default::default(),
        role: RoleState::Super {
            edges: Vec::new(),
            peers: vec![listen.ip()],
        },
    };
    let (_desired_tx, desired) = watch::channel(Some(Arc::new(table)));
    let (_status_tx, status) = watch::channel(AgentStatus::default());
    let running = tokio::spawn(ship.run(desired, status));
    for _ in 0..400 {
        if files(&spool, ".json").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.abort();
    assert!(
        files(&spool, ".json").is_empty(),
        "shipped to the other super node's ledger"
    );
    let connect_errors = metrics
        .ledger_submit_errors
        .get_or_create(&ReasonLabels { reason: "connect" })
        .get();
    assert!(connect_errors >= 1, "its own ledger was tried first");
    let mut client = hsn_ledger_api::client::connect(&other_url, None)
        .await
        .unwrap();
    let status = client
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.pending_entries, 4, "every observation arrived, once");
}
