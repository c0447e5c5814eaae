//! Lists the operator reads every reconcile (agents' pods and Leases, HsnNodes, nodes),
//! a page at a time, each item trimmed of what the operator never reads before the next
//! page arrives. A list of a thousand objects read whole held its body and every object's
//! `managedFields` at once: most of the operator's peak memory, which the allocator keeps.

use kube::api::{ListParams, ObjectMeta};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// Objects per page: a few hundred kilobytes of body at most.
pub const PAGE: u32 = 100;

/// Every object `lp` selects, read [`PAGE`] at a time (one consistent snapshot: the pages
/// continue one list), each passed through `keep` as its page arrives, with its
/// `managedFields` already dropped.
pub async fn list<K, T>(
    api: &Api<K>,
    lp: &ListParams,
    mut keep: impl FnMut(K) -> T,
) -> Result<Vec<T>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut next = Some(lp.clone().limit(PAGE));
    while let Some(lp) = next {
        let page = api.list(&lp).await?;
        out.extend(page.items.into_iter().map(|mut k| {
            lean(k.meta_mut());
            keep(k)
        }));
        next = after(lp, page.metadata.continue_);
    }
    Ok(out)
}

/// The request for the page after the one `lp` read, if the server said there is one.
fn after(lp: ListParams, token: Option<String>) -> Option<ListParams> {
    token
        .filter(|t| !t.is_empty())
        .map(|t| lp.continue_token(&t))
}

/// The names of every object `lp` selects, from metadata-only pages.
pub async fn names<K>(api: &Api<K>, lp: &ListParams) -> Result<Vec<String>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut next = Some(lp.clone().limit(PAGE));
    while let Some(lp) = next {
        let page = api.list_metadata(&lp).await?;
        out.extend(page.items.into_iter().filter_map(|m| m.metadata.name));
        next = after(lp, page.metadata.continue_);
    }
    Ok(out)
}

/// Drops what no decision of the operator reads: the field managers' records (the bulk of
/// most objects).
fn lean(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
}
