//! Member clusters as the operator knows them: a client for each (built from its MecCluster's
//! kubeconfig Secret through [`hsn_api::access`], which `hsnctl` shares), what its last probe
//! found (the [`Inventory`] the plan reads), and removing a network from it, now or when it
//! comes back. The MecCluster controller ([`crate::meccluster`]) drives the probes and the
//! deferred cleanups; the network controller reads the inventory and writes through the
//! clients.

mod cleanup;
mod clients;
mod inventory;
mod probe;

pub use cleanup::{
    PENDING_CLEANUP_ANNOTATION, clear_pending, delete_network_namespaces, mark_pending, pending,
};
pub use clients::MemberClients;
pub use inventory::{Inventory, MemberState};
pub use probe::{EDGE_CAPABLE_LABEL, Probe, probe};
