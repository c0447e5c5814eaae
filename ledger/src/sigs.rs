//! Batched ed25519 verification. Ingestion and chain verification use the same rule — a
//! set of signatures is valid when it passes batch verification — so the ledger and any
//! verifier always agree; single verification only locates the culprit after a failure.
//!
//! The rule is ed25519-dalek's `verify_batch`: the same transcript, the same coefficients
//! `z` drawn from it, the same equation
//! `-(Σ z·s)·B + Σ z·R + Σ (z·h)·A = 0`. One thing differs in how it is computed: the
//! terms of signatures by one key are added before the multiscalar multiplication,
//! `Σ (z·h)·A = (Σ z·h)·A`, so a batch of n signatures by k keys costs n + k + 1 points
//! instead of 2n + 1 (an agent's request is signed by one key). The sum is the same group
//! element, so a batch is accepted exactly when `verify_batch` accepts it; a test compares
//! the two on valid and broken batches.

use std::collections::HashMap;
use std::iter::once;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha512};

/// Signatures to verify together, each tagged with where it came from.
#[derive(Debug)]
pub struct Batch<T> {
    keys: Vec<VerifyingKey>,
    messages: Vec<Vec<u8>>,
    signatures: Vec<Signature>,
    tags: Vec<T>,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            messages: Vec::new(),
            signatures: Vec::new(),
            tags: Vec::new(),
        }
    }
}

impl<T> Batch<T> {
    /// An empty batch with room for `n` signatures.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            keys: Vec::with_capacity(n),
            messages: Vec::with_capacity(n),
            signatures: Vec::with_capacity(n),
            tags: Vec::with_capacity(n),
        }
    }

    /// Adds one signature.
    pub fn push(&mut self, key: VerifyingKey, message: Vec<u8>, signature: Signature, tag: T) {
        self.keys.push(key);
        self.messages.push(message);
        self.signatures.push(signature);
        self.tags.push(tag);
    }

    /// Number of signatures.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies everything. On failure names the first signature that fails on its own,
    /// or `None` in the corner case where each passes alone but the batch does not.
    pub fn verify(&self) -> Result<(), Option<&T>> {
        if self.is_empty() {
            return Ok(());
        }
        if self.holds() {
            return Ok(());
        }
        let culprit = (0..self.len()).find(|&i| {
            self.keys[i]
                .verify(&self.messages[i], &self.signatures[i])
                .is_err()
        });
        Err(culprit.map(|i| &self.tags[i]))
    }

    /// Whether the batch equation holds (see the module doc).
    fn holds(&self) -> bool {
        let hrams: Vec<[u8; 64]> = (self.keys.iter().zip(&self.messages))
            .zip(&self.signatures)
            .map(|((key, message), signature)| {
                Sha512::new()
                    .chain_update(signature.r_bytes())
                    .chain_update(key.as_bytes())
                    .chain_update(message)
                    .finalize()
                    .into()
            })
            .collect();
        let mut transcript = merlin::Transcript::new(b"ed25519 batch verification");
        for hram in &hrams {
            transcript.append_message(b"hram", hram);
        }
        for signature in &self.signatures {
            transcript.append_message(b"sig.s", signature.s_bytes());
        }
        let mut coefficients = transcript.build_rng().finalize(&mut NoExtraRandomness);

        let mut zs = Vec::with_capacity(self.len());
        let mut base = Scalar::ZERO;
        let mut per_key: HashMap<[u8; 32], (EdwardsPoint, Scalar)> = HashMap::new();
        for ((key, signature), hram) in self.keys.iter().zip(&self.signatures).zip(&hrams) {
            let Some(s) =
                Option::<Scalar>::from(Scalar::from_canonical_bytes(*signature.s_bytes()))
            else {
                return false;
            };
            let mut z = [0u8; 16];
            rand_core::RngCore::fill_bytes(&mut coefficients, &mut z);
            let z = Scalar::from(u128::from_le_bytes(z));
            base += z * s;
            let term = per_key
                .entry(*key.as_bytes())
                .or_insert_with(|| (key.to_edwards(), Scalar::ZERO));
            term.1 += z * Scalar::from_bytes_mod_order_wide(hram);
            zs.push(z);
        }
        let (keys, key_scalars): (Vec<_>, Vec<_>) = per_key
            .into_values()
            .map(|(point, scalar)| (Some(point), scalar))
            .unzip();
        let rs = self
            .signatures
            .iter()
            .map(|signature| CompressedEdwardsY(*signature.r_bytes()).decompress());
        EdwardsPoint::optional_multiscalar_mul(
            once(-base).chain(zs).chain(key_scalars),
            once(Some(ED25519_BASEPOINT_POINT)).chain(rs).chain(keys),
        )
        .is_some_and(|sum| sum.is_identity())
    }
}

/// The extra randomness the batch coefficients get beyond the transcript: none, as in
/// ed25519-dalek (the transcript binds every hash and scalar, so a forger cannot choose
/// signatures that cancel); zeros are what merlin starts from.
struct NoExtraRandomness;

