//! DPO on Altinn 2: the broker service ("formidlingstjenesten") v2/v3 integration points use.
//!
//! Two SOAP 1.1 endpoints as Altinn has them: `BrokerServiceExternalBasic.svc` (initiate, list,
//! poll, confirm, test) and `BrokerServiceExternalBasicStreamed.svc` (upload and download with
//! MTOM/XOP, test). Both serve their WSDL on `GET …?wsdl`, because JAX-WS clients fetch it.
//!
//! It is strict so that a client's mistakes show: the SOAP action must name an operation of the
//! endpoint and match the body, the system user name and password must be an organisation's
//! Altinn 2 end-user system in the fixture and the reportee that organisation, the service
//! code and edition the configured broker service, and a missing field is a `soap:Client`
//! fault. Files are kept per recipient and streamed to and from disk (the MTOM attachment is
//! never held in memory), are visible and downloadable to their recipients only, and leave the
//! `Uploaded` listing when the recipient confirms the download. The disk it uses is bounded:
//! each file by `max_file_size`, how many are held by `max_undelivered_files`.
//!
//! | request | answer |
//! |---|---|
//! | `GET /ServiceEngineExternal/BrokerServiceExternalBasic[Streamed].svc?wsdl` | the WSDL |
//! | `POST …Basic.svc`, SOAP 1.1, `SOAPAction` one of the basic operations | the operation's response, or a fault (HTTP 500) |
//! | `POST …BasicStreamed.svc`, MTOM `multipart/related` | the operation's response (the download as MTOM), or a fault |
//! | `GET /_inspect/files` | JSON: every file initiated, with its state per recipient |
//!
//! Simplifications, stated so no test relies on them: a system user acts only for its own
//! organisation (no delegations); a confirmed file's bytes are deleted once every recipient
//! confirmed, so it is listed under `Downloaded` but can no longer be downloaded.

mod basic;
mod files;
mod streamed;
mod wsdl;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::fixture::Fixture;
use crate::serving::{Server, lock};
use crate::soap::{self, ALTINN_SERVICES, Element, Envelope, Fault, SoapVersion, TEST_ACTION};
use files::Files;
pub use files::{BrokerFile, FileState, RecipientState};

/// The path of the basic endpoint.
pub const BASIC_PATH: &str = "/ServiceEngineExternal/BrokerServiceExternalBasic.svc";
/// The path of the streamed (MTOM) endpoint.
pub const STREAMED_PATH: &str = "/ServiceEngineExternal/BrokerServiceExternalBasicStreamed.svc";
/// The path of the inspection listing.
pub const INSPECT_PATH: &str = "/_inspect/files";
/// The largest file accepted when the configuration does not say: 1 GiB and a bit, above the
/// integration point's own limit for DPO.
pub const DEFAULT_MAX_FILE_SIZE: u64 = (1 << 30) + (16 << 20);

/// How many files may be undelivered at once when the configuration does not say.
pub const DEFAULT_MAX_UNDELIVERED_FILES: usize = 1000;

/// The namespace of the operations, their parameters and the streamed headers.
pub(crate) const BROKER_NS: &str = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06";
/// The namespace of the broker's data types (manifest, search, available file).
pub(crate) const BROKER_DATA_NS: &str =
    "http://schemas.altinn.no/services/ServiceEngine/Broker/2015/06";
/// The namespace of the poll parameters of `CheckIfAvailableFilesBasic`.
pub(crate) const BROKER_POLL_NS: &str =
    "http://schemas.altinn.no/services/ServiceEngine/Broker/2020/01";
/// The namespace of serialised string arrays.
pub(crate) const ARRAYS_NS: &str = "http://schemas.microsoft.com/2003/10/Serialization/Arrays";
/// The namespace of the file status enumeration.
pub(crate) const SERVICE_ENTITY_NS: &str =
    "http://schemas.altinn.no/services/serviceEntity/2015/06";

/// The largest SOAP envelope read into memory (every basic request, and the root part of a
/// streamed one); only attachments are large.
const MAX_ENVELOPE: usize = 1 << 20;

/// How the broker service is set up.
#[derive(Debug, Clone)]
pub struct AltinnBrokerConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// The organisations; those with `altinn2` credentials can use the service.
    pub fixture: Fixture,
    /// The broker service's external service code (the integration point's is 4192).
    pub service_code: String,
    /// Its external service edition code (the integration point's is 270815).
    pub service_edition: i32,
    /// The largest file accepted, in bytes.
    pub max_file_size: u64,
    /// How many files may be undelivered at once (initiated, or uploaded and not confirmed by
    /// every recipient); with the size limit, this bounds the disk the broker uses.
    pub max_undelivered_files: usize,
    /// Where files are stored; when none, a temporary directory removed when it stops.
    pub data_dir: Option<PathBuf>,
}

