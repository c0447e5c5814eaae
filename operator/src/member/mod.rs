//! Member clusters as the operator knows them: a client for each (built from its MecCluster's
//! kubeconfig Secret through [`hsn_api::access`], which `hsnctl` shares), what its last probe
//! found (the [`Inventory`] the plan reads, where a second MecCluster for one cluster is a
//! duplicate), and removing a network from it, now, when it comes back, or as an orphan, only
//! ever what this hub wrote through that MecCluster. The MecCluster controller
//! ([`crate::meccluster`]) drives the probes and the deferred cleanups; the network
//! controller reads the inventory and writes through the clients.

mod cleanup;
mod clients;
mod inventory;
mod orphans;
mod probe;

pub use cleanup::{
    PENDING_CLEANUP_ANNOTATION, Removal, clear_pending, delete_owned_namespaces, mark_pending,
    pending,
};
pub use clients::MemberClients;
pub use inventory::{Inventory, MemberState};
pub use orphans::{Orphan, remove_orphans};
pub use probe::{EDGE_CAPABLE_LABEL, Probe, cluster_identity, probe};
