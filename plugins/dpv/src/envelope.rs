//! The SOAP 1.2 envelope every call to the correspondence agency travels in, and reading what
//! comes back.
//!
//! Altinn's binding wants WS-Addressing (`Action`, `MessageID`, `To`) and a WS-Security
//! `UsernameToken` with the end-user system's name and password in plain text, a nonce and a
//! creation time. The plugin never holds the password: it writes `{{secret:NAME.username}}` and
//! `{{secret:NAME.password}}` and the host fills them in. Answers are HTTP 200 with the result,
//! or HTTP 500 with a SOAP fault whose code says whose fault it is.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use base64::Engine as _;
use eformidling_sdk::failure;
use eformidling_sdk::http::Response;
use eformidling_sdk::secret::secret_field_placeholder;
use eformidling_sdk::types::Failure;

use eformidling_sdk::time;
use eformidling_sdk::xml::escape;

use crate::xml::Texts;

const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
const WSA: &str = "http://www.w3.org/2005/08/addressing";
const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const PASSWORD_TEXT: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";
const BASE64_BINARY: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-soap-message-security-1.0#Base64Binary";

/// Altinn's error id for a wrong system name or password.
const WRONG_CREDENTIALS: &str = "989";

/// The content type of a request for `action`.
pub fn content_type(action: &str) -> String {
    format!("application/soap+xml; charset=utf-8; action=\"{action}\"")
}

/// The text before the body of a request for `action` to `endpoint`, its token made from the
/// username/password secret `secret`; the body follows, then [`CLOSE`].
pub fn open(action: &str, endpoint: &str, secret: &str) -> String {
    let id = random_hex();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <s:Envelope xmlns:s=\"{SOAP12}\" xmlns:a=\"{WSA}\" xmlns:u=\"{WSU}\">\
         <s:Header>\
         <a:Action s:mustUnderstand=\"1\">{action}</a:Action>\
         <a:MessageID>urn:uuid:{}</a:MessageID>\
         <a:To s:mustUnderstand=\"1\">{}</a:To>\
         <o:Security s:mustUnderstand=\"1\" xmlns:o=\"{WSSE}\">\
         <o:UsernameToken u:Id=\"uuid-{id}\">\
         <o:Username>{}</o:Username>\
         <o:Password Type=\"{PASSWORD_TEXT}\">{}</o:Password>\
         <o:Nonce EncodingType=\"{BASE64_BINARY}\">{}</o:Nonce>\
         <u:Created>{}</u:Created>\
         </o:UsernameToken></o:Security></s:Header><s:Body>",
        uuid_text(&id),
        escape(endpoint),
        secret_field_placeholder(secret, "username"),
        secret_field_placeholder(secret, "password"),
        nonce(),
        time::rfc3339(time::now_millis()),
    )
}

/// The text after the body.
pub const CLOSE: &str = "</s:Body></s:Envelope>";

/// The answer's texts when it is a result; the failure the engine acts on when it is a fault
/// or not an answer at all.
pub fn answer(response: &Response, size_limit: Option<u64>) -> Result<Texts, Failure> {
    match response.status {
        200 => Texts::read(&response.body)
            .map_err(|why| Failure::Retry(format!("the agency's answer is not readable: {why}"))),
        500 => Err(fault(&response.body)),
        status => Err(failure::from_status(status, &response.body, size_limit)),
    }
}

/// A SOAP fault: the caller's mistake is permanent, refused credentials are the host's to
/// check, and anything else (the agency's own trouble, a 500 without a fault) may pass.
fn fault(body: &[u8]) -> Failure {
    let Some(texts) = Texts::read(body)
        .ok()
        .filter(|t| t.first(&["Fault", "Code", "Value"]).is_some())
    else {
        return Failure::Retry(format!("HTTP 500: {}", failure::excerpt(body)));
    };
    let reason = texts
        .first(&["AltinnFault", "AltinnErrorMessage"])
        .or_else(|| texts.first(&["Fault", "Reason", "Text"]))
        .unwrap_or("no reason given");
    let error_id = texts.first(&["AltinnFault", "ErrorID"]);
    let text = match error_id {
        Some(id) => format!("Altinn fault {id}: {reason}"),
        None => format!("SOAP fault: {reason}"),
    };
    let code = texts.first(&["Fault", "Code", "Value"]).unwrap_or_default();
    let subcode = texts
        .first(&["Code", "Subcode", "Value"])
        .unwrap_or_default();
    if error_id == Some(WRONG_CREDENTIALS) || subcode.ends_with("InvalidSecurity") {
        Failure::Unauthorized(text)
    } else if code.ends_with("Receiver") {
        Failure::Retry(text)
    } else {
        Failure::Reject(text)
    }
}

