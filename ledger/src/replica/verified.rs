//! The transactions whose signatures a replica verified: each is verified once per replica
//! (at the first of the forwarder's check, CheckTx, FinalizeBlock), not at each. Keyed by
//! the transaction's hash, so only the exact bytes verified skip it; bounded (oldest
//! forgotten first).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use crate::merkle::Hash;

/// How many transaction hashes are remembered.
pub const CAPACITY: usize = 8192;

#[derive(Debug, Default)]
pub(super) struct Verified {
    inner: Mutex<(HashSet<Hash>, VecDeque<Hash>)>,
}

impl Verified {
    pub(super) fn contains(&self, hash: &Hash) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .contains(hash)
    }

    pub(super) fn insert(&self, hash: Hash) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (set, order) = &mut *guard;
        if set.insert(hash) {
            order.push_back(hash);
            if order.len() > CAPACITY
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let v = Verified::default();
        for i in 0..=CAPACITY as u32 {
            let mut h = [0; 32];
            h[..4].copy_from_slice(&i.to_be_bytes());
            v.insert(h);
        }
        assert!(!v.contains(&[0; 32]));
        let mut last = [0; 32];
        last[..4].copy_from_slice(&(CAPACITY as u32).to_be_bytes());
        assert!(v.contains(&last));
    }
}
