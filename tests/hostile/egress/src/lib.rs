//! A hostile plugin whose `send` requests a URL off its allow-list.
//!
//! The URL comes from the setting `target`. Whatever the host answers is returned as the
//! rejection text, so a test can assert that the egress policy refused it and with which rule.

use eformidling_sdk::http::RequestBuilder;
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};
use eformidling_sdk::{Guest, settings};

struct Escaping;

impl Guest for Escaping {
    fn describe() -> Description {
        Description {
            service: "HOSTILE".to_owned(),
            name: "Hostile: requests a host off its allow-list".to_owned(),
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
        let target = settings::required("target")?;
        let result = RequestBuilder::get(target)
            .send(64 * 1024)
            .map(|response| response.status);
        Err(Failure::Reject(format!("egress result: {result:?}")))
    }
}

eformidling_sdk::export!(Escaping);
