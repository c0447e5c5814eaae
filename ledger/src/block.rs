//! Blocks: a header chaining to the previous one by hash, a Merkle root over the epoch's
//! entries, and the signatures of the super nodes that sealed it.

use ed25519_dalek::Signature;

use crate::attest::Attester;
pub use crate::endorsing::Endorsing;
use crate::entry::Entry;
use crate::merkle::{self, Hash, TreeHash};
use hsn_ledger_api::canonical::Canonical;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;

/// Domain tag of a header's hashed bytes.
pub const BLOCK_DOMAIN: &str = "HSN-LEDGER/BLOCK/V1";
/// Domain tag of the bytes block signers sign.
pub const BLOCK_SIGNATURE_DOMAIN: &str = "HSN-LEDGER/BLOCK-SIGNATURE/V1";
/// `prev_hash` of the first block.
pub const GENESIS_PREV_HASH: Hash = [0; 32];

/// A block header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// How the block is endorsed (with `tree`, the header version).
    pub endorsing: Endorsing,
    /// The hash of the Merkle tree, the chain's since its first block (with `endorsing`,
    /// the header version).
    pub tree: TreeHash,
    /// The network.
    pub network: String,
    /// Position in the chain, from 0.
    pub height: u64,
    /// The epoch whose entries the block holds.
    pub epoch: u64,
    /// Hash of the previous header.
    pub prev_hash: Hash,
    /// Merkle root over the entries' leaves, in key order.
    pub merkle_root: Hash,
    /// Number of entries.
    pub entry_count: u32,
    /// Unix seconds when sealed; never before the previous block's.
    pub time: u64,
    /// The super nodes that sign the block.
    pub signers: Vec<NodeKey>,
}

impl BlockHeader {
    /// The header's hash: BLAKE3 over its canonical bytes.
    pub fn hash(&self) -> Hash {
        let mut c = Canonical::new(BLOCK_DOMAIN)
            .u32(self.version())
            .str(&self.network)
            .u64(self.height)
            .u64(self.epoch)
            .fixed(&self.prev_hash)
            .fixed(&self.merkle_root)
            .u32(self.entry_count)
            .u64(self.time)
            .u32(u32::try_from(self.signers.len()).unwrap_or(u32::MAX));
        for signer in &self.signers {
            c = c.fixed(&signer.0);
        }
        *blake3::hash(&c.finish()).as_bytes()
    }

    /// The header version: how the block is endorsed and the hash of its tree.
    pub fn version(&self) -> u32 {
        version(self.endorsing, self.tree)
    }

    /// What each signer signs: the hash under its own domain tag.
    pub fn signing_bytes(&self) -> Vec<u8> {
        Canonical::new(BLOCK_SIGNATURE_DOMAIN)
            .fixed(&self.hash())
            .finish()
    }

    /// The wire form.
    pub fn to_pb(&self) -> pb::BlockHeader {
        pb::BlockHeader {
            version: self.version(),
            network: self.network.clone(),
            height: self.height,
            epoch: self.epoch,
            prev_hash: self.prev_hash.to_vec(),
            merkle_root: self.merkle_root.to_vec(),
            entry_count: self.entry_count,
            time: self.time,
            signers: self.signers.iter().map(|k| k.0.to_vec()).collect(),
        }
    }

    /// Reads a header from the wire.
    pub fn from_pb(m: &pb::BlockHeader) -> Result<Self, BlockError> {
        let (endorsing, tree) = from_version(m.version).ok_or(BlockError::Version(m.version))?;
        let hash = |v: &[u8], field| -> Result<Hash, BlockError> {
            v.try_into().map_err(|_| BlockError::HashLength(field))
        };
        let signers = m.signers.iter().map(|s| NodeKey::from_slice(s));
        Ok(Self {
            endorsing,
            tree,
            network: m.network.clone(),
            height: m.height,
            epoch: m.epoch,
            prev_hash: hash(&m.prev_hash, "prev_hash")?,
            merkle_root: hash(&m.merkle_root, "merkle_root")?,
            entry_count: m.entry_count,
            time: m.time,
            signers: signers
                .collect::<Result<_, _>>()
                .map_err(|_| BlockError::Signer)?,
        })
    }
}

/// Every header version: how its blocks are endorsed and the hash of their trees.
const VERSIONS: [(u32, Endorsing, TreeHash); 4] = [
    (1, Endorsing::Signers, TreeHash::Blake3),
    (2, Endorsing::Quorum, TreeHash::Blake3),
    (3, Endorsing::Signers, TreeHash::Sha256),
    (4, Endorsing::Quorum, TreeHash::Sha256),
];

/// The header version of blocks endorsed by `endorsing` with trees of `tree`.
pub fn version(endorsing: Endorsing, tree: TreeHash) -> u32 {
    VERSIONS
        .iter()
        .find(|(_, e, t)| (*e, *t) == (endorsing, tree))
        .map_or(0, |(v, ..)| *v)
}

/// How blocks of header version `version` are endorsed and the hash of their trees.
pub fn from_version(version: u32) -> Option<(Endorsing, TreeHash)> {
    VERSIONS
        .iter()
        .find(|(v, ..)| *v == version)
        .map(|(_, e, t)| (*e, *t))
}

