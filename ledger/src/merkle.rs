//! Binary Merkle tree with domain-separated leaves (prefix 0x00) and inner nodes (prefix
//! 0x01), so a leaf can never pass for an inner node, over SHA-256 or, in chains begun
//! before block versions 3 and 4, BLAKE3 ([`TreeHash`]).
//!
//! Odd rule: when a level has an odd number of nodes, the last one is promoted to the next
//! level unchanged. Duplicating it instead (Bitcoin's rule) would give `[a, b, c]` and
//! `[a, b, c, c]` the same root.

use sha2::Digest;

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// Prefix of leaf hashes.
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of inner-node hashes.
pub const NODE_PREFIX: u8 = 0x01;
/// Root of an empty tree (blocks are never empty; defined for completeness).
pub const EMPTY_ROOT: Hash = [0; 32];

/// The hash function of a chain's Merkle trees, fixed for the chain by its first block
/// (the header version says which).
///
/// SHA-256 because a leaf is one short input (an entry's ~420 canonical bytes) and a node
/// 65 bytes: BLAKE3 runs the compressions of one short input one after the other, while
/// SHA-256 has instructions in today's x86 and Arm cores (`make bench-ledger` prints the
/// tree of 1,000,000 leaves with both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TreeHash {
    /// BLAKE3: blocks of versions 1 and 2, chains begun before SHA-256 trees.
    Blake3,
    /// SHA-256: blocks of versions 3 and 4.
    Sha256,
}

impl TreeHash {
    /// The hash of a new chain's trees.
    pub const NEW: Self = Self::Sha256;

    /// Hash of a leaf's data.
    pub fn leaf(self, data: &[u8]) -> Hash {
        self.hash(&[&[LEAF_PREFIX], data])
    }

    /// Hash of an inner node.
    pub fn node(self, left: &Hash, right: &Hash) -> Hash {
        self.hash(&[&[NODE_PREFIX], left, right])
    }

    fn hash(self, parts: &[&[u8]]) -> Hash {
        match self {
            Self::Blake3 => {
                let mut h = blake3::Hasher::new();
                parts.iter().for_each(|p| {
                    h.update(p);
                });
                *h.finalize().as_bytes()
            }
            Self::Sha256 => {
                let mut h = sha2::Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().into()
            }
        }
    }

    /// Lowercase name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blake3 => "blake3",
            Self::Sha256 => "sha256",
        }
    }
}

/// The root over leaf hashes; large trees use every core (see [`root_in_subtrees`]).
pub fn root(tree: TreeHash, leaves: &[Hash]) -> Hash {
    match threads_for(leaves.len()) {
        0 | 1 => serial_root(tree, leaves),
        threads => {
            let size = leaves.len().div_ceil(threads).next_power_of_two();
            root_in_subtrees(tree, leaves, size)
        }
    }
}

/// The root computed from the roots of consecutive runs of `size` leaves, each on its own
/// thread. `size` must be a power of two: then every run starts at a multiple of `size` and
/// is a whole subtree (with the odd rule, a level's last node is promoted and never pairs
/// across a run's end), so the runs' roots are exactly the tree's nodes `log2(size)` levels
/// up, and their root is the tree's.
fn root_in_subtrees(tree: TreeHash, leaves: &[Hash], size: usize) -> Hash {
    debug_assert!(size.is_power_of_two());
    let runs = split_map(leaves, size, |run| serial_root(tree, run));
    serial_root(tree, &runs)
}

