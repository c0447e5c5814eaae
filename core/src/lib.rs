//! The words every HSN component uses, defined once: node [`Role`], traffic [`Direction`],
//! super-node and edge ids ([`SuperId`], [`EdgeId`]), [`MacAddr`], [`TenantId`] and the
//! prefix → tenant claims check, the well-known [`ports`], and [`EpochClock`].
//!
//! Kubernetes- and async-free: the datapath wrapper, the ledger API and the agent depend on
//! it without pulling a client in. Where a value crosses a wire or a label it has
//! `Display`/`FromStr` (and serde where it sits in a file or a message).

mod direction;
pub mod epoch;
mod ids;
mod mac;
pub mod ports;
mod role;
mod tenant;
mod words;

pub use direction::{Direction, ParseDirectionError};
pub use epoch::EpochClock;
pub use ids::{EdgeId, ParseSuperIdError, SuperId};
pub use mac::{MacAddr, ParseMacError};
pub use role::Role;
pub use tenant::{NestedPrefix, PrefixClaims, SharedPrefix, TenantId};
pub use words::UnknownWord;
