//! Writing status conditions: types and reasons are the API's enums
//! ([`hsn_api::condition`]), transition times survive unchanged conditions.

use hsn_api::ConditionType;
use hsn_api::condition::{MAX_MESSAGE, find, truncate};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// One condition as a controller computes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    /// Condition type.
    pub type_: ConditionType,
    /// True or False.
    pub status: bool,
    /// PascalCase reason.
    pub reason: &'static str,
    /// What a person should know.
    pub message: String,
}

impl Cond {
    /// A condition of `type_` that holds or not (`status`).
    pub fn new(
        type_: ConditionType,
        status: bool,
        reason: impl Into<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A condition that holds.
    pub fn yes(
        type_: ConditionType,
        reason: impl Into<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, true, reason, message)
    }

    /// A condition that does not hold.
    pub fn no(
        type_: ConditionType,
        reason: impl Into<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, false, reason, message)
    }
}

/// Longest Event note the events API takes, in bytes.
const MAX_NOTE_BYTES: usize = 1024;

/// `message` as an Event's note: cut to what the events API takes (1 kB), ending in `…` when
/// cut, so a long message never makes the Event, and the reconcile with it, fail.
pub fn event_note(message: &str) -> String {
    if message.len() <= MAX_NOTE_BYTES {
        return message.to_string();
    }
    let mut out = String::new();
    for c in message.chars() {
        if out.len() + c.len_utf8() + '…'.len_utf8() > MAX_NOTE_BYTES {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// The conditions to write: `new` in order, keeping each existing condition's transition
/// time when its status did not change.
pub fn merge(
    existing: &[Condition],
    new: &[Cond],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    new.iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" };
            let last_transition_time = match find(existing, c.type_) {
                Some(o) if o.status == status => o.last_transition_time.clone(),
                _ => Time(now),
            };
            Condition {
                type_: c.type_.as_str().to_string(),
                status: status.to_string(),
                reason: c.reason.to_string(),
                message: truncate(&c.message, MAX_MESSAGE),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use hsn_api::condition::is_true;

    use super::*;

    #[test]
    fn transition_time_survives_an_unchanged_status_and_moves_on_a_change() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let first = merge(
            &[],
            &[Cond::yes(ConditionType::Ready, "Ok", "fine")],
            Some(1),
            t0,
        );
        let same = merge(
            &first,
            &[Cond::yes(ConditionType::Ready, "Ok", "still fine")],
            Some(2),
            t1,
        );
        assert_eq!(same[0].last_transition_time, Time(t0));
        assert_eq!(same[0].message, "still fine");
        let flipped = merge(
            &same,
            &[Cond::no(ConditionType::Ready, "Down", "gone")],
            Some(2),
            t1,
        );
        assert_eq!(flipped[0].last_transition_time, Time(t1));
        assert_eq!(flipped[0].status, "False");
        assert!(!is_true(&flipped, ConditionType::Ready));
    }

    #[test]
    fn messages_fit_what_the_api_server_and_the_events_api_take() {
        let long = "é".repeat(10_000);
        let merged = merge(
            &[],
            &[Cond::no(ConditionType::Ready, "Down", long.clone())],
            None,
            "2026-01-01T00:00:00Z".parse().unwrap(),
        );
        assert_eq!(merged[0].message.chars().count(), MAX_MESSAGE);
        assert!(merged[0].message.ends_with('…'));
        let note = event_note(&long);
        assert!(note.len() <= MAX_NOTE_BYTES && note.ends_with('…'));
        assert_eq!(event_note("short"), "short");
    }
}
