//! The shipper's unit tests: endpoints and the ledger's refusal reasons.

use prometheus_client::registry::Registry;

use super::*;
use crate::index::SuperTarget;
use hsn_core::SuperId;

fn desired(address: Option<IpAddr>) -> Desired {
    unassigned(address.into_iter().collect(), Some(address))
}

/// An edge's table: its target (`None`: unassigned) and the network's supers.
fn unassigned(supers: Vec<IpAddr>, target: Option<Option<IpAddr>>) -> Desired {
    Desired {
        epoch_seconds: 60,
        tenants: Vec::new(),
        tenant_names: Default::default(),
        role: RoleState::Edge {
            target: target.map(|address| SuperTarget {
                id: SuperId::new("a", 0),
                address,
            }),
            supers,
        },
    }
}

#[test]
fn an_edge_ships_to_its_supers_ledger_unless_overridden() {
    let metrics = Metrics::register(&mut Registry::default());
    let key = SigningKey::from_bytes(&[1; 32]);
    let mut c = ShipperConfig::new("metro", Role::Edge, key, "/nonexistent".into());
    let mut s = Shipper::new(c.clone(), metrics.clone());
    assert_eq!(s.endpoint(None), None, "no routes table yet");
    assert_eq!(
        s.endpoint(Some(&desired(None))),
        None,
        "address not known yet"
    );
    let v4 = desired(Some("10.1.2.3".parse().unwrap()));
    assert_eq!(
        s.endpoint(Some(&v4)).as_deref(),
        Some("http://10.1.2.3:7443")
    );
    let v6 = desired(Some("fd00::5".parse().unwrap()));
    assert_eq!(
        s.endpoint(Some(&v6)).as_deref(),
        Some("http://[fd00::5]:7443")
    );
    let mut tls = c.clone();
    tls.tls = Some(ClientTls::default());
    let mut s = Shipper::new(tls, metrics.clone());
    assert_eq!(
        s.endpoint(Some(&v4)).as_deref(),
        Some("https://10.1.2.3:7443"),
        "--ledger-ca"
    );
    c.endpoint = Some("http://127.0.0.1:7400".into());
    let mut s = Shipper::new(c, metrics);
    assert_eq!(
        s.endpoint(Some(&v4)).as_deref(),
        Some("http://127.0.0.1:7400")
    );
}

#[test]
fn an_unassigned_edge_ships_to_its_last_super_while_listed_else_to_any() {
    let key = SigningKey::from_bytes(&[1; 32]);
    let c = ShipperConfig::new("metro", Role::Edge, key, "/nonexistent".into());
    let mut s = Shipper::new(c, Metrics::register(&mut Registry::default()));
    let [a, b]: [IpAddr; 2] = ["10.1.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap()];
    assert_eq!(
        s.endpoint(Some(&unassigned(vec![a, b], None))).as_deref(),
        Some("http://10.1.0.1:7443"),
        "never assigned: the first super listed"
    );
    let mut assigned = unassigned(vec![a, b], Some(Some(b)));
    assert_eq!(
        s.endpoint(Some(&assigned)).as_deref(),
        Some("http://10.1.0.2:7443")
    );
    assert_eq!(
        s.endpoint(Some(&unassigned(vec![a, b], None))).as_deref(),
        Some("http://10.1.0.2:7443"),
        "dropped: the super it last shipped to"
    );
    assert_eq!(
        s.endpoint(Some(&unassigned(vec![a, b], Some(None))))
            .as_deref(),
        Some("http://10.1.0.2:7443"),
        "its super's address not known (yet): the last one"
    );
    assert_eq!(
        s.endpoint(Some(&unassigned(vec![a], None))).as_deref(),
        Some("http://10.1.0.1:7443"),
        "the last one left the network: another"
    );
    assert_eq!(s.endpoint(Some(&unassigned(Vec::new(), None))), None);
    if let RoleState::Edge { target, .. } = &mut assigned.role {
        *target = None;
    }
    assert_eq!(
        s.endpoint(Some(&assigned)).as_deref(),
        Some("http://10.1.0.1:7443")
    );
}

#[test]
fn a_super_whose_ledger_fails_tries_the_other_supers_ledgers_in_turn() {
    let key = SigningKey::from_bytes(&[1; 32]);
    let mut c = ShipperConfig::new("metro", Role::Super, key, "/nonexistent".into());
    c.endpoint = Some("https://127.0.0.1:7443".into());
    c.tls = Some(ClientTls::default());
    let mut s = Shipper::new(c, Metrics::register(&mut Registry::default()));
    let [a, b]: [IpAddr; 2] = ["10.1.0.1".parse().unwrap(), "fd00::2".parse().unwrap()];
    let with_peers = |peers: Vec<IpAddr>| Desired {
        epoch_seconds: 60,
        tenants: Vec::new(),
        tenant_names: Default::default(),
        role: RoleState::Super {
            edges: Vec::new(),
            peers,
        },
    };
    let peers = with_peers(vec![a, b]);
    let mut seen = Vec::new();
    for failed in 0..6 {
        s.failed_rounds = failed;
        seen.push(s.endpoint(Some(&peers)).unwrap());
    }
    assert_eq!(
        seen,
        [
            "https://127.0.0.1:7443",
            "https://10.1.0.1:7443",
            "https://127.0.0.1:7443",
            "https://[fd00::2]:7443",
            "https://127.0.0.1:7443",
            "https://10.1.0.1:7443",
        ],
        "its own ledger first and every other round"
    );
    s.failed_rounds = 1;
    assert_eq!(
        s.endpoint(Some(&with_peers(Vec::new()))).as_deref(),
        Some("https://127.0.0.1:7443"),
        "the only super node: its own ledger, always"
    );
    assert_eq!(s.endpoint(None).as_deref(), Some("https://127.0.0.1:7443"));
}

#[test]
fn refusal_reasons_come_from_the_ledgers_metadata() {
    let mut status = tonic::Status::failed_precondition("sealed");
    status
        .metadata_mut()
        .insert(REASON_METADATA, "epoch_sealed".parse().unwrap());
    let e = rpc_error(5, status);
    assert_eq!(e.label(), "epoch_sealed");
    assert!(!e.ends_round(), "one file refused: try the next");
    let e = rpc_error(5, tonic::Status::unavailable("down"));
    assert_eq!(e.label(), "unavailable");
    assert!(e.ends_round());
    let mut odd = tonic::Status::invalid_argument("x");
    odd.metadata_mut()
        .insert(REASON_METADATA, "made-up".parse().unwrap());
    assert_eq!(
        rpc_error(0, odd).label(),
        "rpc_other",
        "labels stay bounded"
    );
}
