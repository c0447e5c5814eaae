//! What the MecCluster controller's probes learned of each member, shared with the network
//! controller: the plan's cluster views, and a signal when they change.

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

    /// Records `member`; signals when what the plan sees changed.
    pub fn update(&self, member: MemberState) {
        let mut clusters = self.clusters.write().expect("inventory lock");
        let name = member.view.name.clone();
        if clusters.get(&name) != Some(&member) {
            clusters.insert(name, member);
            let _ = self.changed.unbounded_send(());
        }
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
