//! Why the ledger refuses a submission. The ledger names the reason of a refused
//! `SubmitRecords` in the gRPC metadata [`REASON_METADATA`] and counts refused items by the
//! same label (`hsn_ledger_items_refused_total{reason}`); the agent counts its refusals by
//! it too. One list, so the three cannot drift apart.

/// Metadata key naming the refusal reason (a [`Reason`] label) of a refused submission.
pub const REASON_METADATA: &str = "hsn-refusal-reason";
/// Metadata key naming the refused item, e.g. `records[3]`.
pub const ITEM_METADATA: &str = "hsn-refused-item";

hsn_core::words! {
    /// A refusal reason; its text is what the metadata and metrics say.
    pub enum Reason: "refusal reason" {
        /// A record or observation that does not decode or validate.
        Malformed = "malformed",
        /// No records or observations.
        Empty = "empty",
        /// Another network's item.
        WrongNetwork = "wrong_network",
        /// An item without signature.
        Unsigned = "unsigned",
        /// A signature that does not verify.
        BadSignature = "bad_signature",
        /// A key the registry does not know.
        UnknownKey = "unknown_key",
        /// A key registered in another role.
        WrongRole = "wrong_role",
        /// An epoch that has not started on the ledger's clock.
        FutureEpoch = "future_epoch",
        /// New information for an epoch already sealed.
        EpochSealed = "epoch_sealed",
        /// A different statement for a slot already filled.
        Conflict = "conflict",
        /// More items than allowed in one request.
        TooMany = "too_many",
        /// A request over the size limit. The transport refuses it (`OUT_OF_RANGE`) before any
        /// handler runs, so it is counted but never named in the metadata.
        TooLarge = "too_large",
        /// The store failed (`INTERNAL`); counted, never named in the metadata.
        Storage = "storage",
    }
}

impl Reason {
    /// The label in metadata and metrics.
    pub fn label(self) -> &'static str {
        self.as_str()
    }
}

/// A label that names no [`Reason`].
pub type ParseReasonError = hsn_core::UnknownWord;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for &reason in Reason::ALL {
            assert_eq!(reason.label().parse::<Reason>(), Ok(reason));
            assert_eq!(reason.to_string(), reason.label());
            assert!(seen.insert(reason.label()), "{reason} twice");
        }
        assert!("store".parse::<Reason>().is_err());
    }
}
