//! The eFormidling integration point.
//!
//! The host owns everything stateful or secret (configuration, keys, tokens, registry lookups,
//! storage, scheduling) and loads every channel as a sandboxed WebAssembly component implementing
//! the `transport` contract in `wit/`.

pub mod api;
pub mod archive;
pub mod blobs;
pub mod config;
pub mod crypto;
pub mod engine;
pub mod expiring;
mod http_text;
pub mod logmask;
pub mod logship;
pub mod manage;
pub mod plugins;
pub mod registry;
pub mod sbd;
pub mod secrets;
pub mod service;
pub mod store;
pub mod timefmt;
pub mod tls;
pub mod tokens;
