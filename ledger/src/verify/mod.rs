//! Chain verification from the blocks alone: hashes chain, heights count up, epochs and
//! entry keys only move forward, every signature holds, every judgement re-judges the same,
//! every Merkle root recomputes. Blocks are fed one at a time so a chain of any length
//! verifies in constant memory; errors say which block and entry.

mod error;

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
pub use error::{VerifyError, VerifyErrorKind};

use crate::attest;
use crate::block::{BlockError, BlockHeader, Endorsing, SignedHeader, Tip};
use crate::entry::Entry;
use crate::merkle;
use crate::sigs::Batch;
use hsn_core::Role;
use hsn_ledger_api::keys::{KeyRegistry, NodeKey};
use hsn_ledger_api::pb;
use hsn_ledger_api::record::RecordKey;

/// What a verifier trusts beyond the blocks themselves.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The network every block must belong to; the first block's when absent.
    pub network: Option<String>,
    /// When set, every signer must be registered with the right role.
    pub registry: Option<KeyRegistry>,
}

/// What a verified chain holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChainSummary {
    /// The network, when there is at least one block.
    pub network: Option<String>,
    /// Number of blocks.
    pub blocks: u64,
    /// Number of entries.
    pub entries: u64,
    /// Hash of the last header, hex.
    pub head_hash: Option<String>,
    /// The newest blocks of a replicated chain that no validator quorum has endorsed yet
    /// (themselves or through a later block, whose hash chain covers them): sealed
    /// moments ago, endorsed at the next heights.
    pub awaiting_endorsement: u64,
}

/// Verifies a chain one block at a time, from height 0.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    options: VerifyOptions,
    tip: Option<Tip>,
    prev_epoch: Option<u64>,
    last_key: Option<RecordKey>,
    entries: u64,
    awaiting: u64,
    points: HashMap<NodeKey, VerifyingKey>,
}

type Located = (Option<usize>, VerifyErrorKind);

impl ChainVerifier {
    /// A verifier for a chain starting at height 0.
    pub fn new(options: VerifyOptions) -> Self {
        Self {
            options,
            ..Self::default()
        }
    }

    /// Checks the next block and returns its decoded entries; after an error the verifier
    /// should be dropped.
    pub fn push(&mut self, block: &pb::Block) -> Result<Vec<Entry>, VerifyError> {
        let height = self.tip.map_or(0, |t| t.next_height);
        self.check(block).map_err(|(entry, kind)| VerifyError {
            height,
            entry,
            kind,
        })
    }

    /// Reports that the next block (or one of its entries) could not be read.
    pub fn unreadable(
        &self,
        entry: Option<usize>,
        error: Box<dyn std::error::Error + Send + Sync>,
    ) -> VerifyError {
        VerifyError {
            height: self.tip.map_or(0, |t| t.next_height),
            entry,
            kind: VerifyErrorKind::Unreadable(error),
        }
    }

    /// The summary of everything pushed so far.
    pub fn finish(self) -> ChainSummary {
        ChainSummary {
            network: self.options.network,
            blocks: self.tip.map_or(0, |t| t.next_height),
            entries: self.entries,
            head_hash: self.tip.map(|t| hex::encode(t.prev_hash)),
            awaiting_endorsement: self.awaiting,
        }
    }

    fn check(&mut self, block: &pb::Block) -> Result<Vec<Entry>, Located> {
        let signed = block.header.as_ref().ok_or(BlockError::MissingHeader);
        let signed = signed
            .and_then(SignedHeader::from_pb)
            .map_err(|e| (None, e.into()))?;
        let header = &signed.header;
        self.check_header(header).map_err(|k| (None, k))?;
        let endorsed = self
            .check_block_signatures(&signed)
            .map_err(|k| (None, k))?;
        let entries = self.check_entries(header, &block.entries)?;
        let leaves = merkle::hash_all(&entries, |e| e.leaf_hash(header.tree));
        let root = merkle::root(header.tree, &leaves);
        if root != header.merkle_root {
            return Err((
                None,
                VerifyErrorKind::MerkleRoot {
                    want: hex::encode(header.merkle_root),
                    got: hex::encode(root),
                },
            ));
        }
        self.advance(header, &entries);
        self.awaiting = if endorsed { 0 } else { self.awaiting + 1 };
        Ok(entries)
    }

