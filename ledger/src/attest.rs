//! Attestation: a super node compares an edge's record with its own observation under a
//! tolerance, co-signs it when they agree (Attested) and keeps both numbers when they do
//! not (Disputed). Pure: no I/O, deterministic signatures.

use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::endorsing::Endorsing;
use hsn_ledger_api::canonical::Canonical;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_ledger_api::record::{SignedObservation, SignedRecord};

/// Domain tag of the co-signed attestation bytes.
pub const ATTESTATION_DOMAIN: &str = "HSN-LEDGER/ATTESTATION/V1";

pub use hsn_ledger_api::genesis::Tolerance;

/// Outcome of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Within tolerance; co-signed.
    Attested,
    /// Outside tolerance; earns nothing.
    Disputed,
}

impl Verdict {
    /// The protobuf enum value.
    pub fn to_pb(self) -> i32 {
        match self {
            Self::Attested => pb::Verdict::Attested as i32,
            Self::Disputed => pb::Verdict::Disputed as i32,
        }
    }

    /// Reads the protobuf enum; unspecified is not a verdict.
    pub fn from_pb(v: i32) -> Option<Self> {
        match pb::Verdict::try_from(v) {
            Ok(pb::Verdict::Attested) => Some(Self::Attested),
            Ok(pb::Verdict::Disputed) => Some(Self::Disputed),
            _ => None,
        }
    }

    /// The byte used in canonical encodings.
    pub fn code(self) -> u8 {
        match self {
            Self::Attested => 1,
            Self::Disputed => 2,
        }
    }

    /// Label for metrics and tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Attested => "attested",
            Self::Disputed => "disputed",
        }
    }
}

/// The verdict on the bytes of a record and its observation.
pub fn judge(claimed: u64, observed: u64, tolerance: Tolerance) -> Verdict {
    if tolerance.admits(claimed, observed) {
        Verdict::Attested
    } else {
        Verdict::Disputed
    }
}

/// A super node's judgement of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// The tolerance it was judged under, so anyone can re-judge from the chain.
    pub tolerance: Tolerance,
    /// The judging super node.
    pub attester: NodeKey,
    /// Signature over [`attestation_bytes`]; present exactly when attested.
    pub cosignature: Option<Signature>,
}

impl Judgement {
    /// The wire form.
    pub fn to_pb(&self) -> pb::Judgement {
        pb::Judgement {
            verdict: self.verdict.to_pb(),
            tolerance_bytes: self.tolerance.bytes,
            tolerance_basis_points: self.tolerance.basis_points,
            attester_key: self.attester.0.to_vec(),
            cosignature: self
                .cosignature
                .map(|s| s.to_bytes().to_vec())
                .unwrap_or_default(),
        }
    }
}

/// The bytes a super node co-signs: both signed statements (by hash), the verdict, the
/// tolerance and the attester, so a co-signature cannot be moved to other numbers.
pub fn attestation_bytes(
    record: &SignedRecord,
    observation: &SignedObservation,
    verdict: Verdict,
    tolerance: Tolerance,
    attester: &NodeKey,
) -> Vec<u8> {
    Canonical::new(ATTESTATION_DOMAIN)
        .fixed(blake3::hash(&record.body.signing_bytes()).as_bytes())
        .fixed(&record.signature.to_bytes())
        .fixed(blake3::hash(&observation.body.signing_bytes()).as_bytes())
        .fixed(&observation.signature.to_bytes())
        .u8(verdict.code())
        .u64(tolerance.bytes)
        .u32(tolerance.basis_points)
        .fixed(&attester.0)
        .finish()
}

/// The attester key of judgements made by a replicated ledger: every validator judged the
/// same numbers under the network's tolerance, nobody co-signs, and the validator set
/// endorses the block instead.
pub const VALIDATOR_SET: NodeKey = NodeKey([0; 32]);

/// Who judges: a super node with its signing key (co-signs what it attests), or the
/// validator set of a replicated ledger (co-signs nothing), under a tolerance.
#[derive(Debug)]
pub struct Attester {
    key: Option<SigningKey>,
    public: NodeKey,
    tolerance: Tolerance,
}

