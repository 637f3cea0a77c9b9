//! SOAP 1.2 as the SvarUt endpoint speaks it: requests plain (`application/soap+xml`) or MTOM
//! (`multipart/related`, an `application/xop+xml` root part and one binary part per document),
//! answers in the form asked in, faults as SOAP 1.2 `Fault`s with HTTP 500.
//!
//! The envelope is small and read whole; attachments stream to files as they arrive, so a large
//! document is never held in memory before SvarUt opens it. A SOAP 1.1 envelope gets the
//! `VersionMismatch` fault a SOAP 1.2 endpoint answers it with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::xml_tree::{self, Element};

/// The SOAP 1.2 envelope namespace.
pub(crate) const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// The SOAP 1.1 envelope namespace, answered with `VersionMismatch`.
const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The namespace of the ForsendelsesServiceV9 operations.
pub(crate) const SERVICE_NS: &str = "http://www.ks.no/svarut/servicesV9";
/// The largest envelope (root part) read; documents travel as attachments.
const MAX_ENVELOPE: usize = 16 << 20;
/// The Content-ID of the root part of MTOM answers.
const ROOT_ID: &str = "<root.message@svarut.simulated>";

/// Who a fault blames, as its SOAP 1.2 code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultCode {
    /// The request is wrong.
    Sender,
    /// The service failed.
    Receiver,
    /// Not a SOAP 1.2 envelope.
    VersionMismatch,
}

/// A SOAP fault to answer with.
#[derive(Debug)]
pub(crate) struct Fault {
    pub code: FaultCode,
    pub reason: String,
}

impl Fault {
    pub fn sender(reason: impl Into<String>) -> Self {
        Self {
            code: FaultCode::Sender,
            reason: reason.into(),
        }
    }

    pub fn receiver(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "the SvarUt simulator failed");
        Self {
            code: FaultCode::Receiver,
            reason: "internal error".into(),
        }
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        tracing::warn!(code = ?self.code, reason = %self.reason, "SvarUt answered a fault");
        let code = match self.code {
            FaultCode::Sender => "soap:Sender",
            FaultCode::Receiver => "soap:Receiver",
            FaultCode::VersionMismatch => "soap:VersionMismatch",
        };
        let body = format!(
            "<soap:Fault><soap:Code><soap:Value>{code}</soap:Value></soap:Code><soap:Reason>\
             <soap:Text xml:lang=\"en\">{}</soap:Text></soap:Reason></soap:Fault>",
            escape(&self.reason)
        );
        let mut response = (StatusCode::INTERNAL_SERVER_ERROR, envelope(&body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/soap+xml; charset=utf-8"),
        );
        response
    }
}

/// An attachment written to disk; the file is removed when this is dropped.
#[derive(Debug)]
pub(crate) struct Attachment {
    pub path: PathBuf,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A request read: its operation element, attachments by Content-ID, and whether it came as
/// MTOM (the answer goes back the same way).
pub(crate) struct SoapRequest {
    pub operation: Element,
    pub attachments: HashMap<String, Attachment>,
    pub mtom: bool,
}

/// Reads the request, streaming attachments into `dir`, none larger than `max_attachment`.
pub(crate) async fn read(
    headers: &HeaderMap,
    body: Body,
    dir: &Path,
    max_attachment: u64,
) -> Result<SoapRequest, Fault> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/soap+xml" => {
            let bytes = axum::body::to_bytes(body, MAX_ENVELOPE)
                .await
                .map_err(|e| Fault::sender(format!("the request body is unreadable: {e}")))?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| Fault::sender("the envelope is not UTF-8"))?;
            Ok(SoapRequest {
                operation: operation(text)?,
                attachments: HashMap::new(),
                mtom: false,
            })
        }
        "multipart/related" => read_mtom(content_type, body, dir, max_attachment).await,
        "text/xml" => Err(Fault {
            code: FaultCode::VersionMismatch,
            reason: "this endpoint speaks SOAP 1.2 (application/soap+xml), not SOAP 1.1".into(),
        }),
        other => Err(Fault::sender(format!(
            "expected application/soap+xml or MTOM multipart/related, not {other:?}"
        ))),
    }
}