/// A header and its signatures, one place per signer in order (on the wire an empty byte
/// string where a signer has not signed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Signatures over `header.signing_bytes()`; `None` where the signer has not signed.
    pub signatures: Vec<Option<Signature>>,
}

impl SignedHeader {
    /// The wire form.
    pub fn to_pb(&self) -> pb::SignedHeader {
        pb::SignedHeader {
            header: Some(self.header.to_pb()),
            signatures: self
                .signatures
                .iter()
                .map(|s| s.map(|s| s.to_bytes().to_vec()).unwrap_or_default())
                .collect(),
        }
    }

    /// Reads a signed header from the wire.
    pub fn from_pb(m: &pb::SignedHeader) -> Result<Self, BlockError> {
        let header = BlockHeader::from_pb(m.header.as_ref().ok_or(BlockError::MissingHeader)?)?;
        let signatures = m.signatures.iter().map(|s| {
            (!s.is_empty())
                .then(|| Signature::from_slice(s))
                .transpose()
        });
        let signatures = signatures
            .collect::<Result<_, _>>()
            .map_err(|_| BlockError::SignatureLength)?;
        Ok(Self { header, signatures })
    }
}

/// A whole block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The signed header.
    pub header: SignedHeader,
    /// The entries, in key order.
    pub entries: Vec<Entry>,
}

impl Block {
    /// The wire form.
    pub fn to_pb(&self) -> pb::Block {
        pb::Block {
            header: Some(self.header.to_pb()),
            entries: self.entries.iter().map(Entry::to_pb).collect(),
        }
    }
}

/// Why bytes are not a block.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// No header.
    #[error("block has no header")]
    MissingHeader,
    /// Unknown block version.
    #[error("unsupported block version {0} (this ledger reads 1 to 4)")]
    Version(u32),
    /// A hash field that is not 32 bytes.
    #[error("{0} is not 32 bytes")]
    HashLength(&'static str),
    /// A signer key that is not 32 bytes.
    #[error("a signer key is not 32 bytes")]
    Signer,
    /// A signature that is not 64 bytes.
    #[error("a block signature is not 64 bytes")]
    SignatureLength,
}

/// Where the next block goes: its height, the hash it chains to, the time it may not
/// precede, the hash of its tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// Height of the next block.
    pub next_height: u64,
    /// Hash of the last header, or [`GENESIS_PREV_HASH`].
    pub prev_hash: Hash,
    /// Time of the last block, or 0.
    pub prev_time: u64,
    /// The tree hash of the chain: its first block's, or [`TreeHash::NEW`] for a new chain.
    /// A chain keeps its hash, so replicas running this code and the code before it agree
    /// on every block of a chain begun before SHA-256 trees.
    pub tree: TreeHash,
}

impl Tip {
    /// The tip of an empty chain.
    pub const GENESIS: Tip = Tip {
        next_height: 0,
        prev_hash: GENESIS_PREV_HASH,
        prev_time: 0,
        tree: TreeHash::NEW,
    };

    /// The tip after `header`.
    pub fn after(header: &BlockHeader) -> Self {
        Self {
            next_height: header.height + 1,
            prev_hash: header.hash(),
            prev_time: header.time,
            tree: header.tree,
        }
    }
}

