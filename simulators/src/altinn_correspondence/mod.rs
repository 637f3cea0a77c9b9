//! DPV on Altinn 2: the correspondence agency (`CorrespondenceAgencyExternal.svc`) v2/v3
//! integration points put messages in organisations' Altinn inboxes with.
//!
//! SOAP 1.2 with WS-Addressing and a WS-Security `UsernameToken`, as Altinn's binding has it,
//! and strict so that a client's mistakes show: the `Action` header must name an operation and
//! match the body, the token's user name and password must be an organisation's Altinn 2
//! end-user system in the fixture (and the body's `SystemUserCode` that same system), every
//! field the integration point sends is read and checked, and a problem is a SOAP 1.2 fault
//! with HTTP 500 as WCF answers it.
//!
//! `InsertCorrespondenceV2` is idempotent on the sender's `ExternalShipmentReference`: sending
//! it again returns the first receipt and creates nothing. A new correspondence has the status
//! `Created`; a test moves it on with [`AltinnCorrespondence::mark`] (Altinn 2 has no
//! "published": a correspondence is visible when created).
//!
//! | request | answer |
//! |---|---|
//! | `GET /ServiceEngineExternal/CorrespondenceAgencyExternal.svc?wsdl` | the WSDL |
//! | `POST /ServiceEngineExternal/CorrespondenceAgencyExternal.svc`, `application/soap+xml` | `InsertCorrespondenceV2`, `GetCorrespondenceStatusHistory` or `Test`; a fault (HTTP 500) otherwise |
//! | `GET /_inspect/correspondences` | JSON: every correspondence received, with its statuses |

mod book;
mod insert;
mod security;
mod wsdl;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::fixture::Fixture;
use crate::serving::{Server, lock};
use crate::soap::{
    self, ALTINN_SERVICES, Envelope, Fault, SoapVersion, TEST_ACTION, WSA, escape, xs_datetime,
};
use book::Book;
pub use book::{Correspondence, CorrespondenceStatus, StatusChange, UnknownShipment};
pub use insert::{ReceivedAttachment, ReceivedNotification, ReceiverEndPoint};

/// The path of the service.
pub const SERVICE_PATH: &str = "/ServiceEngineExternal/CorrespondenceAgencyExternal.svc";
/// The path of the inspection listing.
pub const INSPECT_PATH: &str = "/_inspect/correspondences";
/// The largest message accepted when the configuration does not say (attachments travel
/// base64-encoded inside it): 100 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 100 << 20;

/// How many correspondences are kept when the configuration does not say.
pub const DEFAULT_MAX_CORRESPONDENCES: usize = 10_000;

/// The namespace of the operations.
const CORRESPONDENCE_NS: &str =
    "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10";
/// The prefix of the operations' actions.
const ACTIONS: &str = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10/ICorrespondenceAgencyExternal/";
/// The namespace of serialised string arrays.
const ARRAYS_NS: &str = "http://schemas.microsoft.com/2003/10/Serialization/Arrays";
/// The namespace of the receipt.
const RECEIPT_NS: &str = "http://schemas.altinn.no/services/Intermediary/Receipt/2009/10";
/// The namespace of the status history's information blocks.
const STATUS_INFORMATION_NS: &str =
    "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2016/02";
/// The namespace of the status history's entries.
const STATUS_NS: &str = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2014/10";

/// The `ErrorID` for a correspondence over the limit of those kept (the simulator's own).
const QUOTA_ERROR: i32 = 30_020;
/// The `ErrorID` for a request the agency's validation refuses.
const VALIDATION_ERROR: i32 = 30_001;

/// How the correspondence agency is set up.
#[derive(Debug, Clone)]
pub struct AltinnCorrespondenceConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// The organisations; those with `altinn2` credentials can send.
    pub fixture: Fixture,
    /// The largest message accepted, in bytes; a larger one is answered 413.
    pub max_message_size: usize,
    /// How many correspondences are kept (attachments are hashed, not kept); a new one beyond
    /// is refused with an Altinn fault, so memory stays bounded.
    pub max_correspondences: usize,
}

