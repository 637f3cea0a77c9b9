//! The crate a channel plugin is written against.
//!
//! A plugin is a WebAssembly component that implements the `channel` world of
//! `wit/transport.wit`. Generating the bindings once, here, means every plugin sees the same
//! types under the same paths, and the small helpers every channel needs (building requests,
//! naming secrets, turning HTTP outcomes into the engine's failure vocabulary, reading settings)
//! are written and tested once instead of once per channel.
//!
//! A plugin crate is a `cdylib` that implements [`Guest`] and says so with [`export!`]:
//!
//! ```no_run
//! use eformidling_sdk::transport::{Capabilities, Description};
//! use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};
//! use eformidling_sdk::{Guest, http::RequestBuilder, settings};
//!
//! struct MyChannel;
//!
//! impl Guest for MyChannel {
//!     fn describe() -> Description {
//!         Description {
//!             service: "MY".into(),
//!             name: "My channel".into(),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!             capabilities: Capabilities::SEND,
//!             max_message_size: None,
//!         }
//!     }
//!
//!     fn send(message: Outgoing) -> Result<Sent, Failure> {
//!         let endpoint = settings::required("endpoint")?;
//!         let response = RequestBuilder::post(format!("{endpoint}/messages"))
//!             .bytes("application/json", message.sbd.into_bytes())
//!             .basic("my-provider")
//!             .send(64 * 1024)?;
//!         eformidling_sdk::failure::expect_status(&response, &[201], None)?;
//!         Ok(Sent { reference: message.message_id, statuses: vec![] })
//!     }
//!
//!     fn poll_statuses(_: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> { Ok(vec![]) }
//!     fn poll_incoming(_: u32) -> Result<Vec<Incoming>, Failure> { Ok(vec![]) }
//!     fn confirm_incoming(_: String) -> Result<(), Failure> { Ok(()) }
//! }
//!
//! eformidling_sdk::export!(MyChannel);
//! # fn main() {}
//! ```
//!
//! `plugins/example` is a complete channel built this way, and `docs/plugin-guide.md` walks
//! through it; `plugins/loopback` is the reference channel, receiving as well.
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the target writes a component
//! directly, so no other tool is needed.

#![deny(missing_docs)]

/// The generated bindings. Public only because [`export!`] expands to paths inside it; plugin
/// authors use the tidier re-exports at the crate root.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "channel",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "$crate::bindings",
    });
}

pub mod asic;
pub mod base64;
pub mod compose;
pub mod failure;
pub mod http;
pub mod log;
pub mod secret;
pub mod settings;
pub mod time;
pub mod url;
pub mod xml;

pub use bindings::eformidling::transport::{archive, config, crypto, types};
pub use bindings::export;
pub use transport::Guest;

/// What a channel exports: the [`Guest`] trait it implements and the types only it uses.
pub mod transport {
    pub use crate::bindings::exports::eformidling::transport::transport::{
        Capabilities, Description, Guest,
    };
}