impl Attester {
    /// An attester signing with `key` under `tolerance`.
    pub fn new(key: SigningKey, tolerance: Tolerance) -> Self {
        let public = NodeKey::of(&key);
        Self {
            key: Some(key),
            public,
            tolerance,
        }
    }

    /// The judge of a replicated ledger: [`VALIDATOR_SET`], no co-signature.
    pub fn replicated(tolerance: Tolerance) -> Self {
        Self {
            key: None,
            public: VALIDATOR_SET,
            tolerance,
        }
    }

    /// The attester's public key.
    pub fn public(&self) -> NodeKey {
        self.public
    }

    /// The configured tolerance.
    pub fn tolerance(&self) -> Tolerance {
        self.tolerance
    }

    /// Signs arbitrary canonical bytes (block headers) with the attester's key.
    ///
    /// # Panics
    /// For the replicated judge, which has no key (it never seals signed blocks).
    pub fn sign(&self, message: &[u8]) -> Signature {
        let key = self
            .key
            .as_ref()
            .expect("only a super node's attester signs");
        key.sign(message)
    }

    /// Judges a record against an observation of the same key; a super node co-signs when
    /// attested.
    pub fn judge(&self, record: &SignedRecord, observation: &SignedObservation) -> Judgement {
        let verdict = judge(record.body.bytes, observation.body.bytes, self.tolerance);
        let key = self.key.as_ref().filter(|_| verdict == Verdict::Attested);
        let cosignature = key.map(|key| {
            key.sign(&attestation_bytes(
                record,
                observation,
                verdict,
                self.tolerance,
                &self.public,
            ))
        });
        Judgement {
            verdict,
            tolerance: self.tolerance,
            attester: self.public,
            cosignature,
        }
    }
}

/// Why a stored judgement does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestError {
    /// The stated verdict is not what the numbers and tolerance give.
    #[error("verdict {stated:?} but the numbers under the stated tolerance give {expected:?}")]
    VerdictMismatch {
        /// In the entry.
        stated: Verdict,
        /// Recomputed.
        expected: Verdict,
    },
    /// Attested without a co-signature.
    #[error("attested without a co-signature")]
    MissingCosignature,
    /// Disputed with a co-signature, or co-signed in a replicated chain.
    #[error("co-signed where no co-signature belongs")]
    UnexpectedCosignature,
    /// In a replicated chain, judged by someone other than the validator set.
    #[error("judged by {0}, but in a replicated chain the validator set judges")]
    NotTheValidatorSet(NodeKey),
}

