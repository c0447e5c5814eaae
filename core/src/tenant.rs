//! Tenants: their ids, and which tenant owns each prefix.

use std::collections::BTreeMap;
use std::fmt;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// A tenant's id: the key of its counters in the datapath and in the agent's spool; never 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct TenantId(u32);

impl TenantId {
    /// `id` when it is not 0.
    pub const fn new(id: u32) -> Option<Self> {
        if id == 0 { None } else { Some(Self(id)) }
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<u32> for TenantId {
    type Error = String;

    fn try_from(id: u32) -> Result<Self, String> {
        Self::new(id).ok_or_else(|| "tenant id 0 is reserved".to_owned())
    }
}

/// From the API's `int32` field: 1..=i32::MAX.
impl TryFrom<i32> for TenantId {
    type Error = String;

    fn try_from(id: i32) -> Result<Self, String> {
        u32::try_from(id)
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| format!("tenant id {id} is not positive"))
    }
}

impl From<TenantId> for u32 {
    fn from(id: TenantId) -> u32 {
        id.0
    }
}

/// Two owners claim one prefix, so its bytes could not be attributed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedPrefix<T> {
    /// The prefix, host bits cleared.
    pub prefix: IpNet,
    /// The owner that claimed it first.
    pub first: T,
    /// The owner that claimed it again.
    pub second: T,
}

/// A prefix inside another owner's prefix: its addresses would be metered as `inner_owner`'s
/// by longest match, though `outer_owner` claims them too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NestedPrefix<T> {
    /// The larger prefix.
    pub outer: IpNet,
    /// Its owner.
    pub outer_owner: T,
    /// The prefix inside it.
    pub inner: IpNet,
    /// Its owner.
    pub inner_owner: T,
}

/// Prefix → owner, host bits cleared; a prefix belongs to one owner. The one check the
/// operator (per network), the agent (per routes table) and the datapath (per table) apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixClaims<T> {
    v4: BTreeMap<Ipv4Net, T>,
    v6: BTreeMap<Ipv6Net, T>,
}

impl<T> Default for PrefixClaims<T> {
    fn default() -> Self {
        Self {
            v4: BTreeMap::new(),
            v6: BTreeMap::new(),
        }
    }
}

impl<T: Clone + PartialEq> PrefixClaims<T> {
    /// Records that `owner` claims `prefix`; claiming a prefix again for the same owner is
    /// no conflict.
    pub fn claim(&mut self, prefix: IpNet, owner: T) -> Result<(), SharedPrefix<T>> {
        let prefix = prefix.trunc();
        let first = match prefix {
            IpNet::V4(net) => self.v4.entry(net).or_insert_with(|| owner.clone()),
            IpNet::V6(net) => self.v6.entry(net).or_insert_with(|| owner.clone()),
        };
        if *first == owner {
            Ok(())
        } else {
            Err(SharedPrefix {
                prefix,
                first: first.clone(),
                second: owner,
            })
        }
    }
}

impl<T: Clone + PartialEq> PrefixClaims<T> {
    /// The first prefix, in address order, that lies inside a prefix of another owner; `None`
    /// when the owners' prefixes are disjoint. (Equal prefixes never get this far:
    /// [`claim`](Self::claim) refuses them.) One pass over each family.
    pub fn nested(&self) -> Option<NestedPrefix<T>> {
        first_nested(self.v4.iter().map(|(n, o)| (IpNet::V4(*n), o)))
            .or_else(|| first_nested(self.v6.iter().map(|(n, o)| (IpNet::V6(*n), o))))
    }
}

