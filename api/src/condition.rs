//! The words of `status.conditions`: condition types, and each kind's reasons as an enum
//! (the reasons are next to their kind: [`HsnNetworkReason`](crate::network::HsnNetworkReason),
//! [`MecClusterReason`](crate::cluster::MecClusterReason),
//! [`HsnNodeReason`](crate::node::HsnNodeReason)). The operator writes them; `hsnctl`, tests
//! and anyone else read them through these names instead of spelling the strings again.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// A closed set of PascalCase words written into conditions: each variant's name is its
/// text. Gives the enum `as_str`, `ALL`, `Display`, `FromStr` and `Into<&'static str>`.
macro_rules! condition_words {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value.
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            /// The text in the condition.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant),)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::condition::UnknownWord;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::condition::UnknownWord(s.to_owned()))
            }
        }

        impl From<$name> for &'static str {
            fn from(v: $name) -> Self {
                v.as_str()
            }
        }
    };
}
pub(crate) use condition_words;

/// A condition type or reason no HSN kind uses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown condition word {0:?}")]
pub struct UnknownWord(pub String);

condition_words! {
    /// Condition types of HSN objects (`status.conditions[].type`).
    pub enum ConditionType {
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
        assert_eq!(
            "Unready".parse::<ConditionType>(),
            Err(UnknownWord("Unready".into()))
        );
    }
}
