//! A hostile plugin whose `send` panics.
//!
//! The host must turn the trap into a failed call, keep serving, and surface the panic
//! message, which std writes to the guest's stderr before the trap.

use eformidling_sdk::Guest;
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};

struct Panicking;

impl Guest for Panicking {
    fn describe() -> Description {
        Description {
            service: "HOSTILE".to_owned(),
            name: "Hostile: panics in send".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::SEND,
            max_message_size: None,
        }
    }

    fn poll_statuses(_pending: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> {
        Ok(Vec::new())
    }

    fn poll_incoming(_max: u32) -> Result<Vec<Incoming>, Failure> {
        Ok(Vec::new())
    }

    fn confirm_incoming(_reference: String) -> Result<(), Failure> {
        Ok(())
    }

    fn send(_message: Outgoing) -> Result<Sent, Failure> {
        panic!("hostile plugin panicked on purpose");
    }
}

eformidling_sdk::export!(Panicking);
