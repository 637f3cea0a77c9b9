//! The streamed endpoint: uploads and downloads as MTOM/XOP, so a file of a gigabyte never
//! sits in memory.
//!
//! An MTOM message is a `multipart/related` body whose first part is the SOAP envelope
//! (`application/xop+xml`) and whose other parts are the binary values the envelope points at
//! with `<xop:Include href="cid:…"/>`. The envelope part is small and read whole; the file part
//! is streamed to disk, hashed and size-checked as it arrives, and only after the envelope's
//! credentials and reference were accepted. Downloads are written the same way: the envelope,
//! then the file streamed from disk.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt as _, stream};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio_util::io::ReaderStream;
use uuid::Uuid;

use super::files::Uploaded;
use super::{
    BROKER_NS, BrokerState, MAX_ENVELOPE, check_body, media_type, operation, required,
    required_element, soap_action, test_response, unknown_file, unsupported_media_type,
};
use crate::soap::{self, Element, Envelope, Fault, SoapVersion};

/// The interface whose operations the streamed endpoint serves.
const STREAMED_INTERFACE: &str = "IBrokerServiceExternalBasicStreamed";
/// The content type WCF expects on an MTOM endpoint.
const MTOM_TYPE: &str = "multipart/related; type=\"application/xop+xml\"";
/// The XOP namespace.
const XOP: &str = "http://www.w3.org/2004/08/xop/include";

type Outcome = Result<Response, Refusal>;

/// Why a streamed request is refused.
enum Refusal {
    /// A SOAP fault.
    Fault(Fault),
    /// The file is over the limit of this many bytes: HTTP 413, as IIS answers.
    TooLarge(u64),
    /// A content type the MTOM binding does not read: HTTP 415, as WCF answers.
    MediaType(String),
}

impl From<Fault> for Refusal {
    fn from(fault: Fault) -> Self {
        Self::Fault(fault)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Fault(fault) => fault.into_response(),
            Self::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the file exceeds the broker's limit of {limit} bytes"),
            )
                .into_response(),
            Self::MediaType(found) => unsupported_media_type(&found, MTOM_TYPE),
        }
    }
}

fn client(reason: impl Into<String>) -> Refusal {
    Refusal::Fault(Fault::client(SoapVersion::V11, reason))
}

pub(super) async fn handle(State(state): State<Arc<BrokerState>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let action = soap_action(&headers);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = request.into_body();
    match media_type(&headers).as_str() {
        "multipart/related" => {
            let outcome = mtom(&state, &action, &content_type, body).await;
            as_mtom(outcome.unwrap_or_else(IntoResponse::into_response)).await
        }
        // WCF's MTOM encoder also reads plain messages; only an upload needs an attachment.
        "text/xml" => plain(&state, &action, body)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        other => Refusal::MediaType(other.to_owned()).into_response(),
    }
}

fn streamed_operation(action: &str) -> Result<&'static str, Fault> {
    operation(
        action,
        STREAMED_INTERFACE,
        &[
            "Test",
            "UploadFileStreamedBasic",
            "DownloadFileStreamedBasic",
        ],
    )
}

async fn plain(state: &BrokerState, action: &str, body: Body) -> Outcome {
    let operation = streamed_operation(action)?;
    let xml = super::read_envelope(body).await?;
    let envelope = Envelope::parse(&xml, SoapVersion::V11).map_err(client)?;
    check_body(&envelope, operation)?;
    match operation {
        "Test" => Ok(test_response()),
        "DownloadFileStreamedBasic" => download(state, &envelope.body).await,
        _ => Err(client(
            "UploadFileStreamedBasic takes the file as an MTOM attachment (multipart/related)",
        )),
    }
}

async fn mtom(state: &BrokerState, action: &str, content_type: &str, body: Body) -> Outcome {
    if !soap::content_type_parameter(content_type, "type")
        .is_some_and(|t| t.eq_ignore_ascii_case("application/xop+xml"))
    {
        return Err(Refusal::MediaType(content_type.to_owned()));
    }
    let boundary = soap::content_type_parameter(content_type, "boundary")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| client("the multipart content type has no boundary"))?;
    let operation = streamed_operation(action)?;
    let mut parts = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut root = parts
        .next_field()
        .await
        .map_err(|e| client(format!("malformed MTOM message: {e}")))?
        .ok_or_else(|| client("the MTOM message has no parts"))?;
    if root
        .content_type()
        .is_none_or(|m| m.essence_str() != "application/xop+xml")
    {
        return Err(client(
            "the first MTOM part must be the application/xop+xml envelope",
        ));
    }
    let mut xml = Vec::new();
    while let Some(chunk) = root
        .chunk()
        .await
        .map_err(|e| client(format!("malformed MTOM message: {e}")))?
    {
        if xml.len() + chunk.len() > MAX_ENVELOPE {
            return Err(client(format!(
                "the envelope part is larger than {MAX_ENVELOPE} bytes"
            )));
        }
        xml.extend_from_slice(&chunk);
    }
    drop(root);
    let xml = String::from_utf8(xml).map_err(|_| client("the envelope is not UTF-8"))?;
    let envelope = Envelope::parse(&xml, SoapVersion::V11).map_err(client)?;
    check_body(&envelope, operation)?;
    match operation {
        "Test" => Ok(test_response()),
        "DownloadFileStreamedBasic" => download(state, &envelope.body).await,
        _ => upload(state, &envelope, parts).await,
    }
}

