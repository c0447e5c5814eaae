//! What `hsnctl ledger` prints: serializable views of ledger data, and their tables.

use serde::Serialize;

use crate::table;
use hsn_ledger::block::{BlockError, SignedHeader};
use hsn_ledger::entry::{Entry, EntryError};
use hsn_ledger::rewards::Rewards;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;

/// `hsnctl ledger status`.
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// Network.
    pub network: String,
    /// Number of blocks.
    pub blocks: u64,
    /// Head hash, hex.
    pub head_hash: Option<String>,
    /// Current epoch.
    pub current_epoch: u64,
    /// Sealed through.
    pub sealed_through: Option<u64>,
    /// Pending entries.
    pub pending_entries: u64,
    /// Evidence items.
    pub evidence: u64,
    /// The ledger's key, hex.
    pub signer: String,
    /// Epoch length.
    pub epoch_seconds: u64,
    /// Ledger time.
    pub time: u64,
    /// Records of an epoch are accepted this long after it ends; epochs through
    /// `sealed_through` are final.
    pub late_window_seconds: u64,
    /// Replicated over a validator set (CometBFT).
    pub replicated: bool,
    /// Replicated: the last CometBFT block applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_height: Option<u64>,
    /// Replicated: ledger blocks below this height are endorsed by their quorum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endorsed_blocks: Option<u64>,
    /// Replicated: the validators.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validators: Vec<ValidatorView>,
}

/// A validator of a replicated ledger.
#[derive(Debug, Serialize)]
pub struct ValidatorView {
    /// Key, hex.
    pub key: String,
    /// Registry name.
    pub name: String,
    /// Voting power.
    pub power: i64,
    /// The newest ledger block it signed (of the recent ones).
    pub last_signed_block: Option<u64>,
}

impl From<pb::StatusResponse> for StatusView {
    fn from(s: pb::StatusResponse) -> Self {
        Self {
            network: s.network,
            blocks: s.height,
            head_hash: (!s.head_hash.is_empty()).then(|| hex::encode(&s.head_hash)),
            current_epoch: s.current_epoch,
            sealed_through: s.sealed_through,
            pending_entries: s.pending_entries,
            evidence: s.evidence_count,
            signer: hex::encode(&s.signer_key),
            epoch_seconds: s.epoch_seconds,
            time: s.time,
            late_window_seconds: s.late_window_seconds,
            replicated: s.replicated,
            app_height: s.replicated.then_some(s.app_height),
            endorsed_blocks: s.replicated.then_some(s.endorsed_blocks),
            validators: s
                .validators
                .into_iter()
                .map(|v| ValidatorView {
                    key: hex::encode(&v.key),
                    name: v.name,
                    power: v.power,
                    last_signed_block: v.last_signed_block,
                })
                .collect(),
        }
    }
}

impl StatusView {
    /// As `name: value` lines.
    pub fn table(&self) -> String {
        let mut out = table::fields(&[
            ("network", self.network.clone()),
            ("blocks", self.blocks.to_string()),
            ("head", table::or_dash(self.head_hash.as_ref())),
            ("current epoch", self.current_epoch.to_string()),
            ("sealed through", table::or_dash(self.sealed_through)),
            ("pending entries", self.pending_entries.to_string()),
            ("evidence", self.evidence.to_string()),
            ("signer", self.signer.clone()),
            ("epoch seconds", self.epoch_seconds.to_string()),
            ("late window seconds", self.late_window_seconds.to_string()),
            ("final through", table::or_dash(self.sealed_through)),
            ("replicated", self.replicated.to_string()),
        ]);
        if let (Some(app), Some(endorsed)) = (self.app_height, self.endorsed_blocks) {
            out.push_str(&table::fields(&[
                ("consensus height", app.to_string()),
                ("endorsed blocks", endorsed.to_string()),
            ]));
            out.push('\n');
            let headers = ["VALIDATOR", "NAME", "POWER", "LAST_SIGNED_BLOCK"];
            out.push_str(&table::render_each(&headers, &self.validators, |v| {
                vec![
                    v.key.clone(),
                    table::or_dash(Some(&v.name).filter(|n| !n.is_empty())),
                    v.power.to_string(),
                    table::or_dash(v.last_signed_block),
                ]
            }));
        }
        out
    }
}

/// A block header as listed.
#[derive(Debug, Serialize)]
pub struct BlockView {
    /// Height.
    pub height: u64,
    /// Epoch.
    pub epoch: u64,
    /// Entry count.
    pub entries: u32,
    /// Seal time, unix seconds.
    pub time: u64,
    /// Header hash, hex.
    pub hash: String,
    /// Previous header hash, hex.
    pub prev_hash: String,
    /// Merkle root, hex.
    pub merkle_root: String,
    /// Signer keys, hex.
    pub signers: Vec<NodeKey>,
}

impl BlockView {
    /// Decodes a signed header for display.
    pub fn from_pb(m: &pb::SignedHeader) -> Result<Self, BlockError> {
        let h = SignedHeader::from_pb(m)?.header;
        Ok(Self {
            height: h.height,
            epoch: h.epoch,
            entries: h.entry_count,
            time: h.time,
            hash: hex::encode(h.hash()),
            prev_hash: hex::encode(h.prev_hash),
            merkle_root: hex::encode(h.merkle_root),
            signers: h.signers,
        })
    }