/// 128 random bits as hex, from the standard library's randomly keyed hasher (the guest has
/// no random crate; WASI seeds the keys).
fn random_hex() -> String {
    (0..2)
        .map(|i| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u8(i);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// A fresh nonce for the token: 16 random bytes, base64.
fn nonce() -> String {
    let hex = random_hex();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// 32 hex digits in the 8-4-4-4-12 shape of a UUID.
fn uuid_text(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn soap_fault(code: &str, subcode: &str, detail: &str) -> String {
        format!(
            "<s:Envelope xmlns:s=\"{SOAP12}\"><s:Body><s:Fault><s:Code><s:Value>s:{code}</s:Value>{subcode}</s:Code>\
             <s:Reason><s:Text xml:lang=\"en-US\">the reason</s:Text></s:Reason>{detail}</s:Fault></s:Body></s:Envelope>"
        )
    }

    #[test]
    fn the_envelope_names_the_action_and_the_secret_by_placeholder() {
        let head = open("urn:act", "http://agency/svc?a&b", "dpv");
        assert!(head.contains("<a:Action s:mustUnderstand=\"1\">urn:act</a:Action>"));
        assert!(head.contains("<a:To s:mustUnderstand=\"1\">http://agency/svc?a&amp;b</a:To>"));
        assert!(head.contains("<o:Username>{{secret:dpv.username}}</o:Username>"));
        assert!(head.contains(">{{secret:dpv.password}}</o:Password>"));
        assert!(head.ends_with("<s:Body>"));
        assert_ne!(nonce(), nonce());
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(nonce())
                .unwrap()
                .len(),
            16
        );
    }

    #[test]
    fn faults_are_classified_by_their_code_and_altinn_error() {
        let altinn = "<s:Detail><AltinnFault xmlns=\"x\"><AltinnErrorMessage>Quota reached</AltinnErrorMessage><ErrorID>30020</ErrorID></AltinnFault></s:Detail>";
        match answer(&response(500, &soap_fault("Sender", "", altinn)), None) {
            Err(Failure::Reject(text)) => assert_eq!(text, "Altinn fault 30020: Quota reached"),
            other => panic!("unexpected {other:?}"),
        }
        let credentials = "<s:Detail><AltinnFault xmlns=\"x\"><AltinnErrorMessage>Incorrect</AltinnErrorMessage><ErrorID>989</ErrorID></AltinnFault></s:Detail>";
        assert!(matches!(
            answer(&response(500, &soap_fault("Sender", "", credentials)), None),
            Err(Failure::Unauthorized(_))
        ));
        let security = "<s:Subcode><s:Value xmlns:a=\"w\">a:InvalidSecurity</s:Value></s:Subcode>";
        assert!(matches!(
            answer(&response(500, &soap_fault("Sender", security, "")), None),
            Err(Failure::Unauthorized(_))
        ));
        match answer(&response(500, &soap_fault("Receiver", "", "")), None) {
            Err(Failure::Retry(text)) => assert_eq!(text, "SOAP fault: the reason"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            answer(&response(500, "Internal Server Error"), None),
            Err(Failure::Retry(_))
        ));
        assert!(matches!(
            answer(&response(503, "busy"), None),
            Err(Failure::Retry(_))
        ));
        assert!(matches!(
            answer(&response(413, ""), Some(30)),
            Err(Failure::TooLarge(30))
        ));
        assert!(answer(&response(200, "<a><b>ok</b></a>"), None).is_ok());
    }
}