impl AltinnCorrespondenceConfig {
    /// An agency on a free port for `fixture`'s organisations with the default limits.
    pub fn new(fixture: Fixture) -> Self {
        Self {
            port: 0,
            fixture,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_correspondences: DEFAULT_MAX_CORRESPONDENCES,
        }
    }
}

/// A running correspondence agency. Dropping it stops the server.
pub struct AltinnCorrespondence {
    server: Server,
    state: Arc<AgencyState>,
    fail_next: Arc<AtomicU64>,
}

impl AltinnCorrespondence {
    /// Binds 127.0.0.1 on the configured port and serves until stopped.
    pub async fn start(config: AltinnCorrespondenceConfig) -> io::Result<Self> {
        let state = Arc::new(AgencyState {
            config,
            book: Mutex::new(Book::default()),
        });
        let app = Router::new()
            .route(SERVICE_PATH, get(service_wsdl).post(service))
            .route(INSPECT_PATH, get(inspect))
            .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint") })
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let fail_next = Arc::new(AtomicU64::new(0));
        let server = Server::start(
            "altinn correspondence agency",
            state.config.port,
            app,
            fail_next.clone(),
        )
        .await?;
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

    /// The URL of the service.
    pub fn service_url(&self) -> String {
        format!("{}{SERVICE_PATH}", self.base_url())
    }

    /// Every correspondence received, oldest first.
    pub fn correspondences(&self) -> Vec<Correspondence> {
        self.state.book().correspondences.clone()
    }

    /// Records `status` now for the correspondence `sender` sent with `external_reference`,
    /// as the recipient's actions in Altinn would.
    pub fn mark(
        &self,
        sender: &str,
        external_reference: &str,
        status: CorrespondenceStatus,
    ) -> Result<(), UnknownShipment> {
        let mut book = self.state.book();
        let correspondence = book
            .find_mut(sender, external_reference)
            .ok_or_else(|| UnknownShipment(external_reference.to_owned()))?;
        correspondence.statuses.push(StatusChange {
            status,
            date: xs_datetime(SystemTime::now()),
        });
        Ok(())
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

struct AgencyState {
    config: AltinnCorrespondenceConfig,
    book: Mutex<Book>,
}

impl AgencyState {
    fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.book)
    }

    /// The organisation whose end-user system `user` with `password` is.
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
            .ok_or_else(|| Fault::wrong_credentials(SoapVersion::V12))
    }
}

async fn service(State(state): State<Arc<AgencyState>>, request: Request) -> Response {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/soap+xml" {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Cannot process the message because the content type '{content_type}' was not the expected type 'application/soap+xml; charset=utf-8'."
            ),
        )
            .into_response();
    }
    let limit = state.config.max_message_size;
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), limit).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the message exceeds the agency's limit of {limit} bytes"),
        )
            .into_response();
    };
    let outcome = String::from_utf8(bytes.to_vec())
        .map_err(|_| Fault::client(SoapVersion::V12, "the message is not UTF-8"))
        .and_then(|xml| {
            operation(
                &state,
                soap::content_type_parameter(&content_type, "action").as_deref(),
                &xml,
            )
        });
    outcome.unwrap_or_else(IntoResponse::into_response)
}

/// The operations, by action: (action, body element namespace, body element).
const OPERATIONS: [(&str, &str, &str); 3] = [
    (
        "InsertCorrespondenceV2",
        CORRESPONDENCE_NS,
        "InsertCorrespondenceV2",
    ),
    (
        "GetCorrespondenceStatusHistory",
        CORRESPONDENCE_NS,
        "CorrespondenceStatusHistoryRequest",
    ),
    ("Test", ALTINN_SERVICES, "Test"),
];

