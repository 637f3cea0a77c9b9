//! Offline stand-ins for the external services the integration point talks to.
//!
//! The local profile and the end-to-end tests run against these instead of the real providers.
//! Each one speaks the real surface and checks what it receives (credentials, message format,
//! sizes), because a stand-in that accepts anything proves nothing; each can inject faults and
//! tells a test what it received.

pub mod altinn_broker;
pub mod altinn_correspondence;
pub mod altinn_exchange;
mod cms;
pub mod config_service;
pub mod dpi;
pub mod faults;
pub mod fixture;
mod jose;
pub mod log_sink;
pub mod loopback_peer;
pub mod maskinporten;
pub mod pki;
pub mod processes;
pub mod registers;
pub mod registry;
pub mod service_bus;
mod serving;
mod soap;
pub mod svarut;
mod timestamp;
mod xml_tree;