    fn check_header(&mut self, h: &BlockHeader) -> Result<(), VerifyErrorKind> {
        let tip = self.tip.unwrap_or(Tip::GENESIS);
        let network = self
            .options
            .network
            .get_or_insert_with(|| h.network.clone());
        if h.network != *network {
            let (want, got) = (network.clone(), h.network.clone());
            return Err(VerifyErrorKind::Network { want, got });
        }
        if h.height != tip.next_height {
            let (want, got) = (tip.next_height, h.height);
            return Err(VerifyErrorKind::Height { want, got });
        }
        if h.prev_hash != tip.prev_hash {
            let (want, got) = (hex::encode(tip.prev_hash), hex::encode(h.prev_hash));
            return Err(VerifyErrorKind::PrevHash { want, got });
        }
        if h.height > 0 && h.tree != tip.tree {
            let (want, got) = (tip.tree.name(), h.tree.name());
            return Err(VerifyErrorKind::TreeHash { want, got });
        }
        if h.time < tip.prev_time {
            let (prev, got) = (tip.prev_time, h.time);
            return Err(VerifyErrorKind::Time { prev, got });
        }
        if let Some(prev) = self.prev_epoch.filter(|&p| h.epoch < p) {
            return Err(VerifyErrorKind::Epoch { prev, got: h.epoch });
        }
        Ok(())
    }

    fn check_block_signatures(&mut self, signed: &SignedHeader) -> Result<bool, VerifyErrorKind> {
        check_block_signatures(signed, &mut |k, r| self.point(k, r))
    }

    fn check_entries(&mut self, h: &BlockHeader, raw: &[pb::Entry]) -> Result<Vec<Entry>, Located> {
        if raw.is_empty() || raw.len() != h.entry_count as usize {
            let kind = VerifyErrorKind::EntryCount {
                header: h.entry_count,
                actual: raw.len(),
            };
            return Err((None, kind));
        }
        let mut last = self.last_key.clone().filter(|k| k.epoch == h.epoch);
        let mut batch = Batch::with_capacity(raw.len() * 3);
        let mut entries = Vec::with_capacity(raw.len());
        for (i, m) in raw.iter().enumerate() {
            let entry = Entry::from_pb(m).map_err(|e| (Some(i), e.into()))?;
            let key = entry.key();
            self.check_entry(h, &entry, last.as_ref(), &mut batch, i)
                .map_err(|k| (Some(i), k))?;
            last = Some(key);
            entries.push(entry);
        }
        match batch.verify() {
            Ok(()) => Ok(entries),
            Err(Some((i, what))) => Err((Some(*i), VerifyErrorKind::Signature(what))),
            Err(None) => Err((None, VerifyErrorKind::SignatureBatch)),
        }
    }