fn operation(
    state: &AgencyState,
    content_action: Option<&str>,
    xml: &str,
) -> Result<Response, Fault> {
    let envelope =
        Envelope::parse(xml, SoapVersion::V12).map_err(|e| Fault::client(SoapVersion::V12, e))?;
    let addressing = security::addressing(&envelope, content_action)?;
    let action = addressing.action.as_str();
    let (name, ns, element) = OPERATIONS
        .iter()
        .find(|(name, _, _)| {
            if *name == "Test" {
                action == TEST_ACTION
            } else {
                action.strip_prefix(ACTIONS) == Some(name)
            }
        })
        .copied()
        .ok_or_else(|| Fault::action_not_supported(SoapVersion::V12, action))?;
    let fault_action = format!("{action}AltinnFaultFault");
    let (user, password) = security::username_token(&envelope)?;
    let sender = state
        .authenticate(&user, &password)
        .map_err(|f| f.with_action(&fault_action))?;
    if !envelope.body.is(ns, element) {
        return Err(Fault::client(
            SoapVersion::V12,
            format!(
                "the body holds {{{}}}{}, but {name} takes {{{ns}}}{element}",
                envelope.body.ns, envelope.body.name
            ),
        ));
    }
    let (response_action, body) = match name {
        "Test" => (
            format!("{TEST_ACTION}Response"),
            format!("<TestResponse xmlns=\"{ALTINN_SERVICES}\"/>"),
        ),
        "InsertCorrespondenceV2" => (
            format!("{ACTIONS}InsertCorrespondenceV2Response"),
            insert_correspondence(state, &envelope, &user, &sender)
                .map_err(|f| f.with_action(&fault_action))?,
        ),
        _ => (
            format!("{ACTIONS}GetCorrespondenceStatusHistoryResponse"),
            status_history(state, &envelope, &sender),
        ),
    };
    let relates_to = addressing
        .message_id
        .map(|id| {
            format!(
                "<a:RelatesTo xmlns:a=\"{WSA}\">{}</a:RelatesTo>",
                escape(&id)
            )
        })
        .unwrap_or_default();
    let header = format!(
        "<a:Action s:mustUnderstand=\"1\" xmlns:a=\"{WSA}\">{}</a:Action>{relates_to}",
        escape(&response_action),
    );
    Ok(soap::respond(
        SoapVersion::V12,
        StatusCode::OK,
        soap::envelope(SoapVersion::V12, &header, &body),
    ))
}

fn insert_correspondence(
    state: &AgencyState,
    envelope: &Envelope,
    user: &str,
    sender: &str,
) -> Result<String, Fault> {
    let request = insert::read(&envelope.body, CORRESPONDENCE_NS)
        .map_err(|e| Fault::client(SoapVersion::V12, e))?;
    if request.system_user_code != user {
        return Err(Fault::altinn(
            SoapVersion::V12,
            VALIDATION_ERROR,
            format!(
                "SystemUserCode {} is not the system {user} the message is signed by",
                request.system_user_code
            ),
        ));
    }
    let mut book = state.book();
    let reference = request.external_shipment_reference.clone();
    if book.find(sender, &reference).is_none() {
        let limit = state.config.max_correspondences;
        if book.correspondences.len() >= limit {
            return Err(Fault::altinn(
                SoapVersion::V12,
                QUOTA_ERROR,
                format!("The agency already holds its limit of {limit} correspondences"),
            ));
        }
        book.last_id += 1;
        let id = book.last_id;
        tracing::info!(%reference, reportee = %request.reportee, "altinn correspondence agency received a correspondence");
        book.correspondences.push(Correspondence {
            correspondence_id: 400_000 + id,
            receipt_id: 900_000 + id,
            external_shipment_reference: request.external_shipment_reference,
            system_user_code: request.system_user_code,
            sender: sender.to_owned(),
            reportee: request.reportee,
            service_code: request.service_code,
            service_edition: request.service_edition,
            message_sender: request.message_sender,
            language_code: request.language_code,
            title: request.title,
            summary: request.summary,
            body: request.body,
            visible_date_time: request.visible_date_time,
            due_date_time: request.due_date_time,
            allow_system_delete_date_time: request.allow_system_delete_date_time,
            allow_forwarding: request.allow_forwarding,
            attachments: request.attachments,
            notifications: request.notifications,
            statuses: vec![StatusChange {
                status: CorrespondenceStatus::Created,
                date: xs_datetime(SystemTime::now()),
            }],
        });
    } else {
        tracing::info!(%reference, "altinn correspondence agency saw a correspondence again");
    }
    let correspondence = book
        .find(sender, &reference)
        .expect("the correspondence was just found or added");
    let created = &correspondence.statuses[0].date;
    let reference = escape(&reference);
    Ok(format!(
        "<InsertCorrespondenceV2Response xmlns=\"{CORRESPONDENCE_NS}\">\
         <InsertCorrespondenceV2Result xmlns:b=\"{RECEIPT_NS}\">\
         <b:LastChanged>{created}</b:LastChanged><b:ParentReceiptId>0</b:ParentReceiptId>\
         <b:ReceiptHistory>{created} - OK - Correspondence Saved Successfully</b:ReceiptHistory>\
         <b:ReceiptId>{}</b:ReceiptId><b:ReceiptStatusCode>OK</b:ReceiptStatusCode>\
         <b:ReceiptText>Correspondence Saved Successfully</b:ReceiptText>\
         <b:ReceiptTypeName>Correspondence</b:ReceiptTypeName><b:References>\
         <b:Reference><b:ReferenceTypeName>ExternalShipmentReference</b:ReferenceTypeName>\
         <b:ReferenceValue>{reference}</b:ReferenceValue></b:Reference>\
         <b:Reference><b:ReferenceTypeName>OwnerPartyReference</b:ReferenceTypeName>\
         <b:ReferenceValue>{}</b:ReferenceValue></b:Reference></b:References>\
         <b:SubReceipts i:nil=\"true\"/></InsertCorrespondenceV2Result></InsertCorrespondenceV2Response>",
        correspondence.receipt_id,
        escape(&correspondence.reportee),
    ))
}

