//! Why the ledger refuses a submission. The ledger names the reason of a refused
//! `SubmitRecords` in the gRPC metadata [`REASON_METADATA`] and counts refused items by the
//! same label (`hsn_ledger_items_refused_total{reason}`); the agent counts its refusals by
//! it too. One list, so the three cannot drift apart.

use std::fmt;
use std::str::FromStr;

/// Metadata key naming the refusal reason (a [`Reason`] label) of a refused submission.
pub const REASON_METADATA: &str = "hsn-refusal-reason";
/// Metadata key naming the refused item, e.g. `records[3]`.
pub const ITEM_METADATA: &str = "hsn-refused-item";

/// A refusal reason; its [`label`](Reason::label) is what the metadata and metrics say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A record or observation that does not decode or validate.
    Malformed,
    /// No records or observations.
    Empty,
    /// Another network's item.
    WrongNetwork,
    /// An item without signature.
    Unsigned,
    /// A signature that does not verify.
    BadSignature,
    /// A key the registry does not know.
    UnknownKey,
    /// A key registered in another role.
    WrongRole,
    /// An epoch that has not started on the ledger's clock.
    FutureEpoch,
    /// New information for an epoch already sealed.
    EpochSealed,
    /// A different statement for a slot already filled.
    Conflict,
    /// More items than allowed in one request.
    TooMany,
    /// A request over the size limit. The transport refuses it (`OUT_OF_RANGE`) before any
    /// handler runs, so it is counted but never named in the metadata.
    TooLarge,
    /// The store failed (`INTERNAL`); counted, never named in the metadata.
    Storage,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 13] = [
        Self::Malformed,
        Self::Empty,
        Self::WrongNetwork,
        Self::Unsigned,
        Self::BadSignature,
        Self::UnknownKey,
        Self::WrongRole,
        Self::FutureEpoch,
        Self::EpochSealed,
        Self::Conflict,
        Self::TooMany,
        Self::TooLarge,
        Self::Storage,
    ];

    /// The label in metadata and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Empty => "empty",
            Self::WrongNetwork => "wrong_network",
            Self::Unsigned => "unsigned",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::WrongRole => "wrong_role",
            Self::FutureEpoch => "future_epoch",
            Self::EpochSealed => "epoch_sealed",
            Self::Conflict => "conflict",
            Self::TooMany => "too_many",
            Self::TooLarge => "too_large",
            Self::Storage => "storage",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A label that names no [`Reason`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown refusal reason {0:?}")]
pub struct ParseReasonError(pub String);

impl FromStr for Reason {
    type Err = ParseReasonError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.label() == s)
            .ok_or_else(|| ParseReasonError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert_eq!(reason.label().parse::<Reason>(), Ok(reason));
            assert_eq!(reason.to_string(), reason.label());
            assert!(seen.insert(reason.label()), "{reason} twice");
        }
        assert!("store".parse::<Reason>().is_err());
    }
}