impl AltinnBrokerConfig {
    /// A broker on a free port for `fixture`'s organisations, with the integration point's
    /// service code and edition, the default size limit and a temporary data directory.
    pub fn new(fixture: Fixture) -> Self {
        Self {
            port: 0,
            fixture,
            service_code: "4192".into(),
            service_edition: 270_815,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_undelivered_files: DEFAULT_MAX_UNDELIVERED_FILES,
            data_dir: None,
        }
    }
}

/// A running broker service. Dropping it stops the server.
pub struct AltinnBroker {
    server: Server,
    state: Arc<BrokerState>,
    fail_next: Arc<AtomicU64>,
}

impl AltinnBroker {
    /// Binds 127.0.0.1 on the configured port and serves until stopped.
    pub async fn start(config: AltinnBrokerConfig) -> io::Result<Self> {
        let (data_dir, temp_dir) = match config.data_dir.clone() {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("altinn-broker-")
                    .tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        tokio::fs::create_dir_all(&data_dir).await?;
        let state = Arc::new(BrokerState {
            config,
            data_dir,
            _temp_dir: temp_dir,
            files: Mutex::new(Files::default()),
        });
        let app = Router::new()
            .route(BASIC_PATH, get(basic_wsdl).post(basic::handle))
            .route(STREAMED_PATH, get(streamed_wsdl).post(streamed::handle))
            .route(INSPECT_PATH, get(inspect))
            .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint") })
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let fail_next = Arc::new(AtomicU64::new(0));
        let server = Server::start(
            "altinn broker service",
            state.config.port,
            app,
            fail_next.clone(),
        )
        .await?;
        tracing::info!(data_dir = %state.data_dir.display(), "altinn broker service keeps files here");
        Ok(Self {
            server,
            state,
            fail_next,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// The URL of the basic endpoint.
    pub fn basic_url(&self) -> String {
        format!("{}{BASIC_PATH}", self.base_url())
    }

    /// The URL of the streamed (MTOM) endpoint.
    pub fn streamed_url(&self) -> String {
        format!("{}{STREAMED_PATH}", self.base_url())
    }

    /// Every file initiated so far, oldest first.
    pub fn files(&self) -> Vec<BrokerFile> {
        self.state.files().snapshot()
    }

    /// Answers the next `requests` requests, whatever they are, with 503.
    pub fn fail_next(&self, requests: u64) {
        self.fail_next.store(requests, Ordering::SeqCst);
    }

    /// Stops accepting connections and waits for requests in flight.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

struct BrokerState {
    config: AltinnBrokerConfig,
    data_dir: PathBuf,
    /// Keeps the temporary data directory alive as long as the server can write to it.
    _temp_dir: Option<tempfile::TempDir>,
    files: Mutex<Files>,
}

impl BrokerState {
    fn files(&self) -> MutexGuard<'_, Files> {
        lock(&self.files)
    }

    /// The organisation number the end-user system `user` with `password` acts for.
    fn authenticate(&self, user: &str, password: &str) -> Result<String, Fault> {
        self.config
            .fixture
            .organisations
            .iter()
            .find(|o| {
                o.altinn2.as_ref().is_some_and(|system| {
                    system.system_user_name == user && system.system_password == password
                })
            })
            .map(|o| o.orgnr.clone())
            .ok_or_else(|| Fault::wrong_credentials(SoapVersion::V11))
    }

    /// Checks the credentials and that `reportee` is the system's organisation.
    fn authorise(&self, user: &str, password: &str, reportee: &str) -> Result<(), Fault> {
        let organisation = self.authenticate(user, password)?;
        if organisation != reportee {
            return Err(Fault::altinn(
                SoapVersion::V11,
                NOT_AUTHORISED_ERROR,
                format!(
                    "The end user system {user} is not authorised to act for reportee {reportee}"
                ),
            ));
        }
        Ok(())
    }

    /// Checks a service code and edition against the broker service's own.
    fn check_service(&self, code: &str, edition: &str) -> Result<(), Fault> {
        if code != self.config.service_code
            || edition.parse::<i32>().ok() != Some(self.config.service_edition)
        {
            return Err(Fault::altinn(
                SoapVersion::V11,
                UNKNOWN_SERVICE_ERROR,
                format!(
                    "No broker service exists with external service code {code} and edition {edition}"
                ),
            ));
        }
        Ok(())
    }
}

// The `ErrorID`s below are the simulator's own: the sources do not document Altinn's.

/// The `ErrorID` for a reportee the system user may not act for.
const NOT_AUTHORISED_ERROR: i32 = 30_014;
/// The `ErrorID` for an unknown service code and edition.
const UNKNOWN_SERVICE_ERROR: i32 = 30_011;
/// The `ErrorID` for an initiation over the limit of undelivered files.
const QUOTA_ERROR: i32 = 30_020;
/// The `ErrorID` for a file reference that is unknown or not the caller's.
const UNKNOWN_FILE_ERROR: i32 = 30_010;

/// The operations of the basic endpoint, by SOAP action suffix.
const BASIC_INTERFACE: &str = "IBrokerServiceExternalBasic";

/// Reads `body` as text, refusing a message over [`MAX_ENVELOPE`].
async fn read_envelope(body: Body) -> Result<String, Fault> {
    let bytes = axum::body::to_bytes(body, MAX_ENVELOPE)
        .await
        .map_err(|_| {
            Fault::client(
                SoapVersion::V11,
                format!("the message is larger than {MAX_ENVELOPE} bytes"),
            )
        })?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Fault::client(SoapVersion::V11, "the message is not UTF-8"))
}

/// The `SOAPAction` header without its quotes; empty when absent.
fn soap_action(headers: &HeaderMap) -> String {
    headers
        .get("soapaction")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .to_owned()
}

/// The media type of the request, lower case, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// WCF's answer to a request in a content type the binding does not read.
fn unsupported_media_type(found: &str, expected: &str) -> Response {
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "Cannot process the message because the content type '{found}' was not the expected type '{expected}'."
        ),
    )
        .into_response()
}

/// The operation `action` names on an endpoint whose operations are `operations` of
/// `interface`; `Test` has Altinn's shared action.
fn operation<'a>(action: &str, interface: &str, operations: &[&'a str]) -> Result<&'a str, Fault> {
    if action == TEST_ACTION && operations.contains(&"Test") {
        return Ok("Test");
    }
    action
        .strip_prefix(BROKER_NS)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_prefix(interface))
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|name| operations.iter().find(|op| **op == name && name != "Test"))
        .copied()
        .ok_or_else(|| Fault::action_not_supported(SoapVersion::V11, action))
}

