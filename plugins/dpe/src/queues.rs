//! Which Service Bus queue a message goes to, and which one this organisation reads.
//!
//! DPE's queues are named `nextbestqueue{orgnr}{mode}`, the mode being `innsyn`, `data` or
//! `meeting`. An ordinary message goes to the receiver's queue with the suffix the registry
//! gives as the record's endpoint. Receipts go back by mode, as the real integration point
//! routes them (reference §9): a `status` message to `data` when this organisation reads
//! `innsyn`, otherwise to `innsyn`; an `einnsyn_kvittering` to `data` when it is about an
//! innsynskrav, otherwise to `innsyn`; a configured receipt queue suffix overrides both.

use eformidling_sdk::types::{Failure, Outgoing};
use serde_json::Value;

/// The modes a queue name may end with.
const MODES: [&str; 3] = ["innsyn", "data", "meeting"];

/// The bare organisation number of an identifier such as `0192:910075918`.
pub fn orgnr(identifier: &str) -> &str {
    identifier.rsplit(':').next().unwrap_or(identifier)
}

/// The name of `orgnr`'s queue of `mode`.
pub fn name(orgnr: &str, mode: &str) -> String {
    format!("nextbestqueue{orgnr}{mode}")
}

/// Checks a mode setting.
pub fn mode(value: &str) -> Result<&str, Failure> {
    MODES.contains(&value).then_some(value).ok_or_else(|| {
        Failure::Retry(format!(
            "plugin setting `mode` = {value:?} is none of {}",
            MODES.join(", ")
        ))
    })
}

/// The queue `message` goes to, given this organisation's `own_mode` and the configured
/// `receipt_queue` suffix.
pub fn target(
    message: &Outgoing,
    sbd: &Value,
    own_mode: &str,
    receipt_queue: Option<&str>,
) -> Result<String, Failure> {
    let kind = sbd["standardBusinessDocumentHeader"]["documentIdentification"]["type"]
        .as_str()
        .unwrap_or_default();
    let about_request = sbd["einnsyn_kvittering"]["referanseType"].as_str() == Some("innsynskrav");
    let endpoint = message.service.endpoint_url.as_deref();
    let suffix =
        suffix(kind, about_request, own_mode, receipt_queue, endpoint).ok_or_else(|| {
            Failure::Reject(format!(
                "the registry's DPE record for {} names no queue (endpoint {endpoint:?})",
                message.receiver.identifier
            ))
        })?;
    Ok(name(orgnr(&message.receiver.identifier), suffix))
}

/// The queue suffix of a message of type `kind` (`about_request`: an einnsyn_kvittering about
/// an innsynskrav); none when an ordinary message's record names no mode.
fn suffix<'a>(
    kind: &str,
    about_request: bool,
    own_mode: &str,
    receipt_queue: Option<&'a str>,
    endpoint: Option<&'a str>,
) -> Option<&'a str> {
    match kind {
        "status" => Some(receipt_queue.unwrap_or(if own_mode == "innsyn" {
            "data"
        } else {
            "innsyn"
        })),
        "einnsyn_kvittering" => {
            Some(receipt_queue.unwrap_or(if about_request { "data" } else { "innsyn" }))
        }
        _ => endpoint.filter(|suffix| MODES.contains(suffix)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_built_from_the_bare_number_and_the_mode() {
        assert_eq!(orgnr("0192:910075918"), "910075918");
        assert_eq!(name("910075918", "innsyn"), "nextbestqueue910075918innsyn");
        assert!(mode("data").is_ok());
        assert!(matches!(mode("journal"), Err(Failure::Retry(_))));
    }

    #[test]
    fn messages_follow_the_record_and_receipts_route_by_mode_and_kind() {
        assert_eq!(
            suffix("innsynskrav", false, "data", None, Some("innsyn")),
            Some("innsyn")
        );
        assert_eq!(
            suffix("publisering", false, "data", None, Some("journal")),
            None
        );
        assert_eq!(suffix("innsynskrav", false, "data", None, None), None);
        assert_eq!(
            suffix("status", false, "innsyn", None, Some("x")),
            Some("data")
        );
        assert_eq!(suffix("status", false, "data", None, None), Some("innsyn"));
        assert_eq!(
            suffix("status", false, "data", Some("meeting"), None),
            Some("meeting")
        );
        assert_eq!(
            suffix("einnsyn_kvittering", true, "innsyn", None, None),
            Some("data")
        );
        assert_eq!(
            suffix("einnsyn_kvittering", false, "data", None, None),
            Some("innsyn")
        );
    }
}