/// A required SOAP header block's text.
fn header_text<'a>(envelope: &'a Envelope, name: &str) -> Result<&'a str, Refusal> {
    envelope
        .header(BROKER_NS, name)
        .filter(|h| !h.is_nil())
        .map(|h| h.text.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| client(format!("the SOAP header {name} is missing")))
}

/// The content id an `xop:Include` inside `element` points at.
fn include_target(element: &Element) -> Result<String, Refusal> {
    let include = element
        .child(XOP, "Include")
        .ok_or_else(|| client(format!("{} holds no xop:Include", element.name)))?;
    let href = include
        .attribute("", "href")
        .ok_or_else(|| client("the xop:Include has no href"))?;
    let id = href
        .strip_prefix("cid:")
        .ok_or_else(|| client(format!("the xop:Include href {href:?} is not a cid: URL")))?;
    percent_decode(id).ok_or_else(|| client(format!("the xop:Include href {href:?} is malformed")))
}

/// Decodes `%XX` escapes, as a `cid:` URL carries a Content-ID.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A file being received: removed again unless the upload completes.
struct Incoming {
    path: PathBuf,
    kept: bool,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn upload(
    state: &BrokerState,
    envelope: &Envelope,
    parts: multer::Multipart<'static>,
) -> Outcome {
    let user = header_text(envelope, "SystemUserName")?;
    let password = header_text(envelope, "SystemPassword")?;
    let reportee = header_text(envelope, "Reportee")?;
    let reference = header_text(envelope, "Reference")?;
    let file_name = header_text(envelope, "FileName")?;
    let data = required_element(&envelope.body, BROKER_NS, "DataStream")?;
    let content_id = include_target(data)?;
    state.authorise(user, password, reportee)?;
    state
        .files()
        .start_upload(reference, reportee, file_name)
        .map_err(unknown_file)?;
    let mut claim = Claim {
        state,
        reference,
        finished: false,
    };
    let upload = receive(state, reference, file_name, &content_id, parts).await?;
    let size = upload.size;
    let receipt = state.files().finish_upload(reference, upload);
    claim.finished = true;
    tracing::info!(%reference, %reportee, size, receipt, "altinn broker service received a file");
    let now = soap::xs_datetime(std::time::SystemTime::now());
    Ok(super::ok(&format!(
        "<ReceiptExternalStreamedBE xmlns=\"{BROKER_NS}\">\
         <LastChanged>{now}</LastChanged><ParentReceiptId>0</ParentReceiptId>\
         <ReceiptHistory>{now} - OK - File uploaded</ReceiptHistory>\
         <ReceiptId>{receipt}</ReceiptId><ReceiptStatusCode>OK</ReceiptStatusCode>\
         <ReceiptText>File uploaded</ReceiptText><ReceiptTypeName>BrokerService</ReceiptTypeName>\
         </ReceiptExternalStreamedBE>"
    )))
}

/// An upload's hold on its file: released when the upload fails, the request is refused or
/// the client goes away mid-way (the handler is then dropped), so the sender can try again.
struct Claim<'a> {
    state: &'a BrokerState,
    reference: &'a str,
    finished: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.state.files().abandon_upload(self.reference);
        }
    }
}

