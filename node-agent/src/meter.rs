//! Epoch deltas of monotonic counters against the last persisted snapshot. Pure.

use std::collections::BTreeMap;

use crate::datapath::{CounterKey, Totals};

/// Monotonic counter values as of the end of the last persisted epoch.
pub type Snapshot = BTreeMap<CounterKey, Totals>;

/// What one epoch adds to each counter, and the snapshot to persist with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deltas {
    /// Non-zero changes, by key.
    pub deltas: Vec<(CounterKey, Totals)>,
    /// The counters just read; the next epoch is measured from here.
    pub after: Snapshot,
    /// Keys whose counter went backwards (pins removed, map recreated): counted from zero.
    pub resets: Vec<CounterKey>,
}

/// Computes the change from `before` to the counters `now`.
pub fn deltas(before: &Snapshot, now: &[(CounterKey, Totals)]) -> Deltas {
    let mut out = Deltas {
        deltas: Vec::new(),
        after: Snapshot::new(),
        resets: Vec::new(),
    };
    for &(key, current) in now {
        let previous = before.get(&key).copied().unwrap_or_default();
        let delta = if current.packets < previous.packets || current.bytes < previous.bytes {
            out.resets.push(key);
            current
        } else {
            Totals {
                packets: current.packets - previous.packets,
                bytes: current.bytes - previous.bytes,
            }
        };
        if delta != Totals::default() {
            out.deltas.push((key, delta));
        }
        out.after.insert(key, current);
    }
    out.deltas.sort_by_key(|(k, _)| *k);
    out
}

#[cfg(test)]
mod tests {
    use hsn_core::Direction;

    use super::*;

    fn key(tenant: u32, direction: Direction) -> CounterKey {
        CounterKey {
            tenant: hsn_core::TenantId::new(tenant).unwrap(),
            direction,
            edge: None,
        }
    }

    fn t(packets: u64, bytes: u64) -> Totals {
        Totals { packets, bytes }
    }

    #[test]
    fn deltas_are_differences_and_zero_changes_are_left_out() {
        let up = key(7, Direction::Uplink);
        let down = key(7, Direction::Downlink);
        let new = key(9, Direction::Uplink);
        let before = Snapshot::from([(up, t(3, 300)), (down, t(1, 50))]);
        let d = deltas(
            &before,
            &[(up, t(5, 520)), (down, t(1, 50)), (new, t(2, 80))],
        );
        assert_eq!(d.deltas, [(up, t(2, 220)), (new, t(2, 80))]);
        assert_eq!(d.after.len(), 3);
        assert_eq!(d.after[&up], t(5, 520));
        assert!(d.resets.is_empty());
    }

    #[test]
    fn a_counter_that_went_backwards_counts_from_zero() {
        let up = key(7, Direction::Uplink);
        let d = deltas(&Snapshot::from([(up, t(10, 1000))]), &[(up, t(2, 100))]);
        assert_eq!(d.deltas, [(up, t(2, 100))]);
        assert_eq!(d.resets, [up]);
    }
}
