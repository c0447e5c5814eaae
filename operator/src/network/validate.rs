//! Validate: what the API server's schema cannot say about a network. Pure.
//!
//! Tenants' prefixes must be disjoint. The schema cannot say so within the API server's CEL
//! cost budget: 64 tenants of 32 prefixes are 2,048 prefixes, and comparing every pair
//! estimates at about 20 times the budget of one rule.

use hsn_api::HsnNetworkSpec;

use hsn_core::{NestedPrefix, PrefixClaims, SharedPrefix};

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
    /// A tenant's prefix lies inside another tenant's, so both claim its addresses.
    #[error(
        "prefix {inner} of tenant {inner_tenant} lies inside {outer} of tenant {outer_tenant}: \
         an address belongs to one tenant, so tenants' prefixes must not overlap"
    )]
    NestedPrefix {
        /// The tenant of the larger prefix.
        outer_tenant: String,
        /// The larger prefix.
        outer: String,
        /// The tenant of the prefix inside it.
        inner_tenant: String,
        /// The prefix inside it.
        inner: String,
    },
    /// A default route as a tenant prefix: it would meter every address as that tenant's.
    #[error(
        "tenant {tenant} claims the default route {prefix}: it holds every address, so all traffic would be metered as this tenant's"
    )]
    DefaultRoute {
        /// The tenant.
        tenant: String,
        /// `0.0.0.0/0` or `::/0`.
        prefix: String,
    },
    /// The network's name makes no valid member namespace.
    ///
    /// This and the default route above the API server refuses; objects stored before those
    /// rules may remain, and must not reach the members.
    #[error(
        "network name {name} makes the member namespace {namespace}, which is not a DNS label \
         (lowercase letters, digits and '-', at most 63 characters): recreate the network under such a name"
    )]
    NetworkName {
        /// The network's name.
        name: String,
        /// The namespace it would make in every member.
        namespace: String,
    },
}

/// Checks the rules the schema cannot express, and the name (which it can, for objects
/// created since).
pub fn validate(name: &str, spec: &HsnNetworkSpec) -> Result<(), Invalid> {
    let namespace = hsn_api::routes::member_namespace(name);
    if !is_dns_label(&namespace) {
        return Err(Invalid::NetworkName {
            name: name.to_string(),
            namespace,
        });
    }
    let mut claims = PrefixClaims::default();
    for tenant in &spec.metering.tenants {
        for prefix in &tenant.prefixes {
            let Some(net) = prefix.net() else {
                continue;
            };
            if net.prefix_len() == 0 {
                return Err(Invalid::DefaultRoute {
                    tenant: tenant.name.clone(),
                    prefix: prefix.0.clone(),
                });
            }
            claims.claim(net, tenant.name.as_str()).map_err(
                |SharedPrefix { first, second, .. }| Invalid::SharedPrefix {
                    first: first.to_owned(),
                    second: second.to_owned(),
                    prefix: prefix.0.clone(),
                },
            )?;
        }
    }
    match claims.nested() {
        Some(NestedPrefix {
            outer,
            outer_owner,
            inner,
            inner_owner,
        }) => Err(Invalid::NestedPrefix {
            outer_tenant: outer_owner.to_owned(),
            outer: outer.to_string(),
            inner_tenant: inner_owner.to_owned(),
            inner: inner.to_string(),
        }),
        None => Ok(()),
    }
}

/// An RFC 1123 label, what a namespace name must be.
fn is_dns_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&s.len())
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

#[cfg(test)]
mod tests {
    use hsn_api::network::Prefix;

    use super::*;

    fn spec(tenants: &[(&str, &[&str])]) -> HsnNetworkSpec {
        let tenants: Vec<_> = tenants
            .iter()
            .enumerate()
            .map(|(i, (name, prefixes))| {
                serde_json::json!({"name": name, "id": i + 1, "prefixes": prefixes})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "superNodes": {"replicas": 1},
            "edgePools": [{"name": "a", "sliceType": "eMBB"}],
            "metering": {"tenants": tenants}
        }))
        .unwrap()
    }

    #[test]
    fn a_name_that_makes_no_member_namespace_is_refused() {
        let s = spec(&[]);
        assert_eq!(validate("metro", &s), Ok(()));
        assert_eq!(validate(&"n".repeat(59), &s), Ok(()));
        for bad in ["net.with.dots", &"n".repeat(60), "Metro", "metro-"] {
            assert_eq!(
                validate(bad, &s),
                Err(Invalid::NetworkName {
                    name: bad.to_string(),
                    namespace: format!("hsn-{bad}")
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn what_the_api_server_now_refuses_is_refused_in_objects_stored_before() {
        let mut tc = spec(&[]);
        tc.routing.datapath = hsn_api::network::DatapathMode::Tc;
        assert_eq!(validate("net", &tc), Ok(()), "TC is a datapath like XDP");
        assert_eq!(
            validate("net", &spec(&[("a", &["::/0"])])),
            Err(Invalid::DefaultRoute {
                tenant: "a".into(),
                prefix: "::/0".into()
            })
        );
    }

    #[test]
    fn a_prefix_claimed_by_two_tenants_is_refused() {
        let mut spec = spec(&[("a", &["10.0.0.0/8"]), ("b", &["2001:db8::/32"])]);
        assert_eq!(validate("net", &spec), Ok(()));
        spec.metering.tenants[1]
            .prefixes
            .push(Prefix("10.0.0.0/8".into()));
        assert_eq!(
            validate("net", &spec),
            Err(Invalid::SharedPrefix {
                first: "a".into(),
                second: "b".into(),
                prefix: "10.0.0.0/8".into()
            })
        );
    }

    #[test]
    fn nested_prefixes_of_two_tenants_are_refused_in_either_family() {
        let nested = |outer_tenant: &str, outer: &str, inner_tenant: &str, inner: &str| {
            Err(Invalid::NestedPrefix {
                outer_tenant: outer_tenant.into(),
                outer: outer.into(),
                inner_tenant: inner_tenant.into(),
                inner: inner.into(),
            })
        };
        assert_eq!(
            validate(
                "net",
                &spec(&[("a", &["10.20.0.0/16"]), ("b", &["10.0.0.0/8"])])
            ),
            nested("b", "10.0.0.0/8", "a", "10.20.0.0/16")
        );
        assert_eq!(
            validate(
                "net",
                &spec(&[("a", &["fc00::/7"]), ("b", &["fd12:3456::/32"])])
            ),
            nested("a", "fc00::/7", "b", "fd12:3456::/32")
        );
        let err = validate(
            "net",
            &spec(&[("a", &["fc00::/7"]), ("b", &["fd12:3456::/32"])]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "prefix fd12:3456::/32 of tenant b lies inside fc00::/7 of tenant a: an address \
             belongs to one tenant, so tenants' prefixes must not overlap"
        );
        // Nesting within one tenant, and disjoint neighbours, are fine.
        assert_eq!(
            validate(
                "net",
                &spec(&[
                    ("a", &["10.0.0.0/8", "10.1.0.0/16"]),
                    ("b", &["11.0.0.0/8", "2001:db8::/32"]),
                    ("c", &["fc00::/7"]),
                ])
            ),
            Ok(())
        );
    }
}
