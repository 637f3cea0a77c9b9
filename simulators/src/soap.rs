//! What the Altinn 2 SOAP simulators share: reading a SOAP envelope into a small
//! namespace-aware element tree, writing envelopes, answering faults the way Altinn's WCF
//! services do (HTTP 500, an `AltinnFault` detail), and serving a WSDL on `?wsdl`.
//!
//! The broker service speaks SOAP 1.1 and the correspondence agency SOAP 1.2; both are strict
//! about namespaces, so lookups here always name the namespace as well as the element. The
//! tree is only ever built from small messages (a size limit is applied before parsing), which
//! keeps the parser simple: no DTDs, no entities beyond XML's own, a bounded depth.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

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
/// The `ErrorID` Altinn gives a wrong system user name or password.
pub(crate) const WRONG_CREDENTIALS_ERROR: i32 = 989;
/// Altinn's message for a wrong system user name or password.
pub(crate) const WRONG_CREDENTIALS: &str = "Incorrect username/password/pin given for user";

/// How deep an element tree may nest; SOAP messages here are a dozen levels at most.
const MAX_DEPTH: usize = 64;

/// An XML element: its expanded name, attributes, child elements and text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    /// The namespace URI, empty when unbound.
    pub ns: String,
    /// The local name.
    pub name: String,
    /// Attributes as (namespace, local name, value); namespace declarations left out.
    pub attributes: Vec<(String, String, String)>,
    /// Child elements, in document order.
    pub children: Vec<Element>,
    /// The text directly inside the element, entities resolved.
    pub text: String,
}

impl Element {
    /// Whether this is `{ns}name`.
    pub(crate) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The first child `{ns}name`.
    pub(crate) fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child `{ns}name`.
    pub(crate) fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The attribute `{ns}name`.
    pub(crate) fn attribute(&self, ns: &str, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, l, _)| n == ns && l == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// Whether the element carries `xsi:nil="true"`.
    pub(crate) fn is_nil(&self) -> bool {
        self.attribute(XSI, "nil")
            .is_some_and(|v| matches!(v.trim(), "true" | "1"))
    }

    /// The trimmed text of child `{ns}name`, if present, not nil and not empty.
    pub(crate) fn text_of(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name)
            .filter(|c| !c.is_nil())
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// The trimmed text of child `{ns}name`, or a description of what is missing.
    pub(crate) fn required(&self, ns: &str, name: &str) -> Result<&str, String> {
        self.text_of(ns, name)
            .ok_or_else(|| format!("{} is missing {name}", self.name))
    }
}

/// Parses `xml` into its root element; the error says what is wrong with it.
pub(crate) fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => ns.0.to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(prefix) => {
                return Err(format!("the namespace prefix {prefix:?} is not declared"));
            }
        };
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                return Err(format!(
                    "content after the root element: <{}>",
                    start.local_name().as_ref()
                ));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                if stack.len() == MAX_DEPTH {
                    return Err(format!("elements nest deeper than {MAX_DEPTH}"));
                }
                let mut element = Element {
                    ns,
                    name: start.local_name().as_ref().to_owned(),
                    ..Element::default()
                };
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| format!("a bad attribute: {e}"))?;
                    let key = attribute.key;
                    if key.as_ref() == "xmlns" || key.as_ref().starts_with("xmlns:") {
                        continue;
                    }
                    let (resolved, local) = reader.resolver().resolve_attribute(key);
                    let attribute_ns = match resolved {
                        ResolveResult::Bound(ns) => ns.0.to_owned(),
                        ResolveResult::Unbound => String::new(),
                        ResolveResult::Unknown(prefix) => {
                            return Err(format!("the namespace prefix {prefix:?} is not declared"));
                        }
                    };
                    let value = attribute
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| format!("a bad attribute value: {e}"))?;
                    element.attributes.push((
                        attribute_ns,
                        local.as_ref().to_owned(),
                        value.into_owned(),
                    ));
                }
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("an end tag without a start tag")?;
                close(&mut stack, &mut root, element);
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err("text outside the root element".into()),
                }
            }
            Event::CData(data) => {
                let content = data.xml10_content();
                stack
                    .last_mut()
                    .ok_or("CDATA outside the root element")?
                    .text
                    .push_str(&content);
            }
            Event::GeneralRef(reference) => {
                let resolved = if reference.is_char_ref() {
                    reference
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .map(String::from)
                } else {
                    quick_xml::escape::resolve_predefined_entity(&reference).map(str::to_owned)
                };
                let resolved =
                    resolved.ok_or_else(|| format!("an unknown entity &{};", &*reference))?;
                stack
                    .last_mut()
                    .ok_or("an entity outside the root element")?
                    .text
                    .push_str(&resolved);
            }
            Event::DocType(_) => return Err("a DTD is not allowed in a SOAP message".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "no root element".into())
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

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