impl rand_core::RngCore for NoExtraRandomness {
    fn next_u32(&mut self) -> u32 {
        0
    }

    fn next_u64(&mut self) -> u64 {
        0
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0);
        Ok(())
    }
}

impl rand_core::CryptoRng for NoExtraRandomness {}

#[cfg(test)]
mod tests {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    #[test]
    fn batch_passes_and_locates_a_bad_signature() {
        let mut batch = Batch::default();
        for i in 0..10u8 {
            let key = SigningKey::from_bytes(&[i + 1; 32]);
            let msg = vec![i; 10];
            let sig = key.sign(&msg);
            batch.push(key.verifying_key(), msg, sig, i);
        }
        assert_eq!(batch.verify(), Ok(()));
        batch.messages[7][0] ^= 1;
        assert_eq!(batch.verify(), Err(Some(&7)));
        assert_eq!(Batch::<u8>::default().verify(), Ok(()));
    }

    /// `n` signatures over distinct messages, signed by `keys` keys in turn.
    fn signed(n: usize, keys: u8) -> Batch<usize> {
        let signers: Vec<SigningKey> = (1..=keys)
            .map(|k| SigningKey::from_bytes(&[k; 32]))
            .collect();
        let mut batch = Batch::with_capacity(n);
        for i in 0..n {
            let key = &signers[i % signers.len()];
            let message = format!("record {i}").into_bytes();
            let signature = key.sign(&message);
            batch.push(key.verifying_key(), message, signature, i);
        }
        batch
    }

    /// ed25519-dalek's verdict on the same batch.
    fn dalek_accepts(batch: &Batch<usize>) -> bool {
        let messages: Vec<&[u8]> = batch.messages.iter().map(Vec::as_slice).collect();
        ed25519_dalek::verify_batch(&messages, &batch.signatures, &batch.keys).is_ok()
    }

    fn with_r(signature: &Signature, r: [u8; 32]) -> Signature {
        Signature::from_components(r, *signature.s_bytes())
    }

    /// `s + l`: the same scalar, not in canonical form.
    fn plus_group_order(s: &[u8; 32]) -> [u8; 32] {
        // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut sum = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let digit = u16::from(s[i]) + u16::from(l[i]) + carry;
            sum[i] = digit as u8;
            carry = digit >> 8;
        }
        assert_eq!(carry, 0, "s + l fits in 256 bits");
        sum
    }

    #[test]
    fn summing_one_keys_terms_decides_as_ed25519_dalek_verify_batch() {
        for (n, keys) in [(1, 1), (40, 1), (40, 3), (40, 40)] {
            let batch = signed(n, keys);
            assert!(batch.holds(), "{n} signatures by {keys} keys");
            assert!(dalek_accepts(&batch), "{n} signatures by {keys} keys");
        }
        let mut twice = signed(40, 3);
        twice.keys[1] = twice.keys[0];
        twice.messages[1] = twice.messages[0].clone();
        twice.signatures[1] = twice.signatures[0];
        assert!(
            twice.holds() && dalek_accepts(&twice),
            "one signature twice"
        );

        let off_curve = (0..=255u8)
            .map(|b| [b; 32])
            .find(|y| CompressedEdwardsY(*y).decompress().is_none())
            .expect("some y is not on the curve");
        type Break = fn(&mut Batch<usize>, [u8; 32]);
        let breaks: [(&str, Break); 8] = [
            ("a message changed", |b, _| b.messages[5][0] ^= 1),
            ("two signatures of one key swapped", |b, _| {
                b.signatures.swap(0, 3)
            }),
            ("two signatures of two keys swapped", |b, _| {
                b.signatures.swap(0, 1)
            }),
            ("a signature under another signer's key", |b, _| {
                b.keys[4] = b.keys[5]
            }),
            ("s not canonical (s + l)", |b, _| {
                let s = plus_group_order(b.signatures[7].s_bytes());
                b.signatures[7] = Signature::from_components(*b.signatures[7].r_bytes(), s);
            }),
            ("R not a point", |b, off_curve| {
                b.signatures[8] = with_r(&b.signatures[8], off_curve)
            }),
            ("R moved by a point of order 8", |b, _| {
                let r = CompressedEdwardsY(*b.signatures[9].r_bytes())
                    .decompress()
                    .expect("R");
                let moved = (r + EIGHT_TORSION[1]).compress().to_bytes();
                b.signatures[9] = with_r(&b.signatures[9], moved);
            }),
            ("the last signature's message shortened", |b, _| {
                b.messages[39].pop();
            }),
        ];
        for (what, break_batch) in breaks {
            let mut batch = signed(40, 3);
            break_batch(&mut batch, off_curve);
            assert!(!dalek_accepts(&batch), "{what}: ed25519-dalek refuses it");
            assert!(!batch.holds(), "{what}: refused here too");
        }
    }
}
