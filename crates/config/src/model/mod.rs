//! The checked model, one module per part of `proxy.yaml`; every item is re-exported from
//! the crate's root (`prehod_config::Portal`, …).

mod certificates;
mod headers;
mod login;
mod portals;
mod server;
mod state;
mod tls;
mod values;

pub use certificates::*;
pub use headers::*;
pub use login::*;
pub use portals::*;
pub use server::*;
pub use state::*;
pub use tls::*;
pub use values::*;
