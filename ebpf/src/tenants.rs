//! Tenant prefixes: validation (pure) and the LPM tries both programs look tenants up in.

use std::collections::BTreeMap;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{MapData, MapError};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::Error;
use crate::abi::MAX_PREFIXES;
use crate::replace::replace_entries;

/// The prefixes owned by one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantPrefixes {
    /// Tenant id, as counted and reported.
    pub tenant: u32,
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
        let mut table = Self::default();
        for t in tenants {
            for prefix in &t.prefixes {
                let previous = match prefix.trunc() {
                    IpNet::V4(net) => table.v4.insert(net, t.tenant),
                    IpNet::V6(net) => table.v6.insert(net, t.tenant),
                };
                if let Some(first) = previous.filter(|&p| p != t.tenant) {
                    return Err(Error::ConflictingPrefix {
                        prefix: prefix.trunc(),
                        first,
                        second: t.tenant,
                    });
                }
            }
        }
        for (family, count) in [("IPv4", table.v4.len()), ("IPv6", table.v6.len())] {
            if count > MAX_PREFIXES as usize {
                return Err(Error::TooManyPrefixes {
                    family,
                    count,
                    max: MAX_PREFIXES,
                });
            }
        }
        Ok(table)
    }
}

/// The `tenant_v4` / `tenant_v6` LPM tries of one loaded program.
#[derive(Debug)]
pub(crate) struct TenantMaps {
    pub v4: LpmTrie<MapData, [u8; 4], u32>,
    pub v6: LpmTrie<MapData, [u8; 16], u32>,
}

impl TenantMaps {
    /// Makes the tries hold exactly `table`; see [`replace_entries`] for the ordering.
    pub(crate) fn replace(&mut self, table: &TenantTable) -> Result<(), Error> {
        let current_v4: Vec<Ipv4Net> = list(&self.v4, "tenant_v4")?
            .iter()
            .filter_map(|k| Ipv4Net::new(k.data().into(), prefix_len_u8(k)?).ok())
            .collect();
        replace_entries(
            &mut self.v4,
            current_v4,
            &table.v4,
            |trie, net, tenant| {
                trie.insert(&v4_key(net), tenant, 0)
                    .map_err(|source| write_err(IpNet::V4(*net), source))
            },
            |trie, net| {
                trie.remove(&v4_key(net))
                    .map_err(|source| remove_err(IpNet::V4(*net), source))
            },
        )?;

        let current_v6: Vec<Ipv6Net> = list(&self.v6, "tenant_v6")?
            .iter()
            .filter_map(|k| Ipv6Net::new(k.data().into(), prefix_len_u8(k)?).ok())
            .collect();
        replace_entries(
            &mut self.v6,
            current_v6,
            &table.v6,
            |trie, net, tenant| {
                trie.insert(&v6_key(net), tenant, 0)
                    .map_err(|source| write_err(IpNet::V6(*net), source))
            },
            |trie, net| {
                trie.remove(&v6_key(net))
                    .map_err(|source| remove_err(IpNet::V6(*net), source))
            },
        )
    }
}

fn v4_key(net: &Ipv4Net) -> Key<[u8; 4]> {
    Key::new(u32::from(net.prefix_len()), net.addr().octets())
}

fn v6_key(net: &Ipv6Net) -> Key<[u8; 16]> {
    Key::new(u32::from(net.prefix_len()), net.addr().octets())
}

fn list<K: aya::Pod>(
    trie: &LpmTrie<MapData, K, u32>,
    map: &'static str,
) -> Result<Vec<Key<K>>, Error> {
    trie.keys()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::ReadMap { map, source })
}

fn prefix_len_u8<K: aya::Pod>(key: &Key<K>) -> Option<u8> {
    u8::try_from(key.prefix_len()).ok()
}

fn write_err(prefix: IpNet, source: MapError) -> Error {
    Error::WriteTenant { prefix, source }
}

fn remove_err(prefix: IpNet, source: MapError) -> Error {
    Error::RemoveTenant { prefix, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn tenant(tenant: u32, prefixes: &[&str]) -> TenantPrefixes {
        TenantPrefixes {
            tenant,
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
            matches!(err, Error::ConflictingPrefix { first: 1, second: 2, prefix } if prefix == net("10.0.0.0/8")),
            "{err}"
        );
    }

    #[test]
    fn nested_prefixes_of_different_tenants_are_allowed() {
        // Longest prefix wins in the trie; a /24 carved out of another tenant's /16 is valid.
        let table = TenantTable::build(&[tenant(1, &["10.0.0.0/16"]), tenant(2, &["10.0.1.0/24"])]);
        assert_eq!(table.unwrap().v4.len(), 2);
    }

    #[test]
    fn too_many_prefixes_is_refused() {
        let prefixes: Vec<IpNet> = (0..=MAX_PREFIXES)
            .map(|i| IpNet::V4(Ipv4Net::new(i.into(), 32).unwrap()))
            .collect();
        let err = TenantTable::build(&[TenantPrefixes {
            tenant: 1,
            prefixes,
        }])
        .unwrap_err();
        assert!(
            matches!(err, Error::TooManyPrefixes { family: "IPv4", .. }),
            "{err}"
        );
    }
}
