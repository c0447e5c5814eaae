//! A label selector whose shape the API server checks, unlike `metav1.LabelSelector`
//! whose operator is a free string.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of a label value: empty, or alphanumerics, '-', '_' and '.' starting and ending
/// with an alphanumeric.
const LABEL_VALUE: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/// Selects objects by their labels. An empty selector matches everything.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Labels that must all be present with exactly these values; at most 8.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 8, "additionalProperties" = {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE}))]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements, all of which must hold; at most 8.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub match_expressions: Vec<SelectorRequirement>,
}

/// One set-based label requirement, e.g. `region In (eu-west, eu-north)`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0"
).message("operators In and NotIn need at least one value; Exists and DoesNotExist take no values"))]
pub struct SelectorRequirement {
    /// The label key, e.g. `topology.kubernetes.io/region`.
    #[schemars(length(min = 1, max = 317))]
    pub key: String,
    /// How the label's value relates to `values`.
    pub operator: SelectorOperator,
    /// Values for `In` and `NotIn` (at most 16); empty for `Exists` and `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("items" = {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE}))]
    pub values: Vec<String>,
}

/// Set-based selector operators.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present, whatever its value.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl Selector {
    /// Whether `labels` satisfy this selector (Kubernetes label-selector semantics).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|req| req.matches(labels))
    }
}

impl SelectorRequirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            SelectorOperator::In => value.is_some_and(|v| self.values.contains(v)),
            SelectorOperator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            SelectorOperator::Exists => value.is_some(),
            SelectorOperator::DoesNotExist => value.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: SelectorOperator, values: &[&str]) -> SelectorRequirement {
        SelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(Selector::default().matches(&labels(&[])));
        assert!(Selector::default().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_need_exact_values() {
        let s = Selector {
            match_labels: labels(&[("region", "eu")]),
            ..Default::default()
        };
        assert!(s.matches(&labels(&[("region", "eu"), ("zone", "a")])));
        assert!(!s.matches(&labels(&[("region", "us")])));
        assert!(!s.matches(&labels(&[])));
    }

    #[test]
    fn expressions_follow_kubernetes_semantics() {
        use SelectorOperator::*;
        let cases = [
            (req("r", In, &["a", "b"]), &[("r", "a")][..], true),
            (req("r", In, &["a", "b"]), &[("r", "c")][..], false),
            (req("r", In, &["a"]), &[][..], false),
            (req("r", NotIn, &["a"]), &[("r", "b")][..], true),
            (req("r", NotIn, &["a"]), &[][..], true),
            (req("r", NotIn, &["a"]), &[("r", "a")][..], false),
            (req("r", Exists, &[]), &[("r", "")][..], true),
            (req("r", Exists, &[]), &[][..], false),
            (req("r", DoesNotExist, &[]), &[][..], true),
            (req("r", DoesNotExist, &[]), &[("r", "x")][..], false),
        ];
        for (requirement, have, want) in cases {
            let s = Selector {
                match_expressions: vec![requirement.clone()],
                ..Default::default()
            };
            assert_eq!(
                s.matches(&labels(have)),
                want,
                "{requirement:?} on {have:?}"
            );
        }
    }
}
