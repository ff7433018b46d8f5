//! Git-ops for one host (docs/gitops.md): follow a branch, apply only
//! commits signed by trusted keys, switch atomically, roll back when the
//! new state is not healthy.

pub mod fault;
#[cfg(feature = "host")]
pub mod mirror;
pub mod plan;
/// The allowed-signers file and signature checks (crate `bbhv-trust`).
pub use bbhv_trust as signers;
pub mod store;
#[cfg(feature = "host")]
pub mod sync;
