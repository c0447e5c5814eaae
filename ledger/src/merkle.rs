//! Binary Merkle tree over BLAKE3 with domain-separated leaves (prefix 0x00) and inner
//! nodes (prefix 0x01), so a leaf can never pass for an inner node.
//!
//! Odd rule: when a level has an odd number of nodes, the last one is promoted to the next
//! level unchanged. Duplicating it instead (Bitcoin's rule) would give `[a, b, c]` and
//! `[a, b, c, c]` the same root.

/// A 32-byte BLAKE3 hash.
pub type Hash = [u8; 32];

/// Prefix of leaf hashes.
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of inner-node hashes.
pub const NODE_PREFIX: u8 = 0x01;
/// Root of an empty tree (blocks are never empty; defined for completeness).
pub const EMPTY_ROOT: Hash = [0; 32];

/// Hash of a leaf's data.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[LEAF_PREFIX]);
    h.update(data);
    *h.finalize().as_bytes()
}

/// Hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    *blake3::hash(&buf).as_bytes()
}

/// The root over leaf hashes; large trees use every core (see [`root_in_subtrees`]).
pub fn root(leaves: &[Hash]) -> Hash {
    match threads_for(leaves.len()) {
        0 | 1 => serial_root(leaves),
        threads => root_in_subtrees(leaves, leaves.len().div_ceil(threads).next_power_of_two()),
    }
}

/// The root computed from the roots of consecutive runs of `size` leaves, each on its own
/// thread. `size` must be a power of two: then every run starts at a multiple of `size` and
/// is a whole subtree (with the odd rule, a level's last node is promoted and never pairs
/// across a run's end), so the runs' roots are exactly the tree's nodes `log2(size)` levels
/// up, and their root is the tree's.
fn root_in_subtrees(leaves: &[Hash], size: usize) -> Hash {
    debug_assert!(size.is_power_of_two());
    serial_root(&split_map(leaves, size, serial_root))
}

fn serial_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return EMPTY_ROOT;
    }
    let mut level = next_level(leaves);
    while level.len() > 1 {
        level = next_level(&level);
    }
    level.first().copied().unwrap_or(leaves[0])
}

/// Below this many items, hashing stays on the calling thread (a thread costs more).
const PARALLEL_MIN: usize = 1 << 12;

/// `f` over `items`, in order; for large inputs the work is split across the machine's
/// cores (a block's leaf hashes). The result is the serial map's.
pub fn hash_all<T: Sync>(items: &[T], f: impl Fn(&T) -> Hash + Sync) -> Vec<Hash> {
    match threads_for(items.len()) {
        0 | 1 => items.iter().map(f).collect(),
        threads => split_map(items, items.len().div_ceil(threads), |part| {
            part.iter().map(&f).collect::<Vec<_>>()
        })
        .concat(),
    }
}

/// How many threads `n` items are worth: 1 below [`PARALLEL_MIN`], else up to one per core.
fn threads_for(n: usize) -> usize {
    if n < PARALLEL_MIN {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `f` of each run of `chunk` items, in order, the first on the calling thread and each
/// other on a scoped thread of its own.
fn split_map<T: Sync, R: Send>(items: &[T], chunk: usize, f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let mut parts = items.chunks(chunk.max(1));
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let f = &f;
    std::thread::scope(|s| {
        let others: Vec<_> = parts.map(|part| s.spawn(move || f(part))).collect();
        let mut out = Vec::with_capacity(others.len() + 1);
        out.push(f(first));
        out.extend(others.into_iter().map(|t| match t.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }));
        out
    })
}

fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node_hash(l, r),
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two"),
        })
        .collect()
}

/// A whole tree kept in memory, for giving many proofs of one block.
#[derive(Clone, Debug)]
pub struct Tree {
    /// Level 0 is the leaves; the last level is the root alone.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// Builds every level above `leaves`.
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let next = next_level(levels.last().map_or(&[][..], Vec::as_slice));
            levels.push(next);
        }
        Self { levels }
    }

    /// The root.
    pub fn root(&self) -> Hash {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(EMPTY_ROOT)
    }

    /// The proof for leaf `index`, or `None` when out of range.
    pub fn prove(&self, index: u32) -> Option<Proof> {
        let count = u32::try_from(self.levels[0].len()).ok()?;
        if index >= count {
            return None;
        }
        let mut i = index as usize;
        let mut siblings = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(i ^ 1) {
                siblings.push(*sibling);
            }
            i /= 2;
        }
        Some(Proof {
            index,
            count,
            siblings,
        })
    }
}

/// An inclusion proof: the leaf's position, the leaf count, and the sibling hashes from the
/// leaf up. The verifier derives left/right from position and count rather than trusting
/// flags, so a proof has exactly one valid shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// Position of the leaf.
    pub index: u32,
    /// Number of leaves in the tree.
    pub count: u32,
    /// Sibling hashes, leaf level first; levels where the node is promoted have none.
    pub siblings: Vec<Hash>,
}

/// The proof for leaf `index`, or `None` when out of range (builds the tree: use [`Tree`]
/// for many proofs of one block).
pub fn prove(leaves: &[Hash], index: u32) -> Option<Proof> {
    Tree::new(leaves.to_vec()).prove(index)
}

/// Why a proof does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// Index not below count.
    #[error("leaf index {index} is outside a tree of {count} leaves")]
    IndexOutOfRange {
        /// Claimed index.
        index: u32,
        /// Claimed count.
        count: u32,
    },
    /// Too few or too many siblings for the tree's shape.
    #[error("proof has {got} sibling hashes, the tree's shape needs {want}")]
    Shape {
        /// Present.
        got: usize,
        /// Needed.
        want: usize,
    },
    /// The path does not lead to the root.
    #[error("proof does not lead to the Merkle root")]
    RootMismatch,
}