fn status_history(state: &AgencyState, envelope: &Envelope, sender: &str) -> String {
    let references: Vec<&str> = envelope
        .body
        .child(CORRESPONDENCE_NS, "CorrespondenceSendersReferences")
        .map(|list| {
            list.children_named(ARRAYS_NS, "string")
                .map(|s| s.text.trim())
                .collect()
        })
        .unwrap_or_default();
    let book = state.book();
    let entries: String = references
        .iter()
        .filter_map(|reference| book.find(sender, reference))
        .map(|c| {
            let changes: String = c
                .statuses
                .iter()
                .map(|s| {
                    format!(
                        "<c:StatusChangeV2><c:StatusDate>{}</c:StatusDate><c:StatusType>{}</c:StatusType></c:StatusChangeV2>",
                        s.date,
                        s.status.as_str()
                    )
                })
                .collect();
            format!(
                "<c:StatusV2><c:CorrespondenceID>{}</c:CorrespondenceID><c:CreatedDate>{}</c:CreatedDate>\
                 <c:Notifications/><c:Reportee>{}</c:Reportee><c:SendersReference>{}</c:SendersReference>\
                 <c:StatusChanges>{changes}</c:StatusChanges></c:StatusV2>",
                c.correspondence_id,
                c.statuses[0].date,
                escape(&c.reportee),
                escape(&c.external_shipment_reference),
            )
        })
        .collect();
    format!(
        "<CorrespondenceStatusHistoryResult xmlns=\"{CORRESPONDENCE_NS}\" xmlns:b=\"{STATUS_INFORMATION_NS}\" xmlns:c=\"{STATUS_NS}\">\
         <CorrespondenceStatusInformation><b:CorrespondenceStatusDetailsList>{entries}</b:CorrespondenceStatusDetailsList>\
         <b:LimitReached>false</b:LimitReached></CorrespondenceStatusInformation>\
         <SdpStatusInformation i:nil=\"true\"/></CorrespondenceStatusHistoryResult>"
    )
}

async fn service_wsdl(uri: Uri, headers: HeaderMap) -> Response {
    soap::wsdl_response(&uri, || {
        wsdl::wsdl(&soap::endpoint_address(&headers, SERVICE_PATH))
    })
}

async fn inspect(State(state): State<Arc<AgencyState>>) -> Response {
    axum::Json(state.book().correspondences.clone()).into_response()
}
