//! `status.ledger`: the network's chain as its super nodes report it. Each super agent
//! carries its ledger replica's head in its Lease ([`hsn_api::node::lease::LEDGER_ANNOTATION`]);
//! the status shows the most advanced report of a super node whose Lease is trusted and
//! fresh (most ledger blocks, then most CometBFT blocks), named after its HsnNode.

use hsn_api::network::LedgerHead;
use k8s_openapi::jiff::Timestamp;

use super::fetch::{Fetched, Verdict};
use super::nodes::super_node_name;
use crate::plan::SuperId;

/// The head `status.ledger` shows now, if any live super node reported one.
pub fn ledger_head(fetched: &Fetched, network: &str, now: Timestamp) -> Option<LedgerHead> {
    fetched
        .leases
        .iter()
        .flat_map(|(cluster, leases)| leases.iter().map(move |l| (cluster, l)))
        .filter(|(_, (_, info))| matches!(info.verdict, Verdict::Trusted(_)) && info.fresh(now))
        .filter_map(|(cluster, (name, info))| {
            let ordinal = SuperId::ordinal_of(name)?;
            let head = info.ledger.clone()?;
            Some((head, SuperId::new(cluster, ordinal)))
        })
        .max_by_key(|(head, _)| (head.height, head.chain_height))
        .map(|(head, id)| LedgerHead {
            reported_by: Some(super_node_name(network, &id)),
            ..head
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::network::fetch::tests::placed;
    use crate::network::fetch::{LeaseInfo, Leases};
    use crate::network::trust::Distrust;

    #[test]
    fn the_ledger_head_is_the_most_advanced_live_super_nodes_report() {
        let now: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let placed = placed();
        let head = |height, chain_height| LedgerHead {
            height,
            chain_height,
            head_hash: format!("{height:02}"),
            validators: 3,
            ..LedgerHead::default()
        };
        let lease = |verdict: &Verdict, expires: &str, ledger: LedgerHead| LeaseInfo {
            expires: Some(expires.parse().unwrap()),
            ledger: Some(ledger),
            verdict: verdict.clone(),
            ..LeaseInfo::default()
        };
        let fresh = "2026-11-26T10:00:10Z";
        let refused = Verdict::Refused(Distrust::NoSuchPod("x".into()));
        let fetched = |b: Leases| Fetched {
            members: vec![],
            leases: BTreeMap::from([
                (
                    "a".to_string(),
                    Leases::from([
                        ("super-0".into(), lease(&placed, fresh, head(5, 60))),
                        // Lapsed, refused, or an edge's: not the chain's voice.
                        (
                            "super-1".into(),
                            lease(&placed, "2026-11-26T09:59:00Z", head(9, 99)),
                        ),
                        ("super-2".into(), lease(&refused, fresh, head(9, 99))),
                        ("edge-n1".into(), lease(&placed, fresh, head(9, 99))),
                    ]),
                ),
                ("b".to_string(), b),
            ]),
            nodes: BTreeMap::new(),
            forged: vec![],
            reads: BTreeMap::new(),
        };
        let ahead = fetched(Leases::from([(
            "super-0".into(),
            lease(&placed, fresh, head(5, 61)),
        )]));
        let chosen = ledger_head(&ahead, "metro", now).unwrap();
        assert_eq!((chosen.height, chosen.chain_height), (5, 61));
        assert_eq!(chosen.reported_by.as_deref(), Some("metro.b.super-0"));
        let behind = fetched(Leases::new());
        assert_eq!(ledger_head(&behind, "metro", now).unwrap().chain_height, 60);
        assert_eq!(
            ledger_head(
                &fetched(Leases::new()),
                "metro",
                "2026-11-26T11:00:00Z".parse().unwrap()
            ),
            None,
            "nobody live: no report"
        );
    }
}
