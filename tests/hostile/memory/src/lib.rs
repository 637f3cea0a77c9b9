//! A hostile plugin whose `send` allocates until it dies.
//!
//! Every MiB is written, so the linear memory really grows; the host's memory limit must stop
//! it with a failed call rather than the host process running out of memory.

use eformidling_sdk::Guest;
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};

struct Hoarding;

const MIB: usize = 1 << 20;

impl Guest for Hoarding {
    fn describe() -> Description {
        Description {
            service: "HOSTILE".to_owned(),
            name: "Hostile: exhausts memory in send".to_owned(),
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
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // A non-zero fill writes every byte (no lazily zeroed pages), and `black_box`
            // keeps the optimiser from proving the hoard is never read.
            hoard.push(vec![0xA5; MIB]);
            std::hint::black_box(&hoard);
        }
    }
}

eformidling_sdk::export!(Hoarding);