/// Streams the attachment `content_id` to disk, hashing it and holding it to the size limit.
async fn receive(
    state: &BrokerState,
    reference: &str,
    file_name: &str,
    content_id: &str,
    mut parts: multer::Multipart<'static>,
) -> Result<Uploaded, Refusal> {
    let mut part = parts
        .next_field()
        .await
        .map_err(|e| client(format!("malformed MTOM message: {e}")))?
        .ok_or_else(|| client(format!("the attachment cid:{content_id} is missing")))?;
    let id = part
        .headers()
        .get("content-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        });
    if id.as_deref() != Some(content_id) {
        return Err(client(format!(
            "the part after the envelope is {id:?}, not the attachment cid:{content_id}"
        )));
    }
    let mut incoming = Incoming {
        path: state.data_dir.join(format!("{}.part", Uuid::new_v4())),
        kept: false,
    };
    let mut file = tokio::fs::File::create(&incoming.path)
        .await
        .map_err(internal)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let limit = state.config.max_file_size;
    while let Some(chunk) = part
        .chunk()
        .await
        .map_err(|e| client(format!("the attachment is broken: {e}")))?
    {
        size += chunk.len() as u64;
        if size > limit {
            return Err(Refusal::TooLarge(limit));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    drop(file);
    drop(part);
    if parts
        .next_field()
        .await
        .map_err(|e| client(format!("malformed MTOM message: {e}")))?
        .is_some()
    {
        return Err(client("the MTOM message has parts after the attachment"));
    }
    if size == 0 {
        return Err(client("the file is empty"));
    }
    let path = state.data_dir.join(format!("{reference}.bin"));
    std::fs::rename(&incoming.path, &path).map_err(internal)?;
    incoming.kept = true;
    Ok(Uploaded {
        file_name: file_name.to_owned(),
        path,
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

fn internal(error: impl std::fmt::Display) -> Refusal {
    tracing::error!(%error, "altinn broker service failed");
    Refusal::Fault(Fault {
        code: soap::FaultCode::Receiver,
        ..Fault::client(SoapVersion::V11, "internal error")
    })
}

async fn download(state: &BrokerState, request: &Element) -> Outcome {
    let user = required(request, BROKER_NS, "systemUserName")?;
    let password = required(request, BROKER_NS, "systemPassword")?;
    let reference = required(request, BROKER_NS, "fileReference")?;
    let reportee = required(request, BROKER_NS, "reportee")?;
    state.authorise(user, password, reportee)?;
    let (path, size) = state
        .files()
        .download(reference, reportee)
        .map_err(unknown_file)?;
    let file = tokio::fs::File::open(&path).await.map_err(internal)?;
    tracing::info!(%reference, %reportee, size, "altinn broker service sends a file");
    Ok(mtom_response(
        &format!(
            "<DownloadFileStreamedBasicResponse xmlns=\"{BROKER_NS}\">\
             <DownloadFileStreamedBasicResult><xop:Include xmlns:xop=\"{XOP}\" href=\"cid:{ATTACHMENT_ID}\"/>\
             </DownloadFileStreamedBasicResult></DownloadFileStreamedBasicResponse>"
        ),
        size,
        ReaderStream::new(file),
    ))
}

/// The Content-ID of the file part of a download.
const ATTACHMENT_ID: &str = "file@altinn.simulated";
/// The Content-ID of the envelope part of a download.
const ROOT_ID: &str = "envelope@altinn.simulated";

/// The content type of an MTOM message whose parts `boundary` separates.
fn mtom_content_type(boundary: &str) -> String {
    format!(
        "multipart/related; type=\"application/xop+xml\"; boundary=\"{boundary}\"; \
         start=\"<{ROOT_ID}>\"; start-info=\"text/xml\""
    )
}

/// The first part of an MTOM message: `envelope`, opened by `boundary`.
fn envelope_part(boundary: &str, envelope: &str) -> String {
    format!(
        "--{boundary}\r\nContent-ID: <{ROOT_ID}>\r\n\
         Content-Type: application/xop+xml; charset=utf-8; type=\"text/xml\"\r\n\
         Content-Transfer-Encoding: binary\r\n\r\n{envelope}\r\n"
    )
}

/// An MTOM response: the envelope around `body`, then `file` (`size` bytes) as its attachment.
fn mtom_response(body: &str, size: u64, file: ReaderStream<tokio::fs::File>) -> Response {
    let boundary = format!("uuid:{}", Uuid::new_v4());
    let envelope = soap::envelope(SoapVersion::V11, "", body);
    let head = format!(
        "{}--{boundary}\r\nContent-ID: <{ATTACHMENT_ID}>\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n",
        envelope_part(&boundary, &envelope)
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + size + tail.len() as u64;
    let stream = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) })
        .chain(file)
        .chain(stream::once(async move { Ok(Bytes::from(tail)) }));
    Response::builder()
        .header(header::CONTENT_TYPE, mtom_content_type(&boundary))
        .header(header::CONTENT_LENGTH, length)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|error| internal(error).into_response())
}

/// `response` as an MTOM message when it is a plain SOAP message, because a WCF endpoint with
/// MTOM encoding answers everything (receipts, test answers, faults) that way.
async fn as_mtom(response: Response) -> Response {
    let plain_soap = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/xml"));
    if !plain_soap {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let envelope = match axum::body::to_bytes(body, MAX_ENVELOPE).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => return internal(error).into_response(),
    };
    let boundary = format!("uuid:{}", Uuid::new_v4());
    let message = format!("{}--{boundary}--\r\n", envelope_part(&boundary, &envelope));
    parts.headers.remove(header::CONTENT_LENGTH);
    match header::HeaderValue::from_str(&mtom_content_type(&boundary)) {
        Ok(value) => {
            parts.headers.insert(header::CONTENT_TYPE, value);
        }
        Err(error) => return internal(error).into_response(),
    }
    Response::from_parts(parts, Body::from(message))
}
