//! The words of `status.conditions`: condition types, and each kind's reasons as an enum
//! (the reasons are next to their kind: [`HsnNetworkReason`](crate::network::HsnNetworkReason),
//! [`MecClusterReason`](crate::cluster::MecClusterReason),
//! [`HsnNodeReason`](crate::node::HsnNodeReason)). The operator writes them; `hsnctl`, tests
//! and anyone else read them through these names instead of spelling the strings again.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

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
}
