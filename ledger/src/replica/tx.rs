//! Transactions and their result codes. A transaction is a `LedgerTx`; results name refusals
//! with the same reasons `SubmitRecords` uses (`info` = the reason label, `code` = its place
//! in [`Reason::ALL`] plus one), so a refusal reads the same from CometBFT's RPC.

use prost::Message;
use sha2::{Digest, Sha256};

use super::registry::ChangeRefusal;
use crate::ledger::{SubmitError, Submitted};
use crate::merkle::Hash;
use hsn_ledger_api::pb;
use hsn_ledger_api::refusal::Reason;

/// Code of a refused registry change.
pub const REGISTRY_REFUSED: u32 = 100;
/// Code of an endorsement sent to the mempool (they come from vote extensions only).
pub const ENDORSEMENT_IN_MEMPOOL: u32 = 101;

/// A transaction's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxCode {
    /// 0 when applied.
    pub code: u32,
    /// For people.
    pub log: String,
    /// The refusal reason's label, when refused.
    pub info: String,
    /// An applied submission's `SubmitRecordsResponse`.
    pub data: Vec<u8>,
}

impl TxCode {
    /// Applied.
    pub fn ok(data: Vec<u8>) -> Self {
        Self {
            data,
            ..Self::default()
        }
    }

    fn refused(reason: Reason, log: String) -> Self {
        let place = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        Self {
            code: u32::try_from(place).unwrap_or(0) + 1,
            log,
            info: reason.label().to_owned(),
            data: Vec::new(),
        }
    }

    pub(super) fn endorsement_in_mempool() -> Self {
        Self {
            code: ENDORSEMENT_IN_MEMPOOL,
            log: "endorsements are made by proposers from vote extensions".to_owned(),
            info: "endorsement".to_owned(),
            data: Vec::new(),
        }
    }

    /// The refusal reason of a code, if it is one.
    pub fn reason(&self) -> Option<Reason> {
        let place = usize::try_from(self.code).ok()?.checked_sub(1)?;
        Reason::ALL.get(place).copied()
    }
}

/// CometBFT's hash of a transaction (SHA-256), which its RPC reports.
pub fn tx_hash(tx: &[u8]) -> Hash {
    Sha256::digest(tx).into()
}

/// Decodes a transaction; one carrying more than `max_items` records and observations is
/// refused before it is decoded.
pub(super) fn decode(bytes: &[u8], max_items: usize) -> Result<pb::ledger_tx::Kind, TxCode> {
    let malformed = |m: String| TxCode::refused(Reason::Malformed, m);
    if let Some(items) = crate::ledger::encoded_tx_items(bytes).filter(|&n| n > max_items) {
        let log = format!("request: {items} items in one request, at most {max_items} allowed");
        return Err(TxCode::refused(Reason::TooMany, log));
    }
    let tx = pb::LedgerTx::decode(bytes).map_err(|e| malformed(format!("not a LedgerTx: {e}")))?;
    tx.kind
        .ok_or_else(|| malformed("a LedgerTx without content".to_owned()))
}

pub(super) fn submitted(result: &Result<Submitted, SubmitError>) -> TxCode {
    match result {
        Ok(done) => TxCode::ok(
            pb::SubmitRecordsResponse {
                stored: done.stored,
                duplicates: done.duplicates,
                attested: done.attested,
                disputed: done.disputed,
            }
            .encode_to_vec(),
        ),
        Err(SubmitError::Refused { first, .. }) => {
            TxCode::refused(first.refusal.reason(), first.to_string())
        }
        Err(SubmitError::Store(e)) => TxCode::refused(Reason::Storage, e.to_string()),
    }
}

pub(super) fn registry(result: Result<(), ChangeRefusal>) -> TxCode {
    match result {
        Ok(()) => TxCode::ok(Vec::new()),
        Err(e) => TxCode {
            code: REGISTRY_REFUSED,
            log: e.to_string(),
            info: "registry".to_owned(),
            data: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_their_reason() {
        for &reason in Reason::ALL {
            let code = TxCode::refused(reason, String::new());
            assert_ne!(code.code, 0);
            assert_eq!(code.reason(), Some(reason));
            assert_eq!(code.info, reason.label());
        }
        assert_eq!(TxCode::ok(vec![]).reason(), None);
        assert_eq!(
            decode(b"\xff\xff", 10).unwrap_err().reason(),
            Some(Reason::Malformed)
        );
        let many = pb::LedgerTx {
            kind: Some(pb::ledger_tx::Kind::Submit(pb::SubmitRecordsRequest {
                records: vec![pb::SignedRecord::default(); 11],
                observations: vec![],
            })),
        };
        let refused = decode(&many.encode_to_vec(), 10).unwrap_err();
        assert_eq!(refused.reason(), Some(Reason::TooMany));
    }
}