/// Who endorses the blocks a ledger seals.
#[derive(Clone, Copy, Debug)]
pub enum Sealer<'a> {
    /// The ledger's own super node signs at once (versions 1 and 3).
    Attester(&'a Attester),
    /// The validator set endorses later, through vote extensions (versions 2 and 4); the
    /// keys are the set at sealing, in key order.
    Validators(&'a [NodeKey]),
}

/// Seals entries (already in key order, all of one epoch) into the block after `tip`:
/// signed by the attester, or listing the validators that will endorse it.
pub fn seal(
    tip: &Tip,
    network: &str,
    epoch: u64,
    entries: Vec<Entry>,
    time: u64,
    sealer: Sealer<'_>,
) -> Block {
    let leaves = merkle::hash_all(&entries, |e| e.leaf_hash(tip.tree));
    let (endorsing, signers) = match sealer {
        Sealer::Attester(a) => (Endorsing::Signers, vec![a.public()]),
        Sealer::Validators(v) => (Endorsing::Quorum, v.to_vec()),
    };
    let header = BlockHeader {
        endorsing,
        tree: tip.tree,
        network: network.to_owned(),
        height: tip.next_height,
        epoch,
        prev_hash: tip.prev_hash,
        merkle_root: merkle::root(tip.tree, &leaves),
        entry_count: u32::try_from(entries.len()).expect("blocks are bounded well below u32::MAX"),
        time: time.max(tip.prev_time),
        signers,
    };
    let signatures = match sealer {
        Sealer::Attester(a) => vec![Some(a.sign(&header.signing_bytes()))],
        Sealer::Validators(v) => vec![None; v.len()],
    };
    Block {
        header: SignedHeader { header, signatures },
        entries,
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::attest::Tolerance;

    fn header() -> BlockHeader {
        BlockHeader {
            endorsing: Endorsing::Signers,
            tree: TreeHash::NEW,
            network: "n".into(),
            height: 3,
            epoch: 9,
            prev_hash: [1; 32],
            merkle_root: [2; 32],
            entry_count: 4,
            time: 100,
            signers: vec![NodeKey([3; 32])],
        }
    }

    #[test]
    fn hash_covers_every_field() {
        let base = header();
        let variants = [
            BlockHeader {
                network: "m".into(),
                ..base.clone()
            },
            BlockHeader {
                height: 4,
                ..base.clone()
            },
            BlockHeader {
                epoch: 10,
                ..base.clone()
            },
            BlockHeader {
                prev_hash: [9; 32],
                ..base.clone()
            },
            BlockHeader {
                merkle_root: [9; 32],
                ..base.clone()
            },
            BlockHeader {
                entry_count: 5,
                ..base.clone()
            },
            BlockHeader {
                time: 101,
                ..base.clone()
            },
            BlockHeader {
                signers: vec![],
                ..base.clone()
            },
            BlockHeader {
                endorsing: Endorsing::Quorum,
                ..base.clone()
            },
            BlockHeader {
                tree: TreeHash::Blake3,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.hash(), base.hash(), "{v:?}");
        }
    }

    #[test]
    fn versions_are_pinned() {
        let versions: Vec<u32> = [
            (Endorsing::Signers, TreeHash::Blake3),
            (Endorsing::Quorum, TreeHash::Blake3),
            (Endorsing::Signers, TreeHash::Sha256),
            (Endorsing::Quorum, TreeHash::Sha256),
        ]
        .into_iter()
        .map(|(e, t)| version(e, t))
        .collect();
        assert_eq!(versions, [1, 2, 3, 4]);
        for v in 1..=4 {
            let (e, t) = from_version(v).unwrap();
            assert_eq!(version(e, t), v);
        }
        assert_eq!(from_version(0), None);
        assert_eq!(from_version(5), None);
    }

    #[test]
    fn a_chain_keeps_the_tree_hash_of_its_first_block() {
        let attester = Attester::new(SigningKey::from_bytes(&[5; 32]), Tolerance::default());
        let first = seal(
            &Tip::GENESIS,
            "n",
            1,
            vec![],
            5,
            Sealer::Attester(&attester),
        );
        assert_eq!(first.header.header.tree, TreeHash::Sha256);
        assert_eq!(first.header.header.version(), 3);
        // A chain begun with BLAKE3 trees (before version 3) goes on with them.
        let old = Tip {
            tree: TreeHash::Blake3,
            ..Tip::GENESIS
        };
        let old_first = seal(&old, "n", 1, vec![], 5, Sealer::Attester(&attester));
        let next = seal(
            &Tip::after(&old_first.header.header),
            "n",
            2,
            vec![],
            6,
            Sealer::Attester(&attester),
        );
        assert_eq!(next.header.header.tree, TreeHash::Blake3);
        assert_eq!(next.header.header.version(), 1);
    }

    #[test]
    fn wire_round_trip() {
        let h = header();
        assert_eq!(BlockHeader::from_pb(&h.to_pb()).unwrap(), h);
        let old = BlockHeader {
            endorsing: Endorsing::Quorum,
            tree: TreeHash::Blake3,
            ..header()
        };
        assert_eq!(old.to_pb().version, 2);
        assert_eq!(BlockHeader::from_pb(&old.to_pb()).unwrap(), old);
        let mut bad = h.to_pb();
        bad.prev_hash.pop();
        assert!(matches!(
            BlockHeader::from_pb(&bad),
            Err(BlockError::HashLength("prev_hash"))
        ));
    }

    #[test]
    fn sealed_time_never_goes_back() {
        let attester = Attester::new(SigningKey::from_bytes(&[5; 32]), Tolerance::default());
        let first = seal(
            &Tip::GENESIS,
            "n",
            1,
            vec![],
            500,
            Sealer::Attester(&attester),
        );
        let tip = Tip::after(&first.header.header);
        let second = seal(&tip, "n", 2, vec![], 400, Sealer::Attester(&attester));
        assert_eq!(second.header.header.time, 500);
        assert_eq!(second.header.header.prev_hash, first.header.header.hash());
        assert_eq!(second.header.header.height, 1);
    }

    #[test]
    fn quorum_is_more_than_two_thirds() {
        let needed: Vec<usize> = (1..=7).map(|n| Endorsing::Quorum.needed(n)).collect();
        assert_eq!(needed, [1, 2, 3, 3, 4, 5, 5]);
        assert_eq!(Endorsing::Signers.needed(4), 4);
        let keys = [NodeKey([1; 32]), NodeKey([2; 32])];
        let block = seal(&Tip::GENESIS, "n", 1, vec![], 5, Sealer::Validators(&keys));
        assert_eq!(block.header.header.endorsing, Endorsing::Quorum);
        assert_eq!(block.header.header.version(), 4);
        assert_eq!(block.header.signatures, [None, None]);
        let back = SignedHeader::from_pb(&block.header.to_pb()).unwrap();
        assert_eq!(back, block.header);
    }
}
