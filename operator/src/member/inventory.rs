//! What the MecCluster controller's probes learned of each member, shared with the network
//! controller: the plan's cluster views, and a signal when they change. One cluster is one
//! member however many MecClusters reach it: of those with the same identity the oldest
//! holds it and the others are never Ready here, so nothing plans, applies or cleans up
//! through them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use k8s_openapi::jiff::Timestamp;

use crate::plan::ClusterView;

/// The member clusters as last probed.
#[derive(Clone, Debug)]
pub struct Inventory {
    clusters: Arc<RwLock<BTreeMap<String, MemberState>>>,
    changed: UnboundedSender<()>,
}

/// One member as last probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberState {
    /// What the plan sees.
    pub view: ClusterView,
    /// When the first of the current run of failed probes happened.
    pub failing_since: Option<Timestamp>,
    /// When the cluster last turned NotReady, while it is NotReady.
    pub not_ready_since: Option<Timestamp>,
    /// The cluster it reaches (its `kube-system` UID): from the last successful probe, else
    /// as its status last recorded it.
    pub identity: Option<String>,
    /// When its MecCluster was created: of two for one cluster, the older holds it.
    pub created: Option<Timestamp>,
    /// The MecCluster that holds this one's cluster, when that is another: then this one
    /// is a duplicate and `view.ready` is false.
    pub duplicate_of: Option<String>,
}

impl MemberState {
    /// The order in which MecClusters claim a cluster: older first, then by name.
    fn seniority(&self) -> (bool, Option<Timestamp>, &str) {
        (self.created.is_none(), self.created, &self.view.name)
    }
}

impl Inventory {
    /// An empty inventory and the stream of its change signals.
    pub fn new() -> (Self, UnboundedReceiver<()>) {
        let (changed, rx) = unbounded();
        let inv = Self {
            clusters: Arc::default(),
            changed,
        };
        (inv, rx)
    }

    /// Records `member`, and marks every member that reaches the same cluster as an older
    /// one a duplicate; signals when what the plan sees changed.
    pub fn update(&self, member: MemberState) {
        let mut clusters = self.clusters.write().expect("inventory lock");
        let before = clusters.clone();
        clusters.insert(member.view.name.clone(), member);
        mark_duplicates(&mut clusters);
        if *clusters != before {
            let _ = self.changed.unbounded_send(());
        }
    }

    /// Forgets every member `keep` says no longer exists; returns their names.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let gone: Vec<String> = {
            let clusters = self.clusters.read().expect("inventory lock");
            clusters.keys().filter(|n| !keep(n)).cloned().collect()
        };
        for name in &gone {
            self.remove(name);
        }
        gone
    }

    /// Forgets a deleted cluster.
    pub fn remove(&self, name: &str) {
        if self
            .clusters
            .write()
            .expect("inventory lock")
            .remove(name)
            .is_some()
        {
            let _ = self.changed.unbounded_send(());
        }
    }

    /// The member named `name`.
    pub fn get(&self, name: &str) -> Option<MemberState> {
        self.clusters
            .read()
            .expect("inventory lock")
            .get(name)
            .cloned()
    }

    /// Every member.
    pub fn snapshot(&self) -> Vec<MemberState> {
        self.clusters
            .read()
            .expect("inventory lock")
            .values()
            .cloned()
            .collect()
    }
}

/// Of the members with one identity, all but the oldest become duplicates of it: not Ready.
/// (A duplicate whose holder is gone gets its own state back from its next probe.)
fn mark_duplicates(clusters: &mut BTreeMap<String, MemberState>) {
    let mut holders: BTreeMap<String, (bool, Option<Timestamp>, String)> = BTreeMap::new();
    for m in clusters.values() {
        let Some(id) = &m.identity else { continue };
        let (old, created, name) = m.seniority();
        let claim = (old, created, name.to_string());
        holders
            .entry(id.clone())
            .and_modify(|h| {
                if claim < *h {
                    *h = claim.clone();
                }
            })
            .or_insert(claim);
    }
    for m in clusters.values_mut() {
        let Some((_, _, holder)) = m.identity.as_ref().and_then(|id| holders.get(id)) else {
            continue;
        };
        if *holder != m.view.name {
            m.duplicate_of = Some(holder.clone());
            m.view.ready = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, created: &str, identity: &str) -> MemberState {
        MemberState {
            view: ClusterView {
                name: name.into(),
                labels: BTreeMap::new(),
                region: "r".into(),
                zone: "z".into(),
                ready: true,
                cordoned: false,
                max_super_nodes: None,
                max_edge_nodes: None,
                nodes: Vec::new(),
            },
            failing_since: None,
            not_ready_since: None,
            identity: Some(identity.into()),
            created: Some(created.parse().unwrap()),
            duplicate_of: None,
        }
    }

    #[test]
    fn the_older_of_two_members_for_one_cluster_holds_it_whichever_came_first() {
        for order in [["old", "new"], ["new", "old"]] {
            let (inv, _rx) = Inventory::new();
            for name in order {
                let created = if name == "old" {
                    "2026-01-01T00:00:00Z"
                } else {
                    "2026-01-02T00:00:00Z"
                };
                inv.update(member(name, created, "uid-x"));
            }
            let (old, new) = (inv.get("old").unwrap(), inv.get("new").unwrap());
            assert!(old.view.ready && old.duplicate_of.is_none(), "{order:?}");
            assert!(!new.view.ready, "{order:?}");
            assert_eq!(new.duplicate_of.as_deref(), Some("old"), "{order:?}");
        }
    }

    #[test]
    fn same_creation_time_goes_by_name_and_other_clusters_are_untouched() {
        let (inv, _rx) = Inventory::new();
        let t = "2026-01-01T00:00:00Z";
        inv.update(member("b", t, "uid-x"));
        inv.update(member("a", t, "uid-x"));
        inv.update(member("c", t, "uid-z"));
        assert_eq!(inv.get("b").unwrap().duplicate_of.as_deref(), Some("a"));
        assert!(inv.get("a").unwrap().view.ready);
        assert!(inv.get("c").unwrap().view.ready);
        assert_eq!(inv.retain(|n| n != "a"), vec!["a".to_string()]);
        assert!(inv.get("a").is_none());
        assert_eq!(inv.snapshot().len(), 2);
    }
}