/// `claims` in address order (a prefix before the longer ones it contains): a stack holds the
/// prefixes containing the current one; its top, the closest, shares the owner of every
/// prefix below it, or the pair would have been reported when it was pushed.
fn first_nested<'a, T: Clone + PartialEq + 'a>(
    claims: impl Iterator<Item = (IpNet, &'a T)>,
) -> Option<NestedPrefix<T>> {
    let mut enclosing: Vec<(IpNet, &T)> = Vec::new();
    for (net, owner) in claims {
        while enclosing
            .last()
            .is_some_and(|(outer, _)| !outer.contains(&net))
        {
            enclosing.pop();
        }
        if let Some((outer, outer_owner)) = enclosing.last()
            && *outer_owner != owner
        {
            return Some(NestedPrefix {
                outer: *outer,
                outer_owner: (*outer_owner).clone(),
                inner: net,
                inner_owner: owner.clone(),
            });
        }
        enclosing.push((net, owner));
    }
    None
}

impl<T> PrefixClaims<T> {
    /// IPv4 prefixes and owners, in prefix order.
    pub fn v4(&self) -> &BTreeMap<Ipv4Net, T> {
        &self.v4
    }

    /// IPv6 prefixes and owners, in prefix order.
    pub fn v6(&self) -> &BTreeMap<Ipv6Net, T> {
        &self.v6
    }

    /// The two tables, IPv4 and IPv6.
    pub fn into_parts(self) -> (BTreeMap<Ipv4Net, T>, BTreeMap<Ipv6Net, T>) {
        (self.v4, self.v6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn tenant_ids_are_never_zero() {
        assert_eq!(TenantId::new(0), None);
        assert_eq!(TenantId::try_from(7i32).map(TenantId::get), Ok(7));
        assert!(TenantId::try_from(-1i32).is_err());
        assert!(TenantId::try_from(0u32).is_err());
        assert!(serde_json::from_str::<TenantId>("0").is_err());
        assert_eq!(
            serde_json::to_string(&TenantId::new(9).unwrap()).unwrap(),
            "9"
        );
    }

    #[test]
    fn a_prefix_has_one_owner_after_host_bits_are_cleared() {
        let mut claims = PrefixClaims::default();
        claims.claim(net("10.0.0.0/8"), "a").unwrap();
        claims.claim(net("10.0.0.0/8"), "a").unwrap();
        claims.claim(net("2001:db8::/32"), "b").unwrap();
        claims.claim(net("10.0.0.0/16"), "b").unwrap();
        assert_eq!(
            claims.claim(net("10.1.2.3/8"), "b"),
            Err(SharedPrefix {
                prefix: net("10.0.0.0/8"),
                first: "a",
                second: "b"
            })
        );
        assert_eq!(claims.v4().len(), 2);
        assert_eq!(claims.v6().len(), 1);
    }

    fn claims(pairs: &[(&str, &'static str)]) -> PrefixClaims<&'static str> {
        let mut claims = PrefixClaims::default();
        for (prefix, owner) in pairs {
            claims.claim(net(prefix), *owner).unwrap();
        }
        claims
    }

    #[test]
    fn nested_prefixes_of_two_owners_are_found_in_either_family() {
        let found = |pairs: &[(&str, &'static str)]| {
            claims(pairs).nested().map(|n| {
                (
                    n.outer.to_string(),
                    n.outer_owner,
                    n.inner.to_string(),
                    n.inner_owner,
                )
            })
        };
        let pair = |o: &str, oo, i: &str, io| Some((o.to_string(), oo, i.to_string(), io));
        // Disjoint, adjacent, and nested within one owner: nothing.
        assert_eq!(found(&[("10.0.0.0/8", "a"), ("11.0.0.0/8", "b")]), None);
        assert_eq!(found(&[("10.0.0.0/9", "a"), ("10.128.0.0/9", "b")]), None);
        assert_eq!(found(&[("10.0.0.0/8", "a"), ("10.1.0.0/16", "a")]), None);
        assert_eq!(found(&[("fc00::/7", "a"), ("2001:db8::/32", "b")]), None);
        // Nested, whatever the claim order.
        assert_eq!(
            found(&[("10.1.2.0/24", "b"), ("10.0.0.0/8", "a")]),
            pair("10.0.0.0/8", "a", "10.1.2.0/24", "b")
        );
        assert_eq!(
            found(&[("fd00::/8", "b"), ("fc00::/7", "a")]),
            pair("fc00::/7", "a", "fd00::/8", "b")
        );
        // Below a same-owner chain, and after a sibling that closed.
        assert_eq!(
            found(&[
                ("10.0.0.0/8", "a"),
                ("10.1.0.0/16", "a"),
                ("10.1.1.0/24", "a"),
                ("10.2.0.0/16", "a"),
                ("10.2.3.4/32", "c"),
            ]),
            pair("10.2.0.0/16", "a", "10.2.3.4/32", "c")
        );
        assert_eq!(
            found(&[
                ("10.0.0.0/16", "a"),
                ("10.1.0.0/16", "b"),
                ("10.1.0.0/24", "b")
            ]),
            None
        );
        // A host route inside a /1.
        assert_eq!(
            found(&[("128.0.0.0/1", "a"), ("192.0.2.1/32", "b")]),
            pair("128.0.0.0/1", "a", "192.0.2.1/32", "b")
        );
    }
}
