//! Blocks: a header chaining to the previous one by hash, a Merkle root over the epoch's
//! entries, and the signatures of the super nodes that sealed it.

use ed25519_dalek::Signature;

use crate::attest::Attester;
use crate::entry::Entry;
use crate::merkle::{self, Hash};
use hsn_ledger_api::canonical::Canonical;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;

/// Block format version.
pub const BLOCK_VERSION: u32 = 1;
/// Domain tag of a header's hashed bytes.
pub const BLOCK_DOMAIN: &str = "HSN-LEDGER/BLOCK/V1";
/// Domain tag of the bytes block signers sign.
pub const BLOCK_SIGNATURE_DOMAIN: &str = "HSN-LEDGER/BLOCK-SIGNATURE/V1";
/// `prev_hash` of the first block.
pub const GENESIS_PREV_HASH: Hash = [0; 32];

/// A block header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
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
            .u32(BLOCK_VERSION)
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

    /// What each signer signs: the hash under its own domain tag.
    pub fn signing_bytes(&self) -> Vec<u8> {
        Canonical::new(BLOCK_SIGNATURE_DOMAIN)
            .fixed(&self.hash())
            .finish()
    }

    /// The wire form.
    pub fn to_pb(&self) -> pb::BlockHeader {
        pb::BlockHeader {
            version: BLOCK_VERSION,
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
        if m.version != BLOCK_VERSION {
            return Err(BlockError::Version(m.version));
        }
        let hash = |v: &[u8], field| -> Result<Hash, BlockError> {
            v.try_into().map_err(|_| BlockError::HashLength(field))
        };
        let signers = m.signers.iter().map(|s| NodeKey::from_slice(s));
        Ok(Self {
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

/// A header and its signatures, one per signer in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Signatures over `header.signing_bytes()`.
    pub signatures: Vec<Signature>,
}

impl SignedHeader {
    /// The wire form.
    pub fn to_pb(&self) -> pb::SignedHeader {
        pb::SignedHeader {
            header: Some(self.header.to_pb()),
            signatures: self
                .signatures
                .iter()
                .map(|s| s.to_bytes().to_vec())
                .collect(),
        }
    }

    /// Reads a signed header from the wire.
    pub fn from_pb(m: &pb::SignedHeader) -> Result<Self, BlockError> {
        let header = BlockHeader::from_pb(m.header.as_ref().ok_or(BlockError::MissingHeader)?)?;
        let signatures = m.signatures.iter().map(|s| Signature::from_slice(s));
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
    #[error("unsupported block version {0} (this ledger reads {BLOCK_VERSION})")]
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
/// precede.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// Height of the next block.
    pub next_height: u64,
    /// Hash of the last header, or [`GENESIS_PREV_HASH`].
    pub prev_hash: Hash,
    /// Time of the last block, or 0.
    pub prev_time: u64,
}

impl Tip {
    /// The tip of an empty chain.
    pub const GENESIS: Tip = Tip {
        next_height: 0,
        prev_hash: GENESIS_PREV_HASH,
        prev_time: 0,
    };

    /// The tip after `header`.
    pub fn after(header: &BlockHeader) -> Self {
        Self {
            next_height: header.height + 1,
            prev_hash: header.hash(),
            prev_time: header.time,
        }
    }
}

/// Seals entries (already in key order, all of one epoch) into the block after `tip`,
/// signed by the attester.
pub fn seal(
    tip: &Tip,
    network: &str,
    epoch: u64,
    entries: Vec<Entry>,
    time: u64,
    attester: &Attester,
) -> Block {
    let leaves: Vec<Hash> = entries.iter().map(Entry::leaf_hash).collect();
    let header = BlockHeader {
        network: network.to_owned(),
        height: tip.next_height,
        epoch,
        prev_hash: tip.prev_hash,
        merkle_root: merkle::root(&leaves),
        entry_count: u32::try_from(entries.len()).expect("blocks are bounded well below u32::MAX"),
        time: time.max(tip.prev_time),
        signers: vec![attester.public()],
    };
    let signature = attester.sign(&header.signing_bytes());
    Block {
        header: SignedHeader {
            header,
            signatures: vec![signature],
        },
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
        ];
        for v in variants {
            assert_ne!(v.hash(), base.hash(), "{v:?}");
        }
    }

    #[test]
    fn wire_round_trip() {
        let h = header();
        assert_eq!(BlockHeader::from_pb(&h.to_pb()).unwrap(), h);
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
        let first = seal(&Tip::GENESIS, "n", 1, vec![], 500, &attester);
        let tip = Tip::after(&first.header.header);
        let second = seal(&tip, "n", 2, vec![], 400, &attester);
        assert_eq!(second.header.header.time, 500);
        assert_eq!(second.header.header.prev_hash, first.header.header.hash());
        assert_eq!(second.header.header.height, 1);
    }
}
