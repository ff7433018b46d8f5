//! metadata.json v1: the types, their JSON Schema, validation with
//! `file:line:column` diagnostics, the names derived from a tenant (units,
//! machines, interfaces) and the checks across tenants. Pure: no I/O.

mod diag;
pub mod fleet;
pub mod model;
pub mod names;
mod parse;
pub mod schema;

pub use diag::Diagnostic;
pub use fleet::{Conflict, Tenant, check_fleet, locate};
pub use model::Metadata;
pub use names::TenantId;
pub use parse::{
    MAX_DEPTH, PortMapping, parse_ipv4_cidr, parse_ipv6_cidr, parse_metadata, parse_port,
    parse_size,
};
