//! The plugin runtime: every channel is a sandboxed WebAssembly component.
//!
//! The host owns everything stateful or secret; a plugin owns one wire protocol. This module loads
//! the components an environment names (pinned by sha256, compiled once and cached), checks them
//! against the host's world, and calls them in fresh, capped stores. Everything a plugin does
//! outside its sandbox goes through the host imports in `imports`, and every network request
//! through the one chokepoint in `egress`.

mod allow_list;
mod base64_stream;
pub mod bindings;
mod cache;
mod compiler;
pub mod egress;
mod engine;
mod imports;
mod message;
mod placeholders;
mod plugin;
mod sandbox;
mod set;
pub mod spec;

pub use allow_list::AllowList;
pub use cache::{CompileCache, Provenance};
pub use compiler::{Compiler, compile_to_artifact};
pub use engine::{Allocator, EPOCH_TICK, PluginEngine};
pub use message::{Document, IncomingMessage, OutgoingMessage};
pub use plugin::{CallError, CallErrorKind, Plugin};
pub use sandbox::{CallState, HostServices, PluginContext};
pub use set::{PluginHost, PluginSet, PluginSetSpec};
pub use spec::{Limits, PluginSpec};