/// Checks that the body is the request element of `operation`.
fn check_body(envelope: &Envelope, operation: &str) -> Result<(), Fault> {
    let (ns, element) = match operation {
        "Test" => (ALTINN_SERVICES, operation),
        // The upload is a message contract: its body is the payload, not the operation.
        "UploadFileStreamedBasic" => (BROKER_NS, "StreamedPayloadBasicBE"),
        _ => (BROKER_NS, operation),
    };
    if !envelope.body.is(ns, element) {
        return Err(Fault::client(
            SoapVersion::V11,
            format!(
                "the body holds {{{}}}{}, but {operation} takes {{{ns}}}{element}",
                envelope.body.ns, envelope.body.name
            ),
        ));
    }
    Ok(())
}

/// A SOAP 1.1 response with `body`.
fn ok(body: &str) -> Response {
    soap::respond(
        SoapVersion::V11,
        StatusCode::OK,
        soap::envelope(SoapVersion::V11, "", body),
    )
}

/// The empty response to `Test`.
fn test_response() -> Response {
    ok(&format!("<TestResponse xmlns=\"{ALTINN_SERVICES}\"/>"))
}

/// A required child of a request, as a client fault when missing.
fn required<'a>(element: &'a Element, ns: &str, name: &str) -> Result<&'a str, Fault> {
    element
        .required(ns, name)
        .map_err(|e| Fault::client(SoapVersion::V11, e))
}

/// A required complex child of a request.
fn required_element<'a>(element: &'a Element, ns: &str, name: &str) -> Result<&'a Element, Fault> {
    element
        .child(ns, name)
        .filter(|c| !c.is_nil())
        .ok_or_else(|| {
            Fault::client(
                SoapVersion::V11,
                format!("{} is missing {name}", element.name),
            )
        })
}

/// The fault for a file reference the caller cannot use, with the reason.
fn unknown_file(reason: String) -> Fault {
    Fault::altinn(SoapVersion::V11, UNKNOWN_FILE_ERROR, reason)
}

async fn basic_wsdl(uri: Uri, headers: HeaderMap) -> Response {
    soap::wsdl_response(&uri, || {
        wsdl::basic(&soap::endpoint_address(&headers, BASIC_PATH))
    })
}

async fn streamed_wsdl(uri: Uri, headers: HeaderMap) -> Response {
    soap::wsdl_response(&uri, || {
        wsdl::streamed(&soap::endpoint_address(&headers, STREAMED_PATH))
    })
}

async fn inspect(State(state): State<Arc<BrokerState>>) -> Response {
    axum::Json(state.files().snapshot()).into_response()
}