    /// One table of headers.
    pub fn table(blocks: &[BlockView]) -> String {
        let headers = ["HEIGHT", "EPOCH", "ENTRIES", "TIME", "HASH"];
        table::render_each(&headers, blocks, |b| {
            vec![
                b.height.to_string(),
                b.epoch.to_string(),
                b.entries.to_string(),
                b.time.to_string(),
                b.hash.clone(),
            ]
        })
    }
}

/// An entry as shown in a block.
#[derive(Debug, Serialize)]
pub struct EntryView {
    /// Position in the block.
    pub index: usize,
    /// Record id, `<epoch>/<node>/<tenant>/<dir>`, the argument of `proof`.
    pub record: String,
    /// attested, disputed, unobserved, unclaimed.
    pub status: hsn_ledger::entry::Status,
    /// Bytes the edge claimed.
    pub claimed_bytes: Option<u64>,
    /// Bytes the super observed.
    pub observed_bytes: Option<u64>,
}

impl EntryView {
    /// Decodes a stored entry for display.
    pub fn from_pb(index: usize, m: &pb::Entry) -> Result<Self, EntryError> {
        let e = Entry::from_pb(m)?;
        Ok(Self {
            index,
            record: e.key().to_string(),
            status: e.status(true),
            claimed_bytes: e.record.as_ref().map(|r| r.body.bytes),
            observed_bytes: e.observation.as_ref().map(|o| o.body.bytes),
        })
    }
}

/// `hsnctl ledger show <height>`.
#[derive(Debug, Serialize)]
pub struct ShowView {
    /// The header.
    pub block: BlockView,
    /// The entries.
    pub entries: Vec<EntryView>,
}

impl ShowView {
    /// Header fields, then the entries.
    pub fn table(&self) -> String {
        let b = &self.block;
        let signers: Vec<String> = b.signers.iter().map(NodeKey::to_hex).collect();
        let mut out = table::fields(&[
            ("height", b.height.to_string()),
            ("epoch", b.epoch.to_string()),
            ("time", b.time.to_string()),
            ("hash", b.hash.clone()),
            ("prev hash", b.prev_hash.clone()),
            ("merkle root", b.merkle_root.clone()),
            ("signers", signers.join(", ")),
        ]);
        out.push('\n');
        let headers = ["INDEX", "STATUS", "CLAIMED", "OBSERVED", "RECORD"];
        out.push_str(&table::render_each(&headers, &self.entries, |e| {
            vec![
                e.index.to_string(),
                e.status.label().to_owned(),
                table::or_dash(e.claimed_bytes),
                table::or_dash(e.observed_bytes),
                e.record.clone(),
            ]
        }));
        out
    }
}

/// `hsnctl ledger proof <record>`: a proof that verified.
#[derive(Debug, Serialize)]
pub struct ProofView {
    /// Record id.
    pub record: String,
    /// Entry status.
    pub status: hsn_ledger::entry::Status,
    /// Block height.
    pub height: u64,
    /// Block hash, hex: compare with `hsnctl ledger blocks` or `verify`.
    pub block_hash: String,
    /// Merkle root, hex.
    pub merkle_root: String,
    /// Leaf position.
    pub index: u32,
    /// Leaves in the block.
    pub leaves: u32,
    /// Sibling hashes, hex, leaf level first.
    pub siblings: Vec<String>,
    /// Bytes of the proof (siblings, index and count).
    pub proof_bytes: usize,
}

impl ProofView {
    /// As `name: value` lines.
    pub fn table(&self) -> String {
        table::fields(&[
            ("record", self.record.clone()),
            ("status", self.status.label().to_owned()),
            ("block", self.height.to_string()),
            ("block hash", self.block_hash.clone()),
            ("merkle root", self.merkle_root.clone()),
            ("leaf", format!("{} of {}", self.index, self.leaves)),
            (
                "proof",
                format!(
                    "{} siblings, {} bytes: verified",
                    self.siblings.len(),
                    self.proof_bytes
                ),
            ),
        ])
    }
}

/// Rewards as a table.
pub fn rewards_table(r: &Rewards) -> String {
    let mut out = format!(
        "epochs {}..={}, pool {}, attested bytes {}, excluded: {} disputed, {} unobserved, {} unclaimed\n\n",
        r.from_epoch,
        r.to_epoch,
        r.pool,
        r.total_attested_bytes,
        r.disputed,
        r.unobserved,
        r.unclaimed
    );
    match (r.final_through, r.is_final()) {
        (_, true) => {}
        (Some(f), false) => out.push_str(&format!(
            "not final: epochs after {f} are within their late window and may still change\n\n"
        )),
        (None, false) => out.push_str("not final: no epoch is final yet\n\n"),
    }
    let headers = [
        "NODE",
        "KEY",
        "ATTESTED_BYTES",
        "ENTRIES",
        "EXCLUDED",
        "SHARE",
        "REWARD",
    ];
    out.push_str(&table::render_each(&headers, &r.nodes, |n| {
        vec![
            table::or_dash(n.name.as_ref()),
            n.node.to_hex(),
            n.attested_bytes.to_string(),
            n.attested_entries.to_string(),
            n.excluded_entries.to_string(),
            format!("{:.4}%", n.share_ppm as f64 / 10_000.0),
            n.reward.to_string(),
        ]
    }));
    out
}