async fn read_mtom(
    content_type: &str,
    body: Body,
    dir: &Path,
    max_attachment: u64,
) -> Result<SoapRequest, Fault> {
    if parameter(content_type, "type").as_deref() != Some("application/xop+xml") {
        return Err(Fault::sender(
            "an MTOM request must be multipart/related; type=\"application/xop+xml\"",
        ));
    }
    let boundary = parameter(content_type, "boundary")
        .ok_or_else(|| Fault::sender("the multipart/related content type has no boundary"))?;
    let broken = |e: multer::Error| Fault::sender(format!("malformed MTOM body: {e}"));
    let mut parts = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut root = parts
        .next_field()
        .await
        .map_err(broken)?
        .ok_or_else(|| Fault::sender("the MTOM body has no parts"))?;
    if root.content_type().map(|m| m.essence_str()) != Some("application/xop+xml") {
        return Err(Fault::sender(
            "the first MTOM part must be the application/xop+xml envelope",
        ));
    }
    let mut envelope = Vec::new();
    while let Some(chunk) = root.chunk().await.map_err(broken)? {
        if envelope.len() + chunk.len() > MAX_ENVELOPE {
            return Err(Fault::sender(format!(
                "the envelope exceeds {MAX_ENVELOPE} bytes"
            )));
        }
        envelope.extend_from_slice(&chunk);
    }
    drop(root);
    let text =
        String::from_utf8(envelope).map_err(|_| Fault::sender("the envelope is not UTF-8"))?;
    let operation = operation(&text)?;

    let mut attachments = HashMap::new();
    while let Some(mut part) = parts.next_field().await.map_err(broken)? {
        let id = part
            .headers()
            .get("content-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
            .ok_or_else(|| Fault::sender("an MTOM attachment has no Content-ID"))?;
        let attachment = Attachment {
            path: dir.join(format!("{}.part", Uuid::new_v4())),
        };
        let mut file = tokio::fs::File::create(&attachment.path)
            .await
            .map_err(Fault::receiver)?;
        let mut size = 0u64;
        while let Some(chunk) = part.chunk().await.map_err(broken)? {
            size += chunk.len() as u64;
            if size > max_attachment {
                return Err(Fault::sender(format!(
                    "attachment {id} exceeds {max_attachment} bytes"
                )));
            }
            file.write_all(&chunk).await.map_err(Fault::receiver)?;
        }
        file.flush().await.map_err(Fault::receiver)?;
        if attachments.insert(id.clone(), attachment).is_some() {
            return Err(Fault::sender(format!(
                "two attachments have Content-ID {id}"
            )));
        }
    }
    Ok(SoapRequest {
        operation,
        attachments,
        mtom: true,
    })
}

/// The operation element: the single child of a SOAP 1.2 `Body`.
fn operation(text: &str) -> Result<Element, Fault> {
    let root =
        xml_tree::parse(text).map_err(|why| Fault::sender(format!("the envelope: {why}")))?;
    if root.is(SOAP11, "Envelope") {
        return Err(Fault {
            code: FaultCode::VersionMismatch,
            reason: "a SOAP 1.1 envelope; this endpoint speaks SOAP 1.2".into(),
        });
    }
    if !root.is(SOAP12, "Envelope") {
        return Err(Fault::sender("the document is not a SOAP 1.2 Envelope"));
    }
    let body = root
        .children
        .iter()
        .find(|c| c.is(SOAP12, "Body"))
        .ok_or_else(|| Fault::sender("the Envelope has no Body"))?;
    match &body.children[..] {
        [operation] => Ok(operation.clone()),
        _ => Err(Fault::sender(
            "the Body must hold exactly one operation element",
        )),
    }
}

/// A parameter of a `Content-Type` value, unquoted.
fn parameter(content_type: &str, name: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{SOAP12}\">\
         <soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

/// `body` (an operation's response element) in an envelope, as MTOM when `mtom`.
pub(crate) fn answer(body: &str, mtom: bool) -> Response {
    let envelope = envelope(body);
    let (content_type, bytes) = if mtom {
        let boundary = format!("uuid:{}", Uuid::new_v4());
        let content_type = format!(
            "multipart/related; type=\"application/xop+xml\"; boundary=\"{boundary}\"; \
             start=\"{ROOT_ID}\"; start-info=\"application/soap+xml\""
        );
        let body = format!(
            "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; \
             type=\"application/soap+xml\"\r\nContent-Transfer-Encoding: binary\r\n\
             Content-ID: {ROOT_ID}\r\n\r\n{envelope}\r\n--{boundary}--\r\n"
        );
        (content_type, body)
    } else {
        ("application/soap+xml; charset=utf-8".to_owned(), envelope)
    };
    let mut response = bytes.into_response();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// Text for an element body, escaped.
pub(crate) fn text(value: &str) -> String {
    escape(value).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_parameters_are_read_unquoted() {
        let value = "multipart/related; type=\"application/xop+xml\"; boundary=\"uuid:12\"";
        assert_eq!(
            parameter(value, "type").as_deref(),
            Some("application/xop+xml")
        );
        assert_eq!(
            parameter("multipart/related; Boundary=abc", "boundary").as_deref(),
            Some("abc")
        );
        assert_eq!(parameter("multipart/related", "boundary"), None);
    }
}
