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

/// The root over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return EMPTY_ROOT;
    }
    let mut level = next_level(leaves);
    while level.len() > 1 {
        level = next_level(&level);
    }
    level.first().copied().unwrap_or(leaves[0])
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