fn serial_root(tree: TreeHash, leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return EMPTY_ROOT;
    }
    let mut level = next_level(tree, leaves);
    while level.len() > 1 {
        level = next_level(tree, &level);
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

fn next_level(tree: TreeHash, level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => tree.node(l, r),
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
    pub fn new(tree: TreeHash, leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let next = next_level(tree, levels.last().map_or(&[][..], Vec::as_slice));
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
pub fn prove(tree: TreeHash, leaves: &[Hash], index: u32) -> Option<Proof> {
    Tree::new(tree, leaves.to_vec()).prove(index)
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
/// `tree` is the hash of the block's chain (its header version says which).
pub fn verify(tree: TreeHash, leaf: &Hash, proof: &Proof, root: &Hash) -> Result<(), ProofError> {
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
                tree.node(&acc, sibling)
            } else {
                tree.node(sibling, &acc)
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

    const BOTH: [TreeHash; 2] = [TreeHash::Blake3, TreeHash::Sha256];

    fn leaves(tree: TreeHash, n: usize) -> Vec<Hash> {
        (0..n).map(|i| tree.leaf(&i.to_be_bytes())).collect()
    }

    #[test]
    fn hashes_are_pinned() {
        // SHA-256 of the bare leaf prefix: RFC 6962's hash of an empty leaf.
        let sha = TreeHash::Sha256;
        assert_eq!(
            hex::encode(sha.leaf(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            hex::encode(sha.node(&[1; 32], &[2; 32])),
            hex::encode(<[u8; 32]>::from(sha2::Sha256::digest(
                [&[NODE_PREFIX][..], &[1; 32], &[2; 32]].concat()
            )))
        );
        // BLAKE3 trees are those of every block sealed before version 3: they must not move.
        let b3 = TreeHash::Blake3;
        assert_eq!(hex::encode(b3.leaf(b"abc")), BLAKE3_LEAF_ABC);
        assert_eq!(hex::encode(b3.node(&[1; 32], &[2; 32])), BLAKE3_NODE_1_2);
    }

    const BLAKE3_LEAF_ABC: &str =
        "b14157d03cf324d8896c43f2c5e241223eab944698e40c01f8f4e028fd1751e4";
    const BLAKE3_NODE_1_2: &str =
        "7dfb6d5986153fae21ad072c102d9b029a7c247f7e4019dc0ad217145a4a3485";

    #[test]
    fn the_two_hashes_give_different_roots() {
        let (b, s) = (leaves(TreeHash::Blake3, 5), leaves(TreeHash::Sha256, 5));
        assert_ne!(root(TreeHash::Blake3, &b), root(TreeHash::Sha256, &s));
        assert_ne!(root(TreeHash::Blake3, &s), root(TreeHash::Sha256, &s));
    }

    #[test]
    fn small_trees_by_hand() {
        for t in BOTH {
            let l = leaves(t, 3);
            assert_eq!(root(t, &l[..1]), l[0]);
            assert_eq!(root(t, &l[..2]), t.node(&l[0], &l[1]));
            // Odd rule: the third leaf is promoted, not paired with itself.
            assert_eq!(root(t, &l), t.node(&t.node(&l[0], &l[1]), &l[2]));
            assert_eq!(root(t, &[]), EMPTY_ROOT);
        }
    }

    #[test]
    fn subtree_roots_give_the_serial_root() {
        for t in BOTH {
            let l = leaves(t, 70);
            for n in 1..=l.len() {
                for size in [1, 2, 4, 8, 16, 32, 64, 128] {
                    assert_eq!(
                        root_in_subtrees(t, &l[..n], size),
                        serial_root(t, &l[..n]),
                        "{t:?}: {n} leaves in runs of {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn large_trees_split_across_threads_give_the_serial_root_and_leaves() {
        for t in BOTH {
            for n in [PARALLEL_MIN, PARALLEL_MIN + 1, 3 * PARALLEL_MIN + 7] {
                let data: Vec<u64> = (0..n as u64).collect();
                let hashed = hash_all(&data, |i| t.leaf(&i.to_be_bytes()));
                let serial: Vec<Hash> = data.iter().map(|i| t.leaf(&i.to_be_bytes())).collect();
                assert_eq!(hashed, serial, "{t:?}: {n} leaves");
                assert_eq!(root(t, &hashed), serial_root(t, &serial), "{n} leaves");
                assert_eq!(root(t, &hashed), Tree::new(t, serial).root(), "{n} leaves");
            }
        }
    }

    #[test]
    fn duplicating_the_last_leaf_changes_the_root() {
        for t in BOTH {
            let mut l = leaves(t, 3);
            let r3 = root(t, &l);
            l.push(l[2]);
            assert_ne!(root(t, &l), r3);
        }
    }

    #[test]
    fn leaves_and_nodes_are_domain_separated() {
        for t in BOTH {
            let l = leaves(t, 2);
            let mut data = l[0].to_vec();
            data.extend_from_slice(&l[1]);
            assert_ne!(t.leaf(&data), t.node(&l[0], &l[1]));
        }
    }

    #[test]
    fn count_must_come_from_the_signed_header() {
        let t = TreeHash::NEW;
        let l = leaves(t, 4);
        let inner = t.node(&l[0], &l[1]);
        let fake = Proof {
            index: 0,
            count: 2,
            siblings: vec![t.node(&l[2], &l[3])],
        };
        // An inner node presented with a made-up count of 2 folds to the root, which is why
        // verifiers take the count from the signed header: with the real count it fails.
        assert!(verify(t, &inner, &fake, &root(t, &l)).is_ok());
        let honest = Proof { count: 4, ..fake };
        assert!(verify(t, &inner, &honest, &root(t, &l)).is_err());
    }

    proptest! {
        #[test]
        fn every_leaf_proves_and_nothing_else_does(n in 1usize..200, pick in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), sha in any::<bool>()) {
            let t = if sha { TreeHash::Sha256 } else { TreeHash::Blake3 };
            let l = leaves(t, n);
            let r = root(t, &l);
            prop_assert_eq!(Tree::new(t, l.clone()).root(), r);
            let index = pick.index(n) as u32;
            let proof = prove(t, &l, index).unwrap();
            prop_assert_eq!(verify(t, &l[index as usize], &proof, &r), Ok(()));
            // The path under the other hash fails.
            let other_hash = if sha { TreeHash::Blake3 } else { TreeHash::Sha256 };
            if n > 1 {
                prop_assert!(verify(other_hash, &l[index as usize], &proof, &r).is_err());
            }
            // Another leaf at this position fails.
            let other = t.leaf(b"other");
            prop_assert!(verify(t, &other, &proof, &r).is_err());
            // A flipped sibling fails.
            if !proof.siblings.is_empty() {
                let mut bad = proof.clone();
                let s = flip.index(bad.siblings.len());
                bad.siblings[s][0] ^= 1;
                prop_assert!(verify(t, &l[index as usize], &bad, &r).is_err());
            }
            // A wrong position fails (when the tree has more than one leaf).
            if n > 1 {
                let mut moved = proof.clone();
                moved.index = (index + 1) % n as u32;
                prop_assert!(verify(t, &l[index as usize], &moved, &r).is_err());
            }
        }
    }

    #[test]
    fn out_of_range() {
        let t = TreeHash::NEW;
        let l = leaves(t, 3);
        assert!(prove(t, &l, 3).is_none());
        let p = Proof {
            index: 3,
            count: 3,
            siblings: vec![],
        };
        assert!(matches!(
            verify(t, &l[0], &p, &root(t, &l)),
            Err(ProofError::IndexOutOfRange { .. })
        ));
    }
}
