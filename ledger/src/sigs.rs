//! Batched ed25519 verification. Ingestion and chain verification use the same rule — a
//! set of signatures is valid when it passes batch verification — so the ledger and any
//! verifier always agree; single verification only locates the culprit after a failure.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

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
        let messages: Vec<&[u8]> = self.messages.iter().map(Vec::as_slice).collect();
        if ed25519_dalek::verify_batch(&messages, &self.signatures, &self.keys).is_ok() {
            return Ok(());
        }
        let culprit = (0..self.len()).find(|&i| {
            self.keys[i]
                .verify(&self.messages[i], &self.signatures[i])
                .is_err()
        });
        Err(culprit.map(|i| &self.tags[i]))
    }
}

#[cfg(test)]
mod tests {
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
}