/// Re-judges a stored judgement; returns the co-signature and the bytes it must verify
/// over, so callers can verify many in one batch. In a block endorsed by a validator
/// quorum the judge is [`VALIDATOR_SET`] and there is no co-signature.
pub fn recheck(
    judgement: &Judgement,
    record: &SignedRecord,
    observation: &SignedObservation,
    endorsing: Endorsing,
) -> Result<Option<(Vec<u8>, Signature)>, AttestError> {
    let expected = judge(
        record.body.bytes,
        observation.body.bytes,
        judgement.tolerance,
    );
    if expected != judgement.verdict {
        return Err(AttestError::VerdictMismatch {
            stated: judgement.verdict,
            expected,
        });
    }
    if endorsing == Endorsing::Quorum {
        return match (judgement.attester, judgement.cosignature) {
            (VALIDATOR_SET, None) => Ok(None),
            (VALIDATOR_SET, Some(_)) => Err(AttestError::UnexpectedCosignature),
            (other, _) => Err(AttestError::NotTheValidatorSet(other)),
        };
    }
    match (judgement.verdict, judgement.cosignature) {
        (Verdict::Attested, None) => Err(AttestError::MissingCosignature),
        (Verdict::Disputed, Some(_)) => Err(AttestError::UnexpectedCosignature),
        (Verdict::Disputed, None) => Ok(None),
        (Verdict::Attested, Some(sig)) => {
            let bytes = attestation_bytes(
                record,
                observation,
                judgement.verdict,
                judgement.tolerance,
                &judgement.attester,
            );
            Ok(Some((bytes, sig)))
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Verifier;
    use proptest::prelude::*;

    use super::*;
    use hsn_core::Direction;
    use hsn_testkit::ledger_fixtures::Slot;

    fn tol(bytes: u64, basis_points: u32) -> Tolerance {
        Tolerance {
            bytes,
            basis_points,
        }
    }

    #[test]
    fn either_bound_admits() {
        let t = tol(100, 100); // 100 bytes or 1 %
        assert!(t.admits(1_100, 1_000)); // absolute
        assert!(!t.admits(1_101, 1_000));
        assert!(t.admits(1_010_000, 1_000_000)); // relative
        assert!(!t.admits(1_010_101, 1_000_000));
        assert!(t.admits(900, 1_000)); // under-claims too
        assert!(!tol(0, 0).admits(1, 0));
        assert!(tol(0, 0).admits(5, 5));
        // No overflow at the top of the range: 100 % of the observation admits a doubling.
        assert!(tol(0, 10_000).admits(u64::MAX, u64::MAX / 2 + 1));
        assert!(!tol(0, 10_000).admits(u64::MAX, u64::MAX / 2));
    }

    proptest! {
        #[test]
        fn judging_is_symmetric_in_absolute_bound(a in any::<u64>(), d in 0u64..10_000, abs in 0u64..10_000) {
            let t = tol(abs, 0);
            let b = a.saturating_add(d);
            prop_assert_eq!(t.admits(a, b), d <= abs || a == b);
            prop_assert_eq!(t.admits(b, a), d <= abs || a == b);
        }
    }

    fn pair(claimed: u64, observed: u64) -> (SignedRecord, SignedObservation, SigningKey) {
        let edge = SigningKey::from_bytes(&[1; 32]);
        let sup = SigningKey::from_bytes(&[2; 32]);
        let slot = Slot::new("n", 1, "t", Direction::Downlink);
        let record = slot.record(&edge, claimed, 1);
        let observation = slot.observation(&sup, NodeKey::of(&edge), observed);
        (record, observation, sup)
    }

    #[test]
    fn attested_is_cosigned_and_rechecks() {
        let (record, observation, sup) = pair(10_000, 10_050);
        let attester = Attester::new(sup.clone(), tol(100, 0));
        let j = attester.judge(&record, &observation);
        assert_eq!(j.verdict, Verdict::Attested);
        let (bytes, sig) = recheck(&j, &record, &observation, Endorsing::Signers)
            .unwrap()
            .unwrap();
        assert!(sup.verifying_key().verify(&bytes, &sig).is_ok());
    }

    #[test]
    fn disputed_keeps_no_cosignature_and_lies_are_caught() {
        let (record, observation, sup) = pair(10_000, 20_000);
        let attester = Attester::new(sup, tol(100, 100));
        let mut j = attester.judge(&record, &observation);
        assert_eq!(j.verdict, Verdict::Disputed);
        assert_eq!(
            recheck(&j, &record, &observation, Endorsing::Signers),
            Ok(None)
        );
        j.verdict = Verdict::Attested;
        assert!(matches!(
            recheck(&j, &record, &observation, Endorsing::Signers),
            Err(AttestError::VerdictMismatch { .. })
        ));
    }

    #[test]
    fn the_validator_set_judges_without_cosigning() {
        let (record, observation, sup) = pair(10_000, 10_050);
        let j = Attester::replicated(tol(100, 0)).judge(&record, &observation);
        assert_eq!(
            (j.verdict, j.attester, j.cosignature),
            (Verdict::Attested, VALIDATOR_SET, None)
        );
        assert_eq!(
            recheck(&j, &record, &observation, Endorsing::Quorum),
            Ok(None)
        );
        assert_eq!(
            recheck(&j, &record, &observation, Endorsing::Signers),
            Err(AttestError::MissingCosignature)
        );
        let signed = Attester::new(sup, tol(100, 0)).judge(&record, &observation);
        assert!(recheck(&signed, &record, &observation, Endorsing::Quorum).is_err());
    }
}
