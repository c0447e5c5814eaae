use ed25519_dalek::SigningKey;

use super::*;
use crate::attest::{Attester, Tolerance};
use crate::block::{self, Block, Sealer};
use crate::entry::{Merge, Part, merge};
use crate::merkle::TreeHash;
use hsn_core::Direction;
use hsn_testkit::ledger_fixtures::{Slot, signing_key};

struct World {
    sup: SigningKey,
    edges: Vec<SigningKey>,
    attester: Attester,
}

fn world() -> World {
    let sup = signing_key(100);
    World {
        attester: Attester::new(sup.clone(), Tolerance::default()),
        edges: (0..3).map(signing_key).collect(),
        sup,
    }
}

impl World {
    /// Entries of one epoch: every edge attested except the last, which is disputed.
    fn entries(&self, epoch: u64) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .edges
            .iter()
            .enumerate()
            .map(|(i, edge)| {
                let slot = Slot::new("net", epoch, "t", Direction::Uplink);
                let claimed = 1_000_000 * (i as u64 + 1);
                let observed = if i == 2 { claimed / 2 } else { claimed };
                let r = Part::Record(slot.record(edge, claimed, epoch));
                let o = Part::Observation(slot.observation(&self.sup, NodeKey::of(edge), observed));
                let Merge::Stored { entry, .. } = merge(None, &r, &self.attester) else {
                    unreachable!()
                };
                let Merge::Stored { entry, .. } = merge(Some(&entry), &o, &self.attester) else {
                    unreachable!()
                };
                *entry
            })
            .collect();
        entries.sort_by_key(Entry::key);
        entries
    }

    fn chain(&self, epochs: &[u64]) -> Vec<pb::Block> {
        self.chain_of(TreeHash::NEW, epochs)
    }

    /// A chain whose first block's trees are of `tree`.
    fn chain_of(&self, tree: TreeHash, epochs: &[u64]) -> Vec<pb::Block> {
        let mut tip = Tip {
            tree,
            ..Tip::GENESIS
        };
        let mut out = Vec::new();
        for &epoch in epochs {
            let b = block::seal(
                &tip,
                "net",
                epoch,
                self.entries(epoch),
                1000 + epoch,
                Sealer::Attester(&self.attester),
            );
            tip = Tip::after(&b.header.header);
            out.push(b.to_pb());
        }
        out
    }
}

fn verify_all(blocks: &[pb::Block], options: VerifyOptions) -> Result<ChainSummary, VerifyError> {
    let mut v = ChainVerifier::new(options);
    for b in blocks {
        v.push(b)?;
    }
    Ok(v.finish())
}

