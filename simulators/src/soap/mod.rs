//! What the Altinn 2 SOAP simulators share: reading a SOAP envelope into a small
//! namespace-aware element tree, writing envelopes, answering faults the way Altinn's WCF
//! services do (HTTP 500, an `AltinnFault` detail), and serving a WSDL on `?wsdl`.
//!
//! The broker service speaks SOAP 1.1 and the correspondence agency SOAP 1.2; both are strict
//! about namespaces, so lookups here always name the namespace as well as the element.

mod fault;
mod time;
mod xml;

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

pub(crate) use fault::{Fault, FaultCode};
pub(crate) use time::{parse_xs_datetime, xs_datetime};
pub(crate) use xml::{Element, parse};

/// The SOAP 1.1 envelope namespace.
pub(crate) const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP 1.2 envelope namespace.
pub(crate) const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// The XML Schema instance namespace (`xsi:nil`).
pub(crate) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The namespace of Altinn's fault detail.
pub(crate) const ALTINN_FAULT: &str = "http://www.altinn.no/services/common/fault/2009/10";
/// The namespace of the `Test` operation every Altinn 2 service has.
pub(crate) const ALTINN_SERVICES: &str = "http://www.altinn.no/services/2009/10";
/// The SOAP action of `Test`.
pub(crate) const TEST_ACTION: &str =
    "http://www.altinn.no/services/2009/10/IAltinnContractBase/Test";
/// WS-Addressing 1.0.
pub(crate) const WSA: &str = "http://www.w3.org/2005/08/addressing";
/// The namespace WCF puts its addressing fault codes in when a binding has no addressing.
pub(crate) const WCF_ADDRESSING_NONE: &str =
    "http://schemas.microsoft.com/ws/2005/05/addressing/none";

/// The SOAP version of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SoapVersion {
    /// SOAP 1.1 (`text/xml`), as the broker service's basic binding.
    V11,
    /// SOAP 1.2 (`application/soap+xml`), as the correspondence agency.
    V12,
}

impl SoapVersion {
    /// The envelope namespace.
    pub(crate) fn namespace(self) -> &'static str {
        match self {
            Self::V11 => SOAP11,
            Self::V12 => SOAP12,
        }
    }

    /// The media type of its messages.
    pub(crate) fn media_type(self) -> &'static str {
        match self {
            Self::V11 => "text/xml",
            Self::V12 => "application/soap+xml",
        }
    }
}

/// A SOAP envelope taken apart: its header blocks and the one element in its body.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// The header blocks, none when there is no header.
    pub headers: Vec<Element>,
    /// The body's single child: the operation's request element.
    pub body: Element,
}

impl Envelope {
    /// Reads `xml` as an envelope of `version`; the error is the reason for a client fault.
    pub(crate) fn parse(xml: &str, version: SoapVersion) -> Result<Self, String> {
        let root = parse(xml)?;
        let ns = version.namespace();
        if root.name != "Envelope" || (root.ns != SOAP11 && root.ns != SOAP12) {
            return Err(format!(
                "the root element is {{{}}}{}, not a SOAP Envelope",
                root.ns, root.name
            ));
        }
        if root.ns != ns {
            return Err(format!(
                "the envelope is in {}, but this endpoint speaks {}",
                root.ns, ns
            ));
        }
        let mut headers = Vec::new();
        let mut body = None;
        for child in root.children {
            match (child.ns == ns, child.name.as_str()) {
                (true, "Header") if headers.is_empty() && body.is_none() => {
                    headers = child.children;
                }
                (true, "Body") if body.is_none() => body = Some(child),
                _ => {
                    return Err(format!(
                        "unexpected {{{}}}{} in the envelope",
                        child.ns, child.name
                    ));
                }
            }
        }
        let body = body.ok_or("the envelope has no Body")?;
        let mut parts = body.children.into_iter();
        let request = parts.next().ok_or("the Body is empty")?;
        if parts.next().is_some() {
            return Err("the Body holds more than one element".into());
        }
        Ok(Self {
            headers,
            body: request,
        })
    }

    /// The header block `{ns}name`.
    pub(crate) fn header(&self, ns: &str, name: &str) -> Option<&Element> {
        self.headers.iter().find(|h| h.is(ns, name))
    }
}

/// Escapes `text` for element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// A whole envelope of `version` around `header` and `body` (both already XML).
pub(crate) fn envelope(version: SoapVersion, header: &str, body: &str) -> String {
    let ns = version.namespace();
    let header = if header.is_empty() {
        String::new()
    } else {
        format!("<s:Header>{header}</s:Header>")
    };
    format!(
        "<s:Envelope xmlns:s=\"{ns}\" xmlns:i=\"{XSI}\">{header}<s:Body>{body}</s:Body></s:Envelope>"
    )
}

/// A response carrying `xml` as a SOAP message of `version`, with HTTP `status`.
pub(crate) fn respond(version: SoapVersion, status: StatusCode, xml: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            format!("{}; charset=utf-8", version.media_type()),
        )],
        xml,
    )
        .into_response()
}

/// The value of parameter `name` in a header value like a Content-Type, unquoted.
pub(crate) fn content_type_parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|part| {
        let (key, value) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Whether the query asks for the WSDL (`?wsdl`, any case, as WCF accepts it).
pub(crate) fn asks_for_wsdl(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|p| p.eq_ignore_ascii_case("wsdl")))
}

/// `http://<Host><path>`: where the client reached the endpoint, for the WSDL's address.
pub(crate) fn endpoint_address(headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}{path}")
}

/// The WSDL `wsdl` builds when the query asks for it, else a 404 that points at `?wsdl`.
pub(crate) fn wsdl_response(uri: &Uri, wsdl: impl FnOnce() -> String) -> Response {
    if !asks_for_wsdl(uri) {
        return (
            StatusCode::NOT_FOUND,
            "this is a SOAP endpoint; its description is at ?wsdl",
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], wsdl()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_checked_for_their_version() {
        let xml = format!(
            "<s:Envelope xmlns:s=\"{SOAP11}\"><s:Header><h xmlns=\"urn:h\">v</h></s:Header>\
             <s:Body><op xmlns=\"urn:o\"/></s:Body></s:Envelope>"
        );
        let envelope = Envelope::parse(&xml, SoapVersion::V11).unwrap();
        assert!(envelope.body.is("urn:o", "op"));
        assert_eq!(envelope.header("urn:h", "h").unwrap().text, "v");
        assert!(Envelope::parse(&xml, SoapVersion::V12).is_err());
        let two = xml.replace("<op xmlns=\"urn:o\"/>", "<op xmlns=\"urn:o\"/><op2/>");
        assert!(Envelope::parse(&two, SoapVersion::V11).is_err());
    }
}
