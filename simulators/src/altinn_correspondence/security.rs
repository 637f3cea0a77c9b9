//! The message-level checks the correspondence agency's SOAP 1.2 binding makes before any
//! operation runs: WS-Addressing (the `Action` header names the operation) and WS-Security (a
//! `UsernameToken` with a plain-text password, a nonce and a fresh creation time).
//!
//! Each failure is answered with the fault a WCF service gives for it, so a client that forgets
//! a header or sends a stale token sees what it would see against Altinn.

use std::time::{Duration, SystemTime};

use crate::soap::{Envelope, Fault, SoapVersion, WSA, parse_xs_datetime};

/// The WS-Security extension namespace.
pub(super) const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// The WS-Security utility namespace (`Created`).
pub(super) const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
/// The password type of a plain-text password.
pub(super) const PASSWORD_TEXT: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";

/// How far a token's creation time may be from now, as WCF's default clock skew.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The addressing headers of a request.
pub(super) struct Addressing {
    /// `wsa:Action`.
    pub action: String,
    /// `wsa:MessageID`, if given, for the response's `RelatesTo`.
    pub message_id: Option<String>,
}

/// Reads the WS-Addressing headers; `content_action` is the `action` parameter of the
/// content type, which must agree when given.
pub(super) fn addressing(
    envelope: &Envelope,
    content_action: Option<&str>,
) -> Result<Addressing, Fault> {
    let action = envelope
        .header(WSA, "Action")
        .map(|a| a.text.trim().to_owned())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Fault {
            subcode: Some((WSA, "MessageAddressingHeaderRequired")),
            ..Fault::client(
                SoapVersion::V12,
                "A required header representing a Message Addressing Property is not present",
            )
        })?;
    if let Some(content_action) = content_action
        && content_action != action
    {
        return Err(Fault {
            subcode: Some((WSA, "ActionMismatch")),
            ..Fault::client(
                SoapVersion::V12,
                format!(
                    "The SOAP action '{content_action}' of the content type does not match the WS-Addressing Action '{action}'."
                ),
            )
        });
    }
    let message_id = envelope
        .header(WSA, "MessageID")
        .map(|m| m.text.trim().to_owned())
        .filter(|m| !m.is_empty());
    Ok(Addressing { action, message_id })
}

/// The fault WCF gives for any problem with the security header.
fn invalid_security() -> Fault {
    Fault {
        subcode: Some((WSSE, "InvalidSecurity")),
        ..Fault::client(
            SoapVersion::V12,
            "An error occurred when verifying security for the message.",
        )
    }
}

/// The user name and password of the request's `UsernameToken`, after checking the token's
/// shape and freshness.
pub(super) fn username_token(envelope: &Envelope) -> Result<(String, String), Fault> {
    let token = envelope
        .header(WSSE, "Security")
        .and_then(|security| security.child(WSSE, "UsernameToken"))
        .ok_or_else(invalid_security)?;
    let username = token
        .text_of(WSSE, "Username")
        .ok_or_else(invalid_security)?;
    let password = token.child(WSSE, "Password").ok_or_else(invalid_security)?;
    if password
        .attribute("", "Type")
        .is_some_and(|kind| kind != PASSWORD_TEXT)
    {
        return Err(invalid_security());
    }
    token.text_of(WSSE, "Nonce").ok_or_else(invalid_security)?;
    let created = token
        .text_of(WSU, "Created")
        .and_then(parse_xs_datetime)
        .ok_or_else(invalid_security)?;
    let now = SystemTime::now();
    let skew = now
        .duration_since(created)
        .or_else(|_| created.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_CLOCK_SKEW {
        return Err(invalid_security());
    }
    Ok((username.to_owned(), password.text.clone()))
}
