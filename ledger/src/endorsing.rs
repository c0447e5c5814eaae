//! How a ledger block is endorsed: by the one super node that sealed it, or by a quorum of
//! the validator set of a replicated chain. The header's version says which.

/// How a block is endorsed (with the tree hash, the header's `version`: see
/// [`crate::block::version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endorsing {
    /// Versions 1 and 3, one ledger on one super node: every listed signer signs, and attested
    /// entries carry the attesting super's co-signature.
    Signers,
    /// Versions 2 and 4, a chain replicated over the network's super nodes: the signers are the
    /// validator set at sealing, more than two thirds of them must sign, and judgements
    /// carry no co-signature (every validator judged the same numbers).
    Quorum,
}

impl Endorsing {
    /// How many valid signatures of `signers` listed signers endorse a block.
    pub fn needed(self, signers: usize) -> usize {
        match self {
            Self::Signers => signers,
            Self::Quorum => signers * 2 / 3 + 1,
        }
    }
}
