use hsn_api::network::{Prefix, Tenant};
use hsn_api::routes::{EdgeRoute, ROUTES_VERSION, SuperRoute};
use hsn_core::{SuperId, TenantId};
use prometheus_client::registry::Registry;

use super::*;
use crate::status::AgentStatus;

fn table() -> RoutesTable {
    RoutesTable {
        version: ROUTES_VERSION,
        network: "metro".into(),
        cluster: String::new(),
        epoch_seconds: 30,
        supers: vec![
            SuperRoute {
                id: SuperId::new("a", 0),
                address: Some("10.0.0.5".parse().unwrap()),
            },
            SuperRoute {
                id: SuperId::new("b", 0),
                address: None,
            },
        ],
        edges: vec![
            EdgeRoute::new("n1", SuperId::new("a", 0)),
            EdgeRoute {
                node: "n2".into(),
                super_id: SuperId::new("b", 0),
                address: Some("10.1.0.2".parse().unwrap()),
                public_key: Some("cd".repeat(32)),
                cluster: String::new(),
            },
        ],
        tenants: vec![Tenant {
            name: "acme".into(),
            id: 7,
            prefixes: vec![Prefix("10.7.0.0/16".into()), Prefix("2001:db8::/48".into())],
        }],
    }
}

fn json(t: &RoutesTable) -> String {
    serde_json::to_string(t).unwrap()
}

fn edge(node: &str) -> Me {
    Me::Edge { node: node.into() }
}

#[test]
fn an_edge_gets_its_super_and_the_tenants() {
    let d = compute(&json(&table()), "metro", &edge("n1")).unwrap();
    assert_eq!(d.epoch_seconds, 30);
    assert_eq!(d.tenant_names[&TenantId::new(7).unwrap()], "acme");
    assert_eq!(d.tenants[0].tenant.get(), 7);
    assert_eq!(d.tenants[0].prefixes.len(), 2);
    assert_eq!(
        d.role,
        RoleState::Edge {
            target: Some(SuperTarget {
                id: SuperId::new("a", 0),
                address: Some("10.0.0.5".parse().unwrap())
            }),
            // Every super node with an address: tunnelled downlink may come from any.
            supers: vec!["10.0.0.5".parse().unwrap()],
        }
    );
    let unrouted = compute(&json(&table()), "metro", &edge("n9")).unwrap();
    assert_eq!(
        unrouted.role,
        RoleState::Edge {
            target: None,
            supers: vec!["10.0.0.5".parse().unwrap()],
        }
    );
}

#[test]
fn a_super_gets_its_edges_disambiguated_by_cluster() {
    let any = Me::Super {
        ordinal: 0,
        cluster: None,
    };
    let nodes = |d: &Desired| match &d.role {
        RoleState::Super { edges, .. } => edges.iter().map(|e| e.node.clone()).collect::<Vec<_>>(),
        RoleState::Edge { .. } => panic!("not a super"),
    };
    let d = compute(&json(&table()), "metro", &any).unwrap();
    assert_eq!(nodes(&d), ["n1", "n2"]);
    let a = Me::Super {
        ordinal: 0,
        cluster: Some("a".into()),
    };
    let d = compute(&json(&table()), "metro", &a).unwrap();
    assert!(
        matches!(&d.role, RoleState::Super { peers, .. } if peers.is_empty()),
        "its own address is no peer, b/0 has none yet: {:?}",
        d.role
    );
    let b = Me::Super {
        ordinal: 0,
        cluster: Some("b".into()),
    };
    let d = compute(&json(&table()), "metro", &b).unwrap();
    assert_eq!(
        d.role,
        RoleState::Super {
            edges: vec![EdgePeer {
                node: "n2".into(),
                cluster: String::new(),
                address: Some("10.1.0.2".parse().unwrap()),
                public_key: Some("cd".repeat(32)),
            }],
            // a/0's ledger, where its spool goes while its own cannot take it (b/0 itself
            // is no peer, and has no address yet anyway).
            peers: vec!["10.0.0.5".parse().unwrap()],
        }
    );
    // A table that names its cluster tells a flag-less super node which one it is.
    let mut in_b = table();
    in_b.cluster = "b".into();
    let d = compute(&json(&in_b), "metro", &any).unwrap();
    assert_eq!(nodes(&d), ["n2"]);
}

#[test]
fn bad_tables_are_refused_with_a_label() {
    let cases: Vec<(String, &str)> = vec![
        ("{".into(), "malformed"),
        (
            {
                let mut t = table();
                t.tenants[0].prefixes.push(Prefix("10.0.0.0/33".into()));
                json(&t)
            },
            "bad_prefix",
        ),
        (
            {
                let mut t = table();
                t.edges[0].super_id = SuperId::new("c", 3);
                json(&t)
            },
            "unknown_super",
        ),
        (
            {
                let mut t = table();
                t.network = "other".into();
                json(&t)
            },
            "wrong_network",
        ),
        (
            {
                let mut t = table();
                t.tenants[0].id = -1;
                json(&t)
            },
            "tenant_id",
        ),
        (
            {
                let mut t = table();
                let mut second = t.tenants[0].clone();
                second.name = "other".into();
                second.id = 8;
                second.prefixes = vec![Prefix("10.7.1.0/16".into())];
                t.tenants.push(second);
                json(&t)
            },
            "prefix_conflict",
        ),
        (
            {
                let mut t = table();
                t.epoch_seconds = 0;
                json(&t)
            },
            "epoch",
        ),
    ];
    for (input, label) in cases {
        let err = compute(&input, "metro", &edge("n1")).unwrap_err();
        assert_eq!(err.label(), label, "{err}");
    }
}

#[test]
fn the_index_keeps_the_last_good_state_and_reports_the_error() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (desired_tx, desired_rx) = watch::channel(None);
    let (status_tx, status_rx) = watch::channel(AgentStatus::default());
    let index = Index::new(
        "metro".into(),
        edge("n1"),
        desired_tx,
        status_tx,
        metrics.clone(),
    );

    index.update(Ok(json(&table())));
    let good = desired_rx.borrow().clone().expect("published");
    assert!(status_rx.borrow().routes_error.is_none());

    index.update(Ok("{\"version\": 1".into()));
    assert_eq!(
        desired_rx.borrow().as_deref(),
        Some(&*good),
        "last good kept"
    );
    let error = status_rx
        .borrow()
        .routes_error
        .clone()
        .expect("error reported");
    assert!(error.contains("malformed"), "{error}");
    index.update(Err("ConfigMap hsn-routes deleted".into()));
    assert_eq!(desired_rx.borrow().as_deref(), Some(&*good));
    assert_eq!(metrics.routes_errors_total(IndexError::LABELS), 2);

    let mut moved = table();
    moved.edges[0].super_id = SuperId::new("b", 0);
    index.update(Ok(json(&moved)));
    assert!(status_rx.borrow().routes_error.is_none(), "error cleared");
    let now = desired_rx.borrow().clone().unwrap();
    assert_eq!(
        now.role,
        RoleState::Edge {
            target: Some(SuperTarget {
                id: SuperId::new("b", 0),
                address: None
            }),
            supers: vec!["10.0.0.5".parse().unwrap()],
        }
    );
}
