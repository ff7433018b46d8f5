//! The host's own boot (docs/boot.md): Unified Kernel Images signed for
//! Secure Boot, in two slots on the ESP as Boot Loader Specification type #2
//! entries (`EFI/Linux/bbhv-<slot>-<version>[+LEFT[-DONE]].efi`), booted by
//! systemd-boot with boot counting and blessed by `systemd-bless-boot`.
//!
//! Pure core ([`entry`], [`version`], [`plan`], [`loader`], [`efivar`],
//! [`status`]) and I/O at the edges: [`tools`] runs ukify, sbsign and
//! sbverify; [`esp`] reads and writes the ESP and the EFI variables.
//! [`esp::stage`] is the seam a git-ops sync calls to put a pinned UKI into
//! the inactive slot.

pub mod efivar;
pub mod entry;
pub mod esp;
pub mod loader;
pub mod plan;
pub mod status;
pub mod tools;
pub mod version;

pub use entry::{Counter, Entry, Slot, State, Version};
pub use esp::{PinOutcome, StageRequest, Staged, stage, stage_pin, unstage};
pub use plan::{PinAction, StageError, StagePlan, plan_pin, plan_stage, plan_unstage};
