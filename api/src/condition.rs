//! The words of `status.conditions`: condition types, and each kind's reasons as an enum
//! (the reasons are next to their kind: [`HsnNetworkReason`](crate::network::HsnNetworkReason),
//! [`MecClusterReason`](crate::cluster::MecClusterReason),
//! [`HsnNodeReason`](crate::node::HsnNodeReason)). The operator writes them; `hsnctl`, tests
//! and anyone else read them through these names instead of spelling the strings again.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::{Schema, SchemaGenerator};
use serde_json::json;

hsn_core::words! {
    /// Condition types of HSN objects (`status.conditions[].type`).
    pub enum ConditionType: "condition type" {
        /// The object does what its spec asks.
        Ready,
        /// The operator is still moving the object toward its spec (HsnNetwork).
        Progressing,
        /// Part of the object is unavailable, the rest still serves (HsnNetwork).
        Degraded,
        /// A MecCluster's API server answers.
        Reachable,
    }
}

/// Most conditions one object carries.
pub const MAX_CONDITIONS: i64 = 16;
/// Longest condition message the API server takes; writers shorten theirs with [`truncate`].
pub const MAX_MESSAGE: usize = 4096;

/// Schema of a `conditions` list: `metav1.Condition` with the bounds Kubernetes gives it
/// (type 316, reason 1024 characters, status True/False/Unknown) and [`MAX_MESSAGE`],
/// [`MAX_CONDITIONS`]. Use it with `#[schemars(schema_with = "crate::condition::schema")]`.
pub fn schema(generator: &mut SchemaGenerator) -> Schema {
    let message = i64::try_from(MAX_MESSAGE).unwrap_or(i64::MAX);
    crate::bounds::embedded::<Vec<Condition>>(
        generator,
        &[
            ("", "maxItems", json!(MAX_CONDITIONS)),
            ("/items/properties/type", "maxLength", json!(316)),
            ("/items/properties/reason", "maxLength", json!(1024)),
            (
                "/items/properties/status",
                "enum",
                json!(["True", "False", "Unknown"]),
            ),
            ("/items/properties/message", "maxLength", json!(message)),
        ],
    )
}

/// `message` cut to at most `max` characters, ending in `…` when cut.
pub fn truncate(message: &str, max: usize) -> String {
    if message.chars().count() <= max {
        return message.to_string();
    }
    let mut out: String = message.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The condition of `type_` in `conditions`, if any.
pub fn find(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// Whether the condition of `type_` is True.
pub fn is_true(conditions: &[Condition], type_: ConditionType) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Whether some condition of `type_` has `reason`.
pub fn has_reason(conditions: &[Condition], type_: ConditionType, reason: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_.as_str() && c.reason == reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_back_as_themselves() {
        for t in ConditionType::ALL {
            assert_eq!(t.as_str().parse::<ConditionType>(), Ok(*t));
        }
        assert_eq!(ConditionType::Reachable.to_string(), "Reachable");
        let unknown = "Unready".parse::<ConditionType>().unwrap_err();
        assert_eq!(unknown.word, "Unready");
    }

    #[test]
    fn truncate_keeps_short_messages_and_marks_cut_ones() {
        assert_eq!(truncate("fine", 4), "fine");
        assert_eq!(truncate("éééééé", 4), "ééé…");
        assert_eq!(
            truncate(&"x".repeat(5000), MAX_MESSAGE).chars().count(),
            MAX_MESSAGE
        );
    }
}
