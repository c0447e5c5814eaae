//! Who wrote a network's namespace in a member: this hub (the UID of its `kube-system`
//! namespace) through one MecCluster. The network-uid label says which network; these
//! markings say which writer, so that nothing is deleted in a member unless the operator can
//! prove it is its own for that network and that MecCluster (a second MecCluster for the same
//! cluster, or another hub, must never take the namespaces it finds there for its own).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Label on a member namespace: the `kube-system` UID of the hub whose operator wrote it.
pub const HUB_LABEL: &str = "hsn.io/hub";
/// Annotation on a member namespace: the MecCluster it was written through (a name may be
/// longer than a label value may).
pub const MEC_CLUSTER_ANNOTATION: &str = "hsn.io/meccluster";

/// The writer of a member's namespaces: this hub, through MecCluster `cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The hub's identity (its `kube-system` UID).
    pub hub: String,
    /// The MecCluster's name.
    pub cluster: String,
}

/// Whose a member namespace is, as its markings say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Written by this hub through this MecCluster.
    Ours,
    /// No markings: written by an operator older than them (the next apply adds them), or
    /// by hand. Never deleted.
    Unmarked,
    /// Marked by another hub, or through another MecCluster. Never touched.
    Theirs {
        /// The hub it names, if any.
        hub: Option<String>,
        /// The MecCluster it names, if any.
        cluster: Option<String>,
    },
}

impl std::fmt::Display for Ownership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ours => f.write_str("ours"),
            Self::Unmarked => f.write_str("without owner markings"),
            Self::Theirs { hub, cluster } => write!(
                f,
                "owned by MecCluster {} of hub {}",
                cluster.as_deref().unwrap_or("<none>"),
                hub.as_deref().unwrap_or("<none>")
            ),
        }
    }
}

impl Owner {
    /// Whose the object of `meta` is.
    pub fn ownership(&self, meta: &ObjectMeta) -> Ownership {
        let hub = meta.labels.as_ref().and_then(|l| l.get(HUB_LABEL));
        let cluster = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(MEC_CLUSTER_ANNOTATION));
        match (hub, cluster) {
            (None, None) => Ownership::Unmarked,
            (Some(h), Some(c)) if *h == self.hub && *c == self.cluster => Ownership::Ours,
            _ => Ownership::Theirs {
                hub: hub.cloned(),
                cluster: cluster.cloned(),
            },
        }
    }

    /// Marks `meta` as written by this owner.
    pub fn mark(&self, meta: &mut ObjectMeta) {
        meta.labels
            .get_or_insert_default()
            .insert(HUB_LABEL.to_string(), self.hub.clone());
        meta.annotations
            .get_or_insert_default()
            .insert(MEC_CLUSTER_ANNOTATION.to_string(), self.cluster.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(cluster: &str) -> Owner {
        Owner {
            hub: "hub-uid".into(),
            cluster: cluster.into(),
        }
    }

    #[test]
    fn only_both_markings_of_this_hub_and_cluster_make_it_ours() {
        let mut meta = ObjectMeta::default();
        assert_eq!(owner("a").ownership(&meta), Ownership::Unmarked);
        owner("a").mark(&mut meta);
        assert_eq!(owner("a").ownership(&meta), Ownership::Ours);
        let theirs = owner("b").ownership(&meta);
        assert_eq!(
            theirs.to_string(),
            "owned by MecCluster a of hub hub-uid",
            "{theirs:?}"
        );
        let other_hub = Owner {
            hub: "other".into(),
            cluster: "a".into(),
        };
        assert!(matches!(
            other_hub.ownership(&meta),
            Ownership::Theirs { .. }
        ));
        // Half a marking is not ours either.
        meta.annotations = None;
        assert!(matches!(
            owner("a").ownership(&meta),
            Ownership::Theirs { cluster: None, .. }
        ));
    }
}