    fn check_entry(
        &mut self,
        h: &BlockHeader,
        entry: &Entry,
        last: Option<&RecordKey>,
        batch: &mut Batch<(usize, &'static str)>,
        i: usize,
    ) -> Result<(), VerifyErrorKind> {
        let key = entry.key();
        if key.epoch != h.epoch {
            return Err(VerifyErrorKind::EntryEpoch {
                want: h.epoch,
                got: key.epoch,
            });
        }
        if entry.network() != h.network {
            return Err(VerifyErrorKind::EntryNetwork(entry.network().to_owned()));
        }
        if last.is_some_and(|l| *l >= key) {
            return Err(VerifyErrorKind::EntryOrder(key));
        }
        push_entry_signatures(entry, h.endorsing, i, batch, &mut |k, r| self.point(k, r))
    }

    /// The curve point of a key, checked against the registry when there is one.
    fn point(&mut self, key: &NodeKey, role: Role) -> Result<VerifyingKey, VerifyErrorKind> {
        if self.options.registry.is_none()
            && let Some(point) = self.points.get(key)
        {
            return Ok(*point);
        }
        let point = resolve(self.options.registry.as_ref(), key, role)?;
        self.points.insert(*key, point);
        Ok(point)
    }

    fn advance(&mut self, h: &BlockHeader, entries: &[Entry]) {
        self.tip = Some(Tip::after(h));
        self.prev_epoch = Some(h.epoch);
        self.entries += entries.len() as u64;
        self.last_key = entries.last().map(Entry::key);
    }
}

/// Resolves a key to its curve point, checking its role when a registry is in force.
pub(crate) type Points<'a> =
    dyn FnMut(&NodeKey, Role) -> Result<VerifyingKey, VerifyErrorKind> + 'a;

/// Checks a header's signatures: at least one signer, no signer twice, one place per
/// signer, every signature present valid. Whether they are enough: every signer for a
/// single ledger's block (an error otherwise); more than two thirds for a validator
/// quorum's, which is `Ok(false)` when not yet (its endorsement may still come, or come
/// through a later block).
pub(crate) fn check_block_signatures(
    signed: &SignedHeader,
    points: &mut Points<'_>,
) -> Result<bool, VerifyErrorKind> {
    let signers = &signed.header.signers;
    if signers.is_empty() || signers.len() != signed.signatures.len() {
        let (signers, signatures) = (signers.len(), signed.signatures.len());
        return Err(VerifyErrorKind::Signers {
            signers,
            signatures,
        });
    }
    let mut distinct = signers.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != signers.len() {
        return Err(VerifyErrorKind::DuplicateSigner);
    }
    let present = signed.signatures.iter().flatten().count();
    let needed = signed.header.endorsing.needed(signers.len());
    let quorum = VerifyErrorKind::Quorum {
        signed: present,
        needed,
        signers: signers.len(),
    };
    if present < needed && signed.header.endorsing == Endorsing::Signers {
        return Err(quorum);
    }
    let message = signed.header.signing_bytes();
    let mut batch = Batch::with_capacity(signers.len());
    for (signer, sig) in signers.iter().zip(&signed.signatures) {
        if let Some(sig) = sig {
            batch.push(points(signer, Role::Super)?, message.clone(), *sig, *signer);
        }
    }
    match batch.verify() {
        Ok(()) => Ok(present >= needed),
        Err(Some(key)) => Err(VerifyErrorKind::BlockSignature(*key)),
        Err(None) => Err(VerifyErrorKind::SignatureBatch),
    }
}

/// Re-judges an entry and queues its signatures (record, observation, co-signature).
pub(crate) fn push_entry_signatures(
    entry: &Entry,
    endorsing: Endorsing,
    i: usize,
    batch: &mut Batch<(usize, &'static str)>,
    points: &mut Points<'_>,
) -> Result<(), VerifyErrorKind> {
    if let Some(r) = &entry.record {
        let point = points(&r.body.node, Role::Edge)?;
        batch.push(
            point,
            r.body.signing_bytes(),
            r.signature,
            (i, "record signature"),
        );
    }
    if let Some(o) = &entry.observation {
        let point = points(&o.body.observer, Role::Super)?;
        batch.push(
            point,
            o.body.signing_bytes(),
            o.signature,
            (i, "observation signature"),
        );
    }
    if let (Some(r), Some(o), Some(j)) = (&entry.record, &entry.observation, &entry.judgement)
        && let Some((bytes, sig)) = attest::recheck(j, r, o, endorsing)?
    {
        let point = points(&j.attester, Role::Super)?;
        batch.push(point, bytes, sig, (i, "co-signature"));
    }
    Ok(())
}

/// Checks entries before they are sealed (and signed): every signature and judgement holds
/// for a block endorsed as `endorsing`. Returns the position of the first that does not.
pub fn check_unsealed(
    entries: &[Entry],
    endorsing: Endorsing,
) -> Result<(), (usize, VerifyErrorKind)> {
    let mut batch = Batch::with_capacity(entries.len() * 3);
    let mut points = |k: &NodeKey, r| resolve(None, k, r);
    for (i, entry) in entries.iter().enumerate() {
        push_entry_signatures(entry, endorsing, i, &mut batch, &mut points).map_err(|k| (i, k))?;
    }
    match batch.verify() {
        Ok(()) => Ok(()),
        Err(Some((i, what))) => Err((*i, VerifyErrorKind::Signature(what))),
        Err(None) => Err((0, VerifyErrorKind::SignatureBatch)),
    }
}

/// A key's curve point, refused when not registered in `role` (if a registry is given).
pub(crate) fn resolve(
    registry: Option<&KeyRegistry>,
    key: &NodeKey,
    role: Role,
) -> Result<VerifyingKey, VerifyErrorKind> {
    if let Some(registry) = registry {
        return match registry.get(key) {
            Some((r, point)) if r == role => Ok(*point),
            _ => Err(VerifyErrorKind::Untrusted { key: *key, role }),
        };
    }
    key.verifying_key()
        .map_err(|source| VerifyErrorKind::Key { key: *key, source })
}

#[cfg(test)]
mod tests;
