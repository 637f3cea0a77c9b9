//! SOAP 1.2 as ForsendelsesServiceV9 speaks it: one operation element per call, sent plain or,
//! when documents travel along, as MTOM (`multipart/related`, the envelope as an
//! `application/xop+xml` root part and one binary part per document, by blob handle).
//!
//! Answers are read as text: the few values wanted are leaf elements found by local name, and
//! a fault's code decides the failure: `Sender` means SvarUt refused the request for good
//! (`reject`, with SvarUt's reason), anything else is SvarUt's own trouble (`retry`).

use eformidling_sdk::failure;
use eformidling_sdk::http::{Body, Content, Multipart, Part, RequestBuilder};
use eformidling_sdk::types::{Blob, Failure};

use eformidling_sdk::xml;

/// The SOAP 1.2 envelope namespace.
const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// The namespace of the ForsendelsesServiceV9 operations.
pub const SERVICE_NS: &str = "http://www.ks.no/svarut/servicesV9";
/// The Content-ID of the envelope part of an MTOM request.
const ROOT_ID: &str = "<root.message@eformidling.integrasjonspunkt>";
/// The most an answer may hold; answers are ids and statuses.
const MAX_ANSWER: u32 = 4 << 20;

/// A document travelling as an MTOM attachment: the Content-ID the envelope's `xop:Include`
/// names (without angle brackets) and its bytes.
pub struct Attachment {
    pub content_id: String,
    pub content: Blob,
}

/// `operation` (an element in [`SERVICE_NS`] with prefix `ns2`) in a SOAP 1.2 envelope.
fn envelope(operation: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{SOAP12}\" \
         xmlns:ns2=\"{SERVICE_NS}\"><soap:Body>{operation}</soap:Body></soap:Envelope>"
    )
}

/// Calls the service with `operation`, as MTOM when there are `attachments`; the answer's
/// text on success.
pub fn call(
    endpoint: &str,
    credentials: &str,
    operation: &str,
    attachments: &[Attachment],
) -> Result<String, Failure> {
    let envelope = envelope(operation).into_bytes();
    let request = RequestBuilder::post(endpoint).basic(credentials);
    let request = if attachments.is_empty() {
        request.bytes("application/soap+xml; charset=utf-8", envelope)
    } else {
        let mut parts = vec![Part {
            headers: vec![
                (
                    "content-type".to_owned(),
                    "application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"".to_owned(),
                ),
                ("content-transfer-encoding".to_owned(), "binary".to_owned()),
                ("content-id".to_owned(), ROOT_ID.to_owned()),
            ],
            content: Content::Bytes(envelope),
        }];
        parts.extend(attachments.iter().map(|attachment| Part {
            headers: vec![
                (
                    "content-type".to_owned(),
                    "application/octet-stream".to_owned(),
                ),
                ("content-transfer-encoding".to_owned(), "binary".to_owned()),
                (
                    "content-id".to_owned(),
                    format!("<{}>", attachment.content_id),
                ),
            ],
            content: Content::Blob(&attachment.content),
        }));
        request.body(Body::Multipart(Multipart {
            subtype: "related".to_owned(),
            parameters: vec![
                ("type".to_owned(), "application/xop+xml".to_owned()),
                ("start".to_owned(), ROOT_ID.to_owned()),
                ("start-info".to_owned(), "application/soap+xml".to_owned()),
            ],
            parts,
        }))
    };
    let response = request.send(MAX_ANSWER)?;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if response.status == 200 {
        return Ok(text);
    }
    Err(fault(&text).unwrap_or_else(|| failure::from_status(response.status, &response.body, None)))
}

/// The failure a SOAP fault in `text` means, if it holds one.
fn fault(text: &str) -> Option<Failure> {
    let fault = *xml::contents(text, "Fault").first()?;
    let code = xml::first_text(fault, "Value").unwrap_or_default();
    let reason = xml::first_text(fault, "Text").unwrap_or_else(|| "no reason given".to_owned());
    let reason = format!("SvarUt: {reason}");
    Some(if code.ends_with("Sender") {
        Failure::Reject(reason)
    } else {
        Failure::Retry(reason)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_faults_reject_with_the_reason_and_others_retry() {
        let body = "<soap:Envelope xmlns:soap=\"x\"><soap:Body><soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang=\"en\">dokumenter[0]: bad &amp; worse</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>";
        match fault(body) {
            Some(Failure::Reject(reason)) => {
                assert_eq!(reason, "SvarUt: dokumenter[0]: bad & worse");
            }
            other => panic!("unexpected {other:?}"),
        }
        let receiver = body.replace("soap:Sender", "soap:Receiver");
        assert!(matches!(fault(&receiver), Some(Failure::Retry(_))));
        assert!(fault("<html>busy</html>").is_none());
    }

    #[test]
    fn the_envelope_declares_soap_1_2_and_the_service() {
        let text = envelope("<ns2:op/>");
        assert!(text.contains(SOAP12) && text.contains(SERVICE_NS));
        assert!(text.contains("<soap:Body><ns2:op/></soap:Body>"));
    }
}
