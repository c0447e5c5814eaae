//! Rewards from the chain alone: each node's share of a pool is proportional to its
//! attested bytes over an epoch range. Disputed, unobserved and unclaimed entries earn
//! nothing. Pure and deterministic, so anyone holding the chain gets the same table.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::entry::{Entry, Status};
use hsn_ledger_api::keys::NodeKey;

/// One node's line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeReward {
    /// The edge node.
    pub node: NodeKey,
    /// Its name in the registry (the HsnNode), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sum over attested entries of min(claimed, observed) bytes.
    pub attested_bytes: u128,
    /// Attested entries counted.
    pub attested_entries: u64,
    /// Entries of the node that earned nothing (disputed or unobserved).
    pub excluded_entries: u64,
    /// Share of the pool, in parts per million (rounded down).
    pub share_ppm: u64,
    /// Units of the pool awarded.
    pub reward: u64,
}

/// The rewards of an epoch range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rewards {
    /// First epoch counted.
    pub from_epoch: u64,
    /// Last epoch counted.
    pub to_epoch: u64,
    /// Units shared out.
    pub pool: u64,
    /// Sum of every node's attested bytes.
    pub total_attested_bytes: u128,
    /// Per node, by key.
    pub nodes: Vec<NodeReward>,
    /// Disputed entries in the range.
    pub disputed: u64,
    /// Records never observed by a super node.
    pub unobserved: u64,
    /// Observations never claimed by an edge.
    pub unclaimed: u64,
    /// Every epoch up to this one is final (sealed: its late window is over); the epochs
    /// of the range after it may still gain records. Unknown when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_through: Option<u64>,
}

impl Rewards {
    /// Names the nodes `name_of` knows, and records which epochs are final.
    pub fn annotate(
        &mut self,
        name_of: impl Fn(&NodeKey) -> Option<String>,
        final_through: Option<u64>,
    ) {
        for n in &mut self.nodes {
            n.name = name_of(&n.node);
        }
        self.final_through = final_through;
    }

    /// Whether every epoch of the range is final.
    pub fn is_final(&self) -> bool {
        self.final_through.is_some_and(|f| f >= self.to_epoch)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    bytes: u128,
    attested: u64,
    excluded: u64,
}

/// Accumulates sealed entries, then shares a pool.
#[derive(Clone, Debug)]
pub struct RewardsBuilder {
    from: u64,
    to: u64,
    nodes: BTreeMap<NodeKey, Tally>,
    disputed: u64,
    unobserved: u64,
    unclaimed: u64,
}

impl RewardsBuilder {
    /// Counts epochs `from..=to`.
    pub fn new(from: u64, to: u64) -> Self {
        Self {
            from,
            to,
            nodes: BTreeMap::new(),
            disputed: 0,
            unobserved: 0,
            unclaimed: 0,
        }
    }

    /// Adds a sealed entry; entries outside the range are ignored.
    pub fn add(&mut self, entry: &Entry) {
        let key = entry.key();
        if key.epoch < self.from || key.epoch > self.to {
            return;
        }
        let status = entry.status(true);
        let tally = self.nodes.entry(key.node).or_default();
        match (status, &entry.record, &entry.observation) {
            (Status::Attested, Some(r), Some(o)) => {
                // The smaller number: claiming up to the tolerance above what the super
                // node saw earns nothing extra.
                tally.bytes += u128::from(r.body.bytes.min(o.body.bytes));
                tally.attested += 1;
            }
            (Status::Disputed, ..) => {
                tally.excluded += 1;
                self.disputed += 1;
            }
            (Status::Unobserved, ..) => {
                tally.excluded += 1;
                self.unobserved += 1;
            }
            _ => self.unclaimed += 1,
        }
    }

