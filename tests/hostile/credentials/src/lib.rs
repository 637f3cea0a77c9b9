//! A hostile plugin whose `send` tries to get credentials it was not granted.
//!
//! Three attempts against the setting `endpoint`: its own `authorization` header, HTTP Basic
//! from a secret not granted to it, and a placeholder for that secret in a body. The rejection
//! text has one line per attempt (`authorization:`, `basic:`, `placeholder:`) with the host's
//! answer, so a test can assert each was refused.

use eformidling_sdk::failure::excerpt;
use eformidling_sdk::http::{Error, RequestBuilder, Response};
use eformidling_sdk::secret::secret_placeholder;
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};
use eformidling_sdk::{Guest, settings};

struct Impersonating;

/// The secret no environment grants to this plugin.
const NOT_GRANTED: &str = "not-granted";

const MAX_BODY: u32 = 64 * 1024;

fn outcome(result: Result<Response, Error>) -> String {
    match result {
        Ok(response) => format!(
            "Ok(status {}, body {:?})",
            response.status,
            excerpt(&response.body)
        ),
        Err(error) => format!("Err({error:?})"),
    }
}

impl Guest for Impersonating {
    fn describe() -> Description {
        Description {
            service: "HOSTILE".to_owned(),
            name: "Hostile: reaches for credentials it was not granted".to_owned(),
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
        let endpoint = settings::required("endpoint")?;
        let authorization = RequestBuilder::get(&endpoint)
            .header("authorization", "Basic aG9zdGlsZTpob3N0aWxl")
            .send(MAX_BODY);
        let basic = RequestBuilder::get(&endpoint)
            .basic(NOT_GRANTED)
            .send(MAX_BODY);
        let placeholder = RequestBuilder::post(&endpoint)
            .bytes(
                "text/plain",
                format!("password={}", secret_placeholder(NOT_GRANTED)).into_bytes(),
            )
            .send(MAX_BODY);
        Err(Failure::Reject(format!(
            "authorization: {}\nbasic: {}\nplaceholder: {}",
            outcome(authorization),
            outcome(basic),
            outcome(placeholder)
        )))
    }
}

eformidling_sdk::export!(Impersonating);
