//! Tenant prefixes as the datapath takes them, and the validated table built from them
//! (pure): host bits cleared, a prefix owned by one tenant, within the maps' capacity.

use std::collections::BTreeMap;

use hsn_core::{PrefixClaims, SharedPrefix, TenantId};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::Error;
use crate::abi::HSN_MAX_PREFIXES;

/// The prefixes owned by one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantPrefixes {
    /// Tenant id, as counted and reported.
    pub tenant: TenantId,
    /// Addresses of the tenant's services; host bits are ignored.
    pub prefixes: Vec<IpNet>,
}

/// The validated, normalised prefix → tenant table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TenantTable {
    pub v4: BTreeMap<Ipv4Net, u32>,
    pub v6: BTreeMap<Ipv6Net, u32>,
}

impl TenantTable {
    /// Normalises prefixes (host bits cleared) and refuses a prefix owned by two tenants.
    pub(crate) fn build(tenants: &[TenantPrefixes]) -> Result<Self, Error> {
        let mut claims = PrefixClaims::default();
        for t in tenants {
            for prefix in &t.prefixes {
                claims.claim(*prefix, t.tenant).map_err(
                    |SharedPrefix {
                         prefix,
                         first,
                         second,
                     }| Error::ConflictingPrefix {
                        prefix,
                        first,
                        second,
                    },
                )?;
            }
        }
        let (v4, v6) = claims.into_parts();
        let table = Self {
            v4: v4.into_iter().map(|(net, t)| (net, t.get())).collect(),
            v6: v6.into_iter().map(|(net, t)| (net, t.get())).collect(),
        };
        for (family, count) in [("IPv4", table.v4.len()), ("IPv6", table.v6.len())] {
            if count > HSN_MAX_PREFIXES as usize {
                return Err(Error::TooManyPrefixes {
                    family,
                    count,
                    max: HSN_MAX_PREFIXES,
                });
            }
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn tenant(tenant: u32, prefixes: &[&str]) -> TenantPrefixes {
        TenantPrefixes {
            tenant: TenantId::new(tenant).unwrap(),
            prefixes: prefixes.iter().map(|p| net(p)).collect(),
        }
    }

    #[test]
    fn splits_families_and_clears_host_bits() {
        let table = TenantTable::build(&[
            tenant(7, &["10.1.2.3/16", "2001:db8::1/64"]),
            tenant(8, &["10.2.0.0/16"]),
        ])
        .unwrap();
        let v4: Vec<_> = table.v4.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        assert_eq!(
            v4,
            [("10.1.0.0/16".to_owned(), 7), ("10.2.0.0/16".to_owned(), 8)]
        );
        let v6: Vec<_> = table.v6.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        assert_eq!(v6, [("2001:db8::/64".to_owned(), 7)]);
    }

    #[test]
    fn same_prefix_twice_for_one_tenant_is_fine_for_two_is_an_error() {
        assert!(TenantTable::build(&[tenant(1, &["10.0.0.0/8", "10.9.9.9/8"])]).is_ok());
        let err = TenantTable::build(&[tenant(1, &["10.0.0.0/8"]), tenant(2, &["10.0.0.1/8"])])
            .unwrap_err();
        assert!(
            matches!(err, Error::ConflictingPrefix { first, second, prefix }
                if (first.get(), second.get()) == (1, 2) && prefix == net("10.0.0.0/8")),
            "{err}"
        );
    }

    #[test]
    fn nested_prefixes_of_different_tenants_are_allowed() {
        // Longest prefix wins; a /24 carved out of another tenant's /16 is valid.
        let table = TenantTable::build(&[tenant(1, &["10.0.0.0/16"]), tenant(2, &["10.0.1.0/24"])]);
        assert_eq!(table.unwrap().v4.len(), 2);
    }

    #[test]
    fn too_many_prefixes_is_refused() {
        let prefixes: Vec<IpNet> = (0..=HSN_MAX_PREFIXES)
            .map(|i| IpNet::V4(Ipv4Net::new(i.into(), 32).unwrap()))
            .collect();
        let err = TenantTable::build(&[TenantPrefixes {
            tenant: TenantId::new(1).unwrap(),
            prefixes,
        }])
        .unwrap_err();
        assert!(
            matches!(err, Error::TooManyPrefixes { family: "IPv4", .. }),
            "{err}"
        );
    }
}