/// Who is at fault, as SOAP 1.1 (`Client`/`Server`) and 1.2 (`Sender`/`Receiver`) say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultCode {
    /// The request is wrong.
    Sender,
    /// The service failed.
    Receiver,
}

/// A SOAP fault, answered with HTTP 500 as WCF does.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    /// The SOAP version to answer in.
    pub version: SoapVersion,
    /// Who is at fault.
    pub code: FaultCode,
    /// A more specific code, `(namespace, local name)`, as WCF gives for addressing and
    /// security failures (as the 1.1 `faultcode` it replaces the generic one).
    pub subcode: Option<(&'static str, &'static str)>,
    /// The human-readable reason.
    pub reason: String,
    /// The Altinn error id when the fault carries an `AltinnFault` detail.
    pub altinn_error: Option<i32>,
    /// The WS-Addressing action of the fault message (SOAP 1.2 with addressing only).
    pub action: Option<String>,
}

impl Fault {
    /// A fault for a malformed or incomplete request, without Altinn detail.
    pub(crate) fn client(version: SoapVersion, reason: impl Into<String>) -> Self {
        Self {
            version,
            code: FaultCode::Sender,
            subcode: None,
            reason: reason.into(),
            altinn_error: None,
            action: None,
        }
    }

    /// A fault Altinn raises from its own checks, with an `AltinnFault` detail.
    pub(crate) fn altinn(version: SoapVersion, error_id: i32, message: impl Into<String>) -> Self {
        Self {
            altinn_error: Some(error_id),
            ..Self::client(version, message)
        }
    }

    /// Wrong system user name or password, as Altinn answers it.
    pub(crate) fn wrong_credentials(version: SoapVersion) -> Self {
        Self::altinn(version, WRONG_CREDENTIALS_ERROR, WRONG_CREDENTIALS)
    }

    /// A SOAP action the endpoint has no operation for, worded as WCF words it (the code is
    /// WS-Addressing's where the binding uses it, WCF's own where it does not).
    pub(crate) fn action_not_supported(version: SoapVersion, action: &str) -> Self {
        let namespace = match version {
            SoapVersion::V11 => WCF_ADDRESSING_NONE,
            SoapVersion::V12 => WSA,
        };
        Self {
            subcode: Some((namespace, "ActionNotSupported")),
            ..Self::client(
                version,
                format!(
                    "The message with Action '{action}' cannot be processed at the receiver, due \
                     to a ContractFilter mismatch at the EndpointDispatcher."
                ),
            )
        }
    }

    /// Sets the WS-Addressing action of the fault message.
    pub(crate) fn with_action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    fn detail(&self) -> String {
        let Some(error_id) = self.altinn_error else {
            return String::new();
        };
        let message = escape(&self.reason);
        format!(
            "<AltinnFault xmlns=\"{ALTINN_FAULT}\" xmlns:i=\"{XSI}\">\
             <AltinnErrorMessage>{message}</AltinnErrorMessage>\
             <AltinnExtendedErrorMessage>No information available</AltinnExtendedErrorMessage>\
             <AltinnLocalizedErrorMessage>{message}</AltinnLocalizedErrorMessage>\
             <ErrorGuid>{}</ErrorGuid><ErrorID>{error_id}</ErrorID>\
             <UserGuid>-no value-</UserGuid><UserId>0</UserId></AltinnFault>",
            uuid::Uuid::new_v4()
        )
    }

