//! Validate: what the API server's schema cannot say about a network. Pure.

use hsn_api::HsnNetworkSpec;
use hsn_core::{PrefixClaims, SharedPrefix};

/// A spec the operator cannot act on; it waits for the next change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    /// Two tenants claim the same prefix, so bytes could not be attributed.
    #[error("tenants {first} and {second} both claim {prefix}: a prefix belongs to one tenant")]
    SharedPrefix {
        /// First tenant.
        first: String,
        /// Second tenant.
        second: String,
        /// The prefix both list.
        prefix: String,
    },
}

/// Checks the rules the schema cannot express.
pub fn validate(spec: &HsnNetworkSpec) -> Result<(), Invalid> {
    let mut claims = PrefixClaims::default();
    for tenant in &spec.metering.tenants {
        for prefix in &tenant.prefixes {
            let Some(net) = prefix.net() else {
                continue;
            };
            claims.claim(net, tenant.name.as_str()).map_err(
                |SharedPrefix { first, second, .. }| Invalid::SharedPrefix {
                    first: first.to_owned(),
                    second: second.to_owned(),
                    prefix: prefix.0.clone(),
                },
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_claimed_by_two_tenants_is_refused() {
        let mut spec: HsnNetworkSpec = serde_json::from_value(serde_json::json!({
            "superNodes": {"replicas": 1},
            "edgePools": [{"name": "a", "sliceType": "eMBB"}],
            "metering": {"tenants": [
                {"name": "a", "id": 1, "prefixes": ["10.0.0.0/8"]},
                {"name": "b", "id": 2, "prefixes": ["2001:db8::/32"]}
            ]}
        }))
        .unwrap();
        assert_eq!(validate(&spec), Ok(()));
        spec.metering.tenants[1]
            .prefixes
            .push(hsn_api::network::Prefix("10.0.0.0/8".into()));
        assert_eq!(
            validate(&spec),
            Err(Invalid::SharedPrefix {
                first: "a".into(),
                second: "b".into(),
                prefix: "10.0.0.0/8".into()
            })
        );
    }
}