    /// Shares `pool` units: floor of the exact share each, then the units left over one
    /// each by largest remainder, ties to the smaller key.
    pub fn finish(self, pool: u64) -> Rewards {
        let total: u128 = self.nodes.values().map(|t| t.bytes).sum();
        let pool128 = u128::from(pool);
        let mut nodes: Vec<NodeReward> = Vec::with_capacity(self.nodes.len());
        let mut remainders: Vec<(u128, usize)> = Vec::new();
        for (node, t) in &self.nodes {
            if t.attested == 0 && t.excluded == 0 {
                continue;
            }
            let (reward, rem) = share(pool128, t.bytes, total);
            remainders.push((rem, nodes.len()));
            nodes.push(NodeReward {
                node: *node,
                name: None,
                attested_bytes: t.bytes,
                attested_entries: t.attested,
                excluded_entries: t.excluded,
                share_ppm: share(1_000_000, t.bytes, total).0,
                reward,
            });
        }
        let given: u64 = nodes.iter().map(|n| n.reward).sum();
        let left = if total == 0 { 0 } else { pool - given };
        // Stable sort keeps key order among equal remainders.
        remainders.sort_by_key(|&(rem, _)| std::cmp::Reverse(rem));
        for &(_, i) in remainders
            .iter()
            .take(usize::try_from(left).unwrap_or(usize::MAX))
        {
            nodes[i].reward += 1;
        }
        Rewards {
            from_epoch: self.from,
            to_epoch: self.to,
            pool,
            total_attested_bytes: total,
            nodes,
            disputed: self.disputed,
            unobserved: self.unobserved,
            unclaimed: self.unclaimed,
            final_through: None,
        }
    }
}

/// `units * part / total` rounded down, and the remainder, without overflow: u64 units
/// times a part below 2^64 fits u128; larger parts are scaled down first.
fn share(units: u128, part: u128, total: u128) -> (u64, u128) {
    if total == 0 {
        return (0, 0);
    }
    let shift = (128 - total.leading_zeros()).saturating_sub(64);
    let (part, total) = (part >> shift, (total >> shift).max(1));
    let product = units * part;
    let q = u64::try_from(product / total).unwrap_or(u64::MAX);
    (q, product % total)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    use super::*;
    use crate::attest::{Attester, Tolerance};
    use crate::entry::{Merge, Part, merge};
    use hsn_core::Direction;
    use hsn_testkit::ledger_fixtures::{Slot, signing_key};

    fn entry(edge: &SigningKey, epoch: u64, claimed: u64, observed: Option<u64>) -> Entry {
        let sup = signing_key(99);
        let attester = Attester::new(
            sup.clone(),
            Tolerance {
                bytes: 100,
                basis_points: 0,
            },
        );
        let slot = Slot::new("n", epoch, "t", Direction::Uplink);
        let Merge::Stored { entry, .. } = merge(
            None,
            &Part::Record(slot.record(edge, claimed, 1)),
            &attester,
        ) else {
            unreachable!()
        };
        let mut entry = *entry;
        if let Some(observed) = observed {
            let o = Part::Observation(slot.observation(&sup, NodeKey::of(edge), observed));
            let Merge::Stored { entry: e, .. } = merge(Some(&entry), &o, &attester) else {
                unreachable!()
            };
            entry = *e;
        }
        entry
    }

    #[test]
    fn proportional_to_attested_bytes_excluding_the_rest() {
        let (a, b, c) = (signing_key(1), signing_key(2), signing_key(3));
        let mut r = RewardsBuilder::new(5, 6);
        r.add(&entry(&a, 5, 3_000, Some(3_050))); // attested: min = 3000
        r.add(&entry(&a, 6, 1_000, Some(1_000))); // attested
        r.add(&entry(&b, 5, 4_000, Some(4_000))); // attested
        r.add(&entry(&b, 6, 9_000, Some(1_000))); // disputed
        r.add(&entry(&c, 5, 9_000, None)); // unobserved
        r.add(&entry(&c, 7, 9_000, Some(9_000))); // out of range
        let out = r.finish(1_000);
        assert_eq!(out.total_attested_bytes, 8_000);
        let by = |k: &SigningKey| {
            out.nodes
                .iter()
                .find(|n| n.node == NodeKey::of(k))
                .unwrap()
                .clone()
        };
        assert_eq!((by(&a).reward, by(&b).reward, by(&c).reward), (500, 500, 0));
        assert_eq!((by(&b).excluded_entries, by(&c).excluded_entries), (1, 1));
        assert_eq!((out.disputed, out.unobserved, out.unclaimed), (1, 1, 0));
    }

    #[test]
    fn nothing_attested_awards_nothing() {
        let mut r = RewardsBuilder::new(0, 10);
        r.add(&entry(&signing_key(1), 5, 9_000, Some(1)));
        let out = r.finish(1_000);
        assert_eq!(out.nodes[0].reward, 0);
        assert_eq!(out.total_attested_bytes, 0);
    }

    proptest! {
        #[test]
        fn shares_round_down_by_less_than_one_unit(bytes in prop::collection::vec(0u128..u128::from(u64::MAX), 1..20), pool in any::<u64>()) {
            let total: u128 = bytes.iter().sum();
            let mut given = 0u128;
            for &b in &bytes {
                let (q, _) = share(u128::from(pool), b, total);
                given += u128::from(q);
                // Rounded down from the exact share, never more than one unit short.
                if total > 0 && total < (1 << 64) {
                    prop_assert!(u128::from(q) * total <= u128::from(pool) * b);
                    prop_assert!((u128::from(q) + 1) * total > u128::from(pool) * b);
                }
            }
            prop_assert!(given <= u128::from(pool));
        }

        #[test]
        fn the_whole_pool_is_shared(parts in prop::collection::vec(1u64..1 << 40, 1..30), pool in any::<u64>()) {
            let mut r = RewardsBuilder::new(0, 0);
            for (i, p) in parts.iter().enumerate() {
                let tally = Tally { bytes: u128::from(*p), attested: 1, excluded: 0 };
                r.nodes.insert(NodeKey([i as u8; 32]), tally);
            }
            let out = r.finish(pool);
            let given: u128 = out.nodes.iter().map(|n| u128::from(n.reward)).sum();
            prop_assert_eq!(given, u128::from(pool));
        }
    }
}