    /// The fault as an envelope.
    pub(crate) fn to_xml(&self) -> String {
        let reason = escape(&self.reason);
        let detail = self.detail();
        match self.version {
            SoapVersion::V11 => {
                let code = match (self.subcode, self.code) {
                    (Some((ns, name)), _) => {
                        format!("<faultcode xmlns:a=\"{ns}\">a:{name}</faultcode>")
                    }
                    (None, FaultCode::Sender) => "<faultcode>s:Client</faultcode>".to_owned(),
                    (None, FaultCode::Receiver) => "<faultcode>s:Server</faultcode>".to_owned(),
                };
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!("<detail>{detail}</detail>")
                };
                envelope(
                    SoapVersion::V11,
                    "",
                    &format!(
                        "<s:Fault>{code}<faultstring xml:lang=\"en-US\">{reason}</faultstring>{detail}</s:Fault>"
                    ),
                )
            }
            SoapVersion::V12 => {
                let value = match self.code {
                    FaultCode::Sender => "s:Sender",
                    FaultCode::Receiver => "s:Receiver",
                };
                let subcode = self
                    .subcode
                    .map(|(ns, name)| {
                        format!(
                            "<s:Subcode><s:Value xmlns:a=\"{ns}\">a:{name}</s:Value></s:Subcode>"
                        )
                    })
                    .unwrap_or_default();
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!("<s:Detail>{detail}</s:Detail>")
                };
                let header = self
                    .action
                    .as_deref()
                    .map(|action| {
                        format!(
                            "<a:Action s:mustUnderstand=\"1\" xmlns:a=\"{WSA}\">{}</a:Action>",
                            escape(action)
                        )
                    })
                    .unwrap_or_default();
                envelope(
                    SoapVersion::V12,
                    &header,
                    &format!(
                        "<s:Fault><s:Code><s:Value>{value}</s:Value>{subcode}</s:Code>\
                         <s:Reason><s:Text xml:lang=\"en-US\">{reason}</s:Text></s:Reason>{detail}</s:Fault>"
                    ),
                )
            }
        }
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        tracing::info!(reason = %self.reason, "answering a SOAP fault");
        respond(
            self.version,
            StatusCode::INTERNAL_SERVER_ERROR,
            self.to_xml(),
        )
    }
}

/// WS-Addressing 1.0.
pub(crate) const WSA: &str = "http://www.w3.org/2005/08/addressing";
/// The namespace WCF puts its addressing fault codes in when a binding has no addressing.
pub(crate) const WCF_ADDRESSING_NONE: &str =
    "http://schemas.microsoft.com/ws/2005/05/addressing/none";

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

/// `time` as an `xs:dateTime` in UTC with milliseconds, e.g. `2026-11-26T17:10:33.123Z`.
pub(crate) fn xs_datetime(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since.subsec_millis()
    )
}

/// Reads an `xs:dateTime` with a time zone (`Z` or `±hh:mm`); none when it is not one.
pub(crate) fn parse_xs_datetime(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (clock, offset_seconds) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0i64)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = zone[1..].split_once(':')?;
        let offset = hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60;
        (clock, sign * offset)
    };
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second_text = clock_parts.next()?;
    let (whole, fraction) = second_text.split_once('.').unwrap_or((second_text, ""));
    let second: i64 = whole.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let millis: u64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    let seconds = u64::try_from(seconds).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_resolve_namespaces_and_entities() {
        let root = parse(
            "<?xml version=\"1.0\"?><a:Root xmlns:a=\"urn:a\" xmlns=\"urn:d\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">\
             <Child a:attr=\"x&amp;y\">1 &lt; 2 &#x41;<![CDATA[<raw>]]></Child><Nil i:nil=\"true\"/></a:Root>",
        )
        .unwrap();
        assert!(root.is("urn:a", "Root"));
        let child = root.child("urn:d", "Child").unwrap();
        assert_eq!(child.text, "1 < 2 A<raw>");
        assert_eq!(child.attribute("urn:a", "attr"), Some("x&y"));
        assert!(root.child("urn:d", "Nil").unwrap().is_nil());
        assert_eq!(root.text_of("urn:d", "Nil"), None);
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            "<a><b></a>",
            "<a>",
            "<a/><b/>",
            "<p:a/>",
            "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            "<a>&unknown;</a>",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

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

    #[test]
    fn datetimes_round_trip() {
        let time = UNIX_EPOCH + Duration::from_millis(1_795_712_233_123);
        let text = xs_datetime(time);
        assert_eq!(text, "2026-11-26T16:57:13.123Z");
        assert_eq!(parse_xs_datetime(&text), Some(time));
        assert_eq!(
            parse_xs_datetime("2026-11-26T17:57:13.123+01:00"),
            Some(time)
        );
        assert_eq!(
            parse_xs_datetime("2000-02-29T00:00:00Z")
                .map(xs_datetime)
                .as_deref(),
            Some("2000-02-29T00:00:00.000Z")
        );
        assert_eq!(parse_xs_datetime("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_xs_datetime("yesterday"), None);
    }
}