fn fails(blocks: &[pb::Block]) -> String {
    verify_all(blocks, VerifyOptions::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn honest_chain_verifies() {
    let w = world();
    let summary = verify_all(&w.chain(&[1, 2, 4]), VerifyOptions::default()).unwrap();
    assert_eq!((summary.blocks, summary.entries), (3, 9));
    assert_eq!(summary.network.as_deref(), Some("net"));
}

#[test]
fn chains_of_blake3_trees_verify_and_keep_their_hash() {
    let w = world();
    let old = w.chain_of(TreeHash::Blake3, &[1, 2, 4]);
    let versions: Vec<u32> = old
        .iter()
        .map(|b| b.header.as_ref().unwrap().header.as_ref().unwrap().version)
        .collect();
    assert_eq!(versions, [1, 1, 1]);
    let summary = verify_all(&old, VerifyOptions::default()).unwrap();
    assert_eq!((summary.blocks, summary.entries), (3, 9));
    // A block claiming the other hash (re-signed, so only the hash is wrong) is refused.
    let mut switched = old.clone();
    let mut signed = SignedHeader::from_pb(switched[1].header.as_ref().unwrap()).unwrap();
    signed.header.tree = TreeHash::Sha256;
    let leaves: Vec<_> = w
        .entries(2)
        .iter()
        .map(|e| e.leaf_hash(TreeHash::Sha256))
        .collect();
    signed.header.merkle_root = merkle::root(TreeHash::Sha256, &leaves);
    signed.signatures = vec![Some(w.attester.sign(&signed.header.signing_bytes()))];
    switched[1].header = Some(signed.to_pb());
    switched.truncate(2);
    assert_eq!(
        fails(&switched),
        "block 1: the block's Merkle trees use sha256, the chain's blake3"
    );
}

#[test]
fn tampered_record_is_located() {
    let w = world();
    let mut chain = w.chain(&[1, 2]);
    let body = chain[1].entries[1]
        .record
        .as_mut()
        .unwrap()
        .body
        .as_mut()
        .unwrap();
    body.bytes += 1;
    assert_eq!(
        fails(&chain),
        "block 1, entry 1: record signature does not verify"
    );
}

#[test]
fn tampered_observation_and_judgement_are_located() {
    let w = world();
    let mut chain = w.chain(&[1]);
    chain[0].entries[0].observation.as_mut().unwrap().signature[3] ^= 1;
    assert_eq!(
        fails(&chain),
        "block 0, entry 0: observation signature does not verify"
    );
    let mut chain = w.chain(&[1]);
    let disputed = chain[0]
        .entries
        .iter()
        .position(|e| e.judgement.as_ref().unwrap().verdict == pb::Verdict::Disputed as i32);
    let disputed = disputed.unwrap();
    chain[0].entries[disputed]
        .judgement
        .as_mut()
        .unwrap()
        .verdict = pb::Verdict::Attested as i32;
    let want = format!("block 0, entry {disputed}: judgement: verdict Attested");
    assert!(fails(&chain).starts_with(&want), "{}", fails(&chain));
    let mut chain = w.chain(&[1]);
    let attested = (disputed + 1) % 3;
    chain[0].entries[attested]
        .judgement
        .as_mut()
        .unwrap()
        .cosignature[0] ^= 1;
    let want = format!("block 0, entry {attested}: co-signature does not verify");
    assert_eq!(fails(&chain), want);
}

#[test]
fn reordered_dropped_and_rechained_blocks_are_located() {
    let w = world();
    let mut chain = w.chain(&[1]);
    chain[0].entries.swap(0, 1);
    assert!(
        fails(&chain).starts_with("block 0, entry 1: entry"),
        "{}",
        fails(&chain)
    );
    let mut chain = w.chain(&[1]);
    chain[0].entries.pop();
    assert_eq!(
        fails(&chain),
        "block 0: header counts 3 entries, the block has 2"
    );
    let mut chain = w.chain(&[1, 2, 3]);
    chain.remove(1);
    assert_eq!(fails(&chain), "block 1: header says height 2, expected 1");
    let mut chain = w.chain(&[1, 2]);
    chain[0]
        .header
        .as_mut()
        .unwrap()
        .header
        .as_mut()
        .unwrap()
        .time += 1;
    assert!(
        fails(&chain).starts_with("block 0: signature of"),
        "{}",
        fails(&chain)
    );
}

#[test]
fn a_signer_who_lies_about_the_root_is_caught() {
    let w = world();
    let entries = w.entries(1);
    let Block {
        header: mut signed,
        entries,
    } = block::seal(
        &Tip::GENESIS,
        "net",
        1,
        entries,
        5,
        Sealer::Attester(&w.attester),
    );
    signed.header.merkle_root = [7; 32];
    signed.signatures = vec![Some(w.attester.sign(&signed.header.signing_bytes()))];
    let chain = [Block {
        header: signed,
        entries,
    }
    .to_pb()];
    assert!(fails(&chain).starts_with("block 0: entries hash to Merkle root"));
}

#[test]
fn registry_limits_who_may_sign() {
    let w = world();
    let chain = w.chain(&[1]);
    let mut registry = KeyRegistry::default();
    registry.insert(NodeKey::of(&w.sup), Role::Super).unwrap();
    for e in &w.edges[..2] {
        registry.insert(NodeKey::of(e), Role::Edge).unwrap();
    }
    let options = VerifyOptions {
        network: None,
        registry: Some(registry.clone()),
    };
    let err = verify_all(&chain, options).unwrap_err();
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::Untrusted {
                role: Role::Edge,
                ..
            }
        ),
        "{err}"
    );
    registry
        .insert(NodeKey::of(&w.edges[2]), Role::Edge)
        .unwrap();
    let options = VerifyOptions {
        network: Some("net".into()),
        registry: Some(registry),
    };
    assert!(verify_all(&chain, options).is_ok());
    let options = VerifyOptions {
        network: Some("other".into()),
        registry: None,
    };
    assert!(
        verify_all(&chain, options)
            .unwrap_err()
            .to_string()
            .contains("network")
    );
}
