//! metadata.json v1: the raw types and their JSON Schema (`model`), the
//! validated [`Tenant`] of typed values (`tenant`, `values`), parsing with
//! `file:line:column` diagnostics (`parse`, `json`), the names derived from a
//! tenant (`names`) and the checks across tenants (`fleet`). Pure: no I/O.

mod diag;
pub mod fleet;
pub mod image;
mod json;
pub mod model;
pub mod names;
mod parse;
pub mod schema;
pub mod tenant;
pub mod values;

pub use diag::{Diagnostic, locate};
pub use fleet::{Conflict, HostConflict, check_fleet, check_host_subnets};
pub use image::Image;
pub use json::MAX_DEPTH;
pub use model::Metadata;
pub use names::TenantId;
pub use parse::{MAX_DIAGNOSTICS, parse_metadata};
pub use tenant::Tenant;
