//! Prometheus metrics of the ledger, registered under `hsn_ledger_` in the process's one
//! registry. Counters end in `_total`, durations in `_seconds`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::block::SignedHeader;
use crate::ledger::{SubmitError, Submitted};
use hsn_ledger_api::refusal::Reason;

/// Labels of refused items.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A [`Reason`] label.
    pub reason: &'static str,
}

/// Labels of accepted items.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `stored`, `duplicate`, `attested` or `disputed`.
    pub outcome: &'static str,
}

/// Labels of gRPC calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// Method name.
    pub rpc: &'static str,
    /// gRPC status code name.
    pub code: &'static str,
}

/// The ledger's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Items refused, by reason.
    pub refused: Family<ReasonLabels, Counter>,
    /// Items accepted, by outcome.
    pub accepted: Family<OutcomeLabels, Counter>,
    /// Calls, by method and status code.
    pub calls: Family<RpcLabels, Counter>,
    /// Blocks sealed.
    pub blocks_sealed: Counter,
    /// Number of blocks in the chain.
    pub height: Gauge,
    /// Time to validate and commit one SubmitRecords call.
    pub submit_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            refused: Family::default(),
            accepted: Family::default(),
            calls: Family::default(),
            blocks_sealed: Counter::default(),
            height: Gauge::default(),
            submit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        }
    }
}

impl Metrics {
    /// New metrics registered in `registry` under the `hsn_ledger` prefix, every refusal
    /// reason and outcome at zero (so an `increase(...) > 0` alert sees the first one).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        for &reason in Reason::ALL {
            let _ = m.refused.get_or_create(&ReasonLabels {
                reason: reason.label(),
            });
        }
        for outcome in OUTCOMES {
            let _ = m.accepted.get_or_create(&OutcomeLabels { outcome });
        }
        let r = registry.sub_registry_with_prefix("hsn_ledger");
        r.register(
            "items_refused",
            "Records and observations refused, by reason",
            m.refused.clone(),
        );
        r.register(
            "items_accepted",
            "Records and observations accepted, by outcome",
            m.accepted.clone(),
        );
        r.register(
            "calls",
            "gRPC calls, by method and status code",
            m.calls.clone(),
        );
        r.register("blocks_sealed", "Blocks sealed", m.blocks_sealed.clone());
        r.register(
            "height_blocks",
            "Number of blocks in the chain",
            m.height.clone(),
        );
        r.register(
            "submit_duration_seconds",
            "Time to validate and commit a SubmitRecords call",
            m.submit_seconds.clone(),
        );
        m
    }

    /// Counts sealed blocks and sets the height to the newest one's.
    pub fn sealed(&self, headers: &[SignedHeader]) {
        self.blocks_sealed.inc_by(headers.len() as u64);
        if let Some(last) = headers.last() {
            let last = &last.header;
            self.set_height(last.height + 1);
        }
    }

    /// Sets the height gauge: the number of blocks in the chain.
    pub fn set_height(&self, blocks: u64) {
        self.height.set(i64::try_from(blocks).unwrap_or(i64::MAX));
    }

    /// Counts what a submission did.
    pub fn submitted(&self, result: Result<&Submitted, &SubmitError>) {
        match result {
            Ok(s) => {
                let counts = [s.stored, s.duplicates, s.attested, s.disputed];
                for (outcome, n) in OUTCOMES.into_iter().zip(counts) {
                    self.accepted
                        .get_or_create(&OutcomeLabels { outcome })
                        .inc_by(u64::from(n));
                }
            }
            Err(SubmitError::Refused { reasons, .. }) => {
                for &reason in reasons {
                    self.refused.get_or_create(&ReasonLabels { reason }).inc();
                }
            }
            Err(SubmitError::Store(_)) => {
                self.refused
                    .get_or_create(&ReasonLabels {
                        reason: Reason::Storage.label(),
                    })
                    .inc();
            }
        }
    }

    /// Counts a gRPC call's outcome.
    pub fn call(&self, rpc: &'static str, code: tonic::Code) {
        self.calls
            .get_or_create(&RpcLabels {
                rpc,
                code: code_name(code),
            })
            .inc();
    }
}

/// The `outcome` labels of accepted items.
const OUTCOMES: [&str; 4] = ["stored", "duplicate", "attested", "disputed"];

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "ok",
        Cancelled => "cancelled",
        Unknown => "unknown",
        InvalidArgument => "invalid_argument",
        DeadlineExceeded => "deadline_exceeded",
        NotFound => "not_found",
        AlreadyExists => "already_exists",
        PermissionDenied => "permission_denied",
        ResourceExhausted => "resource_exhausted",
        FailedPrecondition => "failed_precondition",
        Aborted => "aborted",
        OutOfRange => "out_of_range",
        Unimplemented => "unimplemented",
        Internal => "internal",
        Unavailable => "unavailable",
        DataLoss => "data_loss",
        Unauthenticated => "unauthenticated",
    }
}
