//! How a ledger block is endorsed: by the one super node that sealed it, or by a quorum of
//! the validator set of a replicated chain. The header's version says which.

/// How a block is endorsed; its number is the header's `version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endorsing {
    /// Version 1, one ledger on one super node: every listed signer signs, and attested
    /// entries carry the attesting super's co-signature.
    Signers,
    /// Version 2, a chain replicated over the network's super nodes: the signers are the
    /// validator set at sealing, more than two thirds of them must sign, and judgements
    /// carry no co-signature (every validator judged the same numbers).
    Quorum,
}

impl Endorsing {
    /// The header version.
    pub fn version(self) -> u32 {
        match self {
            Self::Signers => 1,
            Self::Quorum => 2,
        }
    }

    /// The way of a header version.
    pub fn from_version(version: u32) -> Option<Self> {
        match version {
            1 => Some(Self::Signers),
            2 => Some(Self::Quorum),
            _ => None,
        }
    }

    /// How many valid signatures of `signers` listed signers endorse a block.
    pub fn needed(self, signers: usize) -> usize {
        match self {
            Self::Signers => signers,
            Self::Quorum => signers * 2 / 3 + 1,
        }
    }
}