/// Checks that `leaf` is at `proof.index` of the tree with root `root`.
pub fn verify(leaf: &Hash, proof: &Proof, root: &Hash) -> Result<(), ProofError> {
    if proof.index >= proof.count {
        return Err(ProofError::IndexOutOfRange {
            index: proof.index,
            count: proof.count,
        });
    }
    let want = path_length(proof.index, proof.count);
    if proof.siblings.len() != want {
        return Err(ProofError::Shape {
            got: proof.siblings.len(),
            want,
        });
    }
    let (mut i, mut n) = (proof.index, proof.count);
    let mut acc = *leaf;
    let mut siblings = proof.siblings.iter();
    while n > 1 {
        let promoted = i == n - 1 && n % 2 == 1;
        if !promoted {
            let sibling = siblings.next().ok_or(ProofError::RootMismatch)?;
            acc = if i % 2 == 0 {
                node_hash(&acc, sibling)
            } else {
                node_hash(sibling, &acc)
            };
        }
        i /= 2;
        n = n.div_ceil(2);
    }
    if &acc == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

fn path_length(mut i: u32, mut n: u32) -> usize {
    let mut len = 0;
    while n > 1 {
        if !(i == n - 1 && n % 2 == 1) {
            len += 1;
        }
        i /= 2;
        n = n.div_ceil(2);
    }
    len
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn small_trees_by_hand() {
        let l = leaves(3);
        assert_eq!(root(&l[..1]), l[0]);
        assert_eq!(root(&l[..2]), node_hash(&l[0], &l[1]));
        // Odd rule: the third leaf is promoted, not paired with itself.
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(root(&[]), EMPTY_ROOT);
    }

    #[test]
    fn subtree_roots_give_the_serial_root() {
        let l = leaves(70);
        for n in 1..=l.len() {
            for size in [1, 2, 4, 8, 16, 32, 64, 128] {
                assert_eq!(
                    root_in_subtrees(&l[..n], size),
                    serial_root(&l[..n]),
                    "{n} leaves in runs of {size}"
                );
            }
        }
    }

    #[test]
    fn large_trees_split_across_threads_give_the_serial_root_and_leaves() {
        for n in [PARALLEL_MIN, PARALLEL_MIN + 1, 3 * PARALLEL_MIN + 7] {
            let data: Vec<u64> = (0..n as u64).collect();
            let hashed = hash_all(&data, |i| leaf_hash(&i.to_be_bytes()));
            let serial: Vec<Hash> = data.iter().map(|i| leaf_hash(&i.to_be_bytes())).collect();
            assert_eq!(hashed, serial, "{n} leaves");
            assert_eq!(root(&hashed), serial_root(&serial), "{n} leaves");
            assert_eq!(root(&hashed), Tree::new(serial).root(), "{n} leaves");
        }
    }

    #[test]
    fn duplicating_the_last_leaf_changes_the_root() {
        let mut l = leaves(3);
        let r3 = root(&l);
        l.push(l[2]);
        assert_ne!(root(&l), r3);
    }

    #[test]
    fn leaves_and_nodes_are_domain_separated() {
        let l = leaves(2);
        let mut data = l[0].to_vec();
        data.extend_from_slice(&l[1]);
        assert_ne!(leaf_hash(&data), node_hash(&l[0], &l[1]));
    }

    #[test]
    fn count_must_come_from_the_signed_header() {
        let l = leaves(4);
        let inner = node_hash(&l[0], &l[1]);
        let fake = Proof {
            index: 0,
            count: 2,
            siblings: vec![node_hash(&l[2], &l[3])],
        };
        // An inner node presented with a made-up count of 2 folds to the root, which is why
        // verifiers take the count from the signed header: with the real count it fails.
        assert!(verify(&inner, &fake, &root(&l)).is_ok());
        let honest = Proof { count: 4, ..fake };
        assert!(verify(&inner, &honest, &root(&l)).is_err());
    }

    proptest! {
        #[test]
        fn every_leaf_proves_and_nothing_else_does(n in 1usize..200, pick in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
            let l = leaves(n);
            let r = root(&l);
            prop_assert_eq!(Tree::new(l.clone()).root(), r);
            let index = pick.index(n) as u32;
            let proof = prove(&l, index).unwrap();
            prop_assert_eq!(verify(&l[index as usize], &proof, &r), Ok(()));
            // Another leaf at this position fails.
            let other = leaf_hash(b"other");
            prop_assert!(verify(&other, &proof, &r).is_err());
            // A flipped sibling fails.
            if !proof.siblings.is_empty() {
                let mut bad = proof.clone();
                let s = flip.index(bad.siblings.len());
                bad.siblings[s][0] ^= 1;
                prop_assert!(verify(&l[index as usize], &bad, &r).is_err());
            }
            // A wrong position fails (when the tree has more than one leaf).
            if n > 1 {
                let mut moved = proof.clone();
                moved.index = (index + 1) % n as u32;
                prop_assert!(verify(&l[index as usize], &moved, &r).is_err());
            }
        }
    }

    #[test]
    fn out_of_range() {
        let l = leaves(3);
        assert!(prove(&l, 3).is_none());
        let p = Proof {
            index: 3,
            count: 3,
            siblings: vec![],
        };
        assert!(matches!(
            verify(&l[0], &p, &root(&l)),
            Err(ProofError::IndexOutOfRange { .. })
        ));
    }
}
