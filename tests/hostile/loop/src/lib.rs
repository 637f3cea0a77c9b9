//! A hostile plugin whose `send` spins forever without calling the host.
//!
//! Only the host's epoch deadline can stop it; a host that waited for the guest to yield or
//! to make a host call would hang here.

use eformidling_sdk::Guest;
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};

struct Spinning;

impl Guest for Spinning {
    fn describe() -> Description {
        Description {
            service: "HOSTILE".to_owned(),
            name: "Hostile: loops forever in send".to_owned(),
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
        let mut spins: u64 = 0;
        loop {
            // `black_box` makes every iteration's value observable, so the optimiser cannot
            // prove the loop does nothing and replace it with a trap or remove it.
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

eformidling_sdk::export!(Spinning);
