//! KS SvarUt and SvarInn: the DPF channel's sending SOAP service and receiving REST service,
//! bridged so that what one organisation sends another fetches.
//!
//! The integration point sends by `ForsendelsesServiceV9` (SOAP 1.2 with MTOM, HTTP Basic) with
//! each document CMS-encrypted to SvarUt's certificate, and receives by polling SvarInn, which
//! hands out a zip of the documents CMS-encrypted to the receiving organisation's certificate.
//! So this simulator opens every document with SvarUt's key and checks it against its declared
//! mime type and file name (a document that does not open, or is not what it says, is refused
//! with a SOAP fault), keeps the opened documents on disk, and when the receiver has a SvarInn
//! account lists the forsendelse there, zipping and encrypting the documents to the receiver's
//! certificate on download. Statuses use SvarUt's names: MOTTATT and AKSEPTERT on receipt, then
//! KLAR_FOR_MOTTAK when it waits in SvarInn (VARSLET when the receiver has none, as it then goes
//! to the receiver's Altinn inbox), LEST when the receiver confirms it or a test calls
//! [`SvarUt::mark_read`], IKKE_LEVERT when the receiver reports a permanent failure.
//!
//! Every call needs HTTP Basic credentials of an account; the account is the sending
//! organisation on SvarUt and the receiving one on SvarInn.
//!
//! | request | answer |
//! |---|---|
//! | `POST /tjenester/forsendelseservice/ForsendelsesServiceV9` `sendForsendelseMedId` | `return` = the id; a repeat of an id is answered the same and stored once |
//! | … `retrieveForsendelseIdByEksternRef` | `return`* = the sender's ids with that `eksternref` |
//! | … `retrieveForsendelseStatuser` | `return`* = `{forsendelseStatus, forsendelsesid, sisteStatusEndring}` of the sender's ids |
//! | … `retreiveForsendelseTyper` | `return`* = the forsendelse types |
//! | `GET /tjenester/svarinn/mottaker/hentNyeForsendelser` | `200 [forsendelse]` waiting for the account's organisation |
//! | `GET /tjenester/svarinn/forsendelse/{id}` (the listing's absolute `downloadUrl`) | `200` the zip, CMS-encrypted to the receiver |
//! | `POST /tjenester/svarinn/kvitterMottak/forsendelse/{id}` | `200`; LEST, no longer listed |
//! | `POST /tjenester/svarinn/mottakFeilet/forsendelse/{id}` `{feilmelding, permanent}` | `200`; permanent: IKKE_LEVERT, no longer listed |
//! | `GET /simulator/forsendelser` | `200` what arrived, JSON (no credentials; for people and tests) |
//!
//! Faults are HTTP 500 with a SOAP 1.2 `Fault`; SvarInn refusals are `{"error": …}` with 400,
//! 401 or 404.

mod forsendelse;
mod soap;
mod svarinn;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::cms;
use crate::fixture::Fixture;
use crate::serving::{Server, lock};
use crate::timestamp;
use forsendelse::{DeclaredForsendelse, DocumentData};
use soap::{Fault, SERVICE_NS, SoapRequest};

/// The path of the SOAP service.
pub const FORSENDELSE_SERVICE_PATH: &str = "/tjenester/forsendelseservice/ForsendelsesServiceV9";
/// The base path of SvarInn.
pub const SVARINN_PATH: &str = "/tjenester/svarinn";
/// The document size limit when the configuration does not set one: 100 MiB.
pub const DEFAULT_MAX_DOCUMENT_SIZE: u64 = 100 << 20;
/// The forsendelse types `retreiveForsendelseTyper` answers.
pub const FORSENDELSE_TYPES: [&str; 3] = ["Byggesøknad", "Digisos", "eFormidling"];

/// An account at SvarUt: who may call, as which organisation.
#[derive(Clone)]
pub struct Account {
    /// The organisation number it sends and receives for.
    pub orgnr: String,
    /// The organisation's name, as SvarInn lists the receiver.
    pub name: String,
    /// The HTTP Basic username.
    pub username: String,
    /// The HTTP Basic password.
    pub password: String,
    /// The certificate SvarInn encrypts the organisation's post to; none when it has no
    /// receiving system (its post then goes to Altinn, which this simulator does not model).
    pub certificate: Option<X509>,
}

/// The accounts of the fixture's organisations that have one; those SvarUt has a receiving
/// system for (`svarut` in the fixture) get `certificate_of` their organisation number, the
/// certificate SvarInn encrypts to.
pub fn accounts_from_fixture(
    fixture: &Fixture,
    certificate_of: impl Fn(&str) -> Option<X509>,
) -> Vec<Account> {
    fixture
        .organisations
        .iter()
        .filter_map(|organisation| {
            let account = organisation.svarut_account.as_ref()?;
            Some(Account {
                orgnr: organisation.orgnr.clone(),
                name: organisation.name.clone(),
                username: account.username.clone(),
                password: account.password.clone(),
                certificate: organisation
                    .svarut
                    .and_then(|_| certificate_of(&organisation.orgnr)),
            })
        })
        .collect()
}

/// How the simulator is set up.
#[derive(Clone)]
pub struct SvarUtConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// SvarUt's certificate, which senders encrypt documents to.
    pub certificate: X509,
    /// Its private key.
    pub key: PKey<Private>,
    /// The accounts that may call.
    pub accounts: Vec<Account>,
    /// The largest document accepted, in bytes.
    pub max_document_size: u64,
    /// Where documents are stored; when none, a temporary directory removed when it stops.
    pub data_dir: Option<PathBuf>,
}

/// A document SvarUt accepted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dokument {
    /// `filnavn`.
    pub filnavn: String,
    /// `mimetype`.
    pub mimetype: String,
    /// `dokumentType`, if given.
    pub dokument_type: Option<String>,
    /// The opened document's size in bytes.
    pub size: u64,
    /// The opened document's SHA-256, lower-case hex.
    pub sha256: String,
}

/// A forsendelse SvarUt accepted, for assertions.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Forsendelse {
    /// `forsendelsesid`.
    pub id: String,
    /// The sending organisation (the account's).
    pub sender: String,
    /// The receiving organisation.
    pub receiver: String,
    /// `tittel`.
    pub tittel: String,
    /// `eksternref`, the integration point's message id.
    pub eksternref: Option<String>,
    /// Whether the documents came encrypted.
    pub kryptert: bool,
    /// The documents, opened.
    pub dokumenter: Vec<Dokument>,
    /// The statuses so far, oldest first.
    pub statuses: Vec<String>,
    /// What the receiver reported with `mottakFeilet`, last first.
    pub mottak_feilet: Vec<String>,
}

/// [`SvarUt::mark_read`] was given an id SvarUt never accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownForsendelse(pub String);

impl fmt::Display for UnknownForsendelse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SvarUt has no forsendelse {}", self.0)
    }
}

impl std::error::Error for UnknownForsendelse {}

/// A running SvarUt/SvarInn simulator. Dropping it stops the server.
pub struct SvarUt {
    server: Server,
    state: Arc<SvarUtState>,
}

impl SvarUt {
    /// Binds 127.0.0.1 on the configured port and serves until stopped.
    pub async fn start(config: SvarUtConfig) -> io::Result<Self> {
        let mut usernames: Vec<&str> = config
            .accounts
            .iter()
            .map(|a| a.username.as_str())
            .collect();
        usernames.sort_unstable();
        if usernames.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "two SvarUt accounts have the same username",
            ));
        }
        let (data_dir, temp_dir) = match &config.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new().prefix("svarut-").tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let uploads = data_dir.join("uploads");
        let documents = data_dir.join("documents");
        tokio::fs::create_dir_all(&uploads).await?;
        tokio::fs::create_dir_all(&documents).await?;
        let state = Arc::new(SvarUtState {
            config,
            uploads,
            documents,
            _temp_dir: temp_dir,
            fail_next: Arc::new(AtomicU64::new(0)),
            book: Mutex::new(Book::default()),
        });
        let app = Router::new()
            .route(FORSENDELSE_SERVICE_PATH, post(forsendelse_service))
            .nest(SVARINN_PATH, svarinn::router())
            .route("/simulator/forsendelser", get(inspection))
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let server =
            Server::start("SvarUt", state.config.port, app, state.fail_next.clone()).await?;
        Ok(Self { server, state })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The SOAP endpoint.
    pub fn forsendelse_service_url(&self) -> String {
        format!("{}{FORSENDELSE_SERVICE_PATH}", self.base_url())
    }

    /// SvarInn's base URL (`difi.move.fiks.inn.baseUrl`).
    pub fn svarinn_url(&self) -> String {
        format!("{}{SVARINN_PATH}", self.base_url())
    }

    /// Every forsendelse accepted so far, in the order accepted.
    pub fn received(&self) -> Vec<Forsendelse> {
        lock(&self.state.book)
            .forsendelser
            .iter()
            .map(Stored::public)
            .collect()
    }

    /// Records LEST for forsendelse `id`, as when its receiver reads it.
    pub fn mark_read(&self, id: &str) -> Result<(), UnknownForsendelse> {
        let mut book = lock(&self.state.book);
        let stored = book
            .find_mut(id)
            .ok_or_else(|| UnknownForsendelse(id.to_owned()))?;
        stored.record("LEST");
        Ok(())
    }

    /// Answers the next `requests` requests with 503 before checking them.
    pub fn fail_next(&self, requests: u64) {
        self.state.fail_next.store(requests, Ordering::SeqCst);
    }

    /// Stops accepting connections and waits for requests in flight.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

struct SvarUtState {
    config: SvarUtConfig,
    /// Attachments as they arrive, before they are opened.
    uploads: PathBuf,
    /// Opened documents, one directory per forsendelse.
    documents: PathBuf,
    /// Keeps the temporary data directory alive as long as the server can write to it.
    _temp_dir: Option<tempfile::TempDir>,
    fail_next: Arc<AtomicU64>,
    book: Mutex<Book>,
}

impl SvarUtState {
    /// The account whose Basic credentials `headers` carry; `None` for missing or wrong ones.
    fn account(&self, headers: &HeaderMap) -> Option<&Account> {
        let (username, password) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(basic_credentials)?;
        self.config
            .accounts
            .iter()
            .find(|a| a.username == username && a.password == password)
    }

    fn receiving_account(&self, orgnr: &str) -> Option<&Account> {
        self.config
            .accounts
            .iter()
            .find(|a| a.orgnr == orgnr && a.certificate.is_some())
    }
}

#[derive(Default)]
struct Book {
    forsendelser: Vec<Stored>,
}

impl Book {
    fn find_mut(&mut self, id: &str) -> Option<&mut Stored> {
        self.forsendelser.iter_mut().find(|f| f.id == id)
    }
}

/// Where a forsendelse stands in SvarInn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbox {
    /// Not for SvarInn (the receiver has no receiving system).
    NotListed,
    /// Listed for the receiver to fetch.
    Waiting,
    /// Confirmed or permanently failed; no longer listed.
    Done,
}

struct Stored {
    id: String,
    sender: String,
    declared: DeclaredForsendelse,
    documents: Vec<(Dokument, PathBuf)>,
    statuses: Vec<(&'static str, i64)>,
    inbox: Inbox,
    mottak_feilet: Vec<String>,
}

impl Stored {
    fn record(&mut self, status: &'static str) {
        self.statuses.push((status, timestamp::now_millis()));
    }

    fn public(&self) -> Forsendelse {
        Forsendelse {
            id: self.id.clone(),
            sender: self.sender.clone(),
            receiver: self.declared.receiver_orgnr.clone(),
            tittel: self.declared.tittel.clone(),
            eksternref: self.declared.eksternref.clone(),
            kryptert: self.declared.kryptert,
            dokumenter: self.documents.iter().map(|(d, _)| d.clone()).collect(),
            statuses: self.statuses.iter().map(|(s, _)| (*s).to_owned()).collect(),
            mottak_feilet: self.mottak_feilet.iter().rev().cloned().collect(),
        }
    }
}

/// The username and password of an `Authorization: Basic …` value.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

/// 401 with the Basic challenge, before the body is read.
fn unauthorized(body: impl IntoResponse) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"SvarUt\""),
    );
    response
}

async fn forsendelse_service(State(state): State<Arc<SvarUtState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(account) = state.account(&parts.headers).cloned() else {
        tracing::warn!("SvarUt refused a call without valid credentials");
        return unauthorized("HTTP Basic credentials of a SvarUt account are required");
    };
    match operation(&state, &account, &parts.headers, body).await {
        Ok(response) => response,
        Err(fault) => fault.into_response(),
    }
}

async fn operation(
    state: &SvarUtState,
    account: &Account,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Fault> {
    let request = soap::read(
        headers,
        body,
        &state.uploads,
        state.config.max_document_size,
    )
    .await?;
    if request.operation.namespace.as_deref() != Some(SERVICE_NS) {
        return Err(Fault::sender(format!(
            "the operation element must be in namespace {SERVICE_NS}"
        )));
    }
    let mtom = request.mtom;
    let name = request.operation.name.clone();
    let body = match name.as_str() {
        "sendForsendelseMedId" => send(state, account, request).await?,
        "retrieveForsendelseIdByEksternRef" => ids_by_ekstern_ref(state, account, &request),
        "retrieveForsendelseStatuser" => statuses(state, account, &request),
        "retreiveForsendelseTyper" => FORSENDELSE_TYPES
            .iter()
            .map(|t| format!("<return>{}</return>", soap::text(t)))
            .collect(),
        other => return Err(Fault::sender(format!("unknown operation {other}"))),
    };
    Ok(soap::answer(
        &format!("<ns2:{name}Response xmlns:ns2=\"{SERVICE_NS}\">{body}</ns2:{name}Response>"),
        mtom,
    ))
}

async fn send(
    state: &SvarUtState,
    account: &Account,
    mut request: SoapRequest,
) -> Result<String, Fault> {
    let operation = &request.operation;
    let id = operation
        .text_of("forsendelsesid")
        .filter(|id| Uuid::parse_str(id).is_ok())
        .ok_or_else(|| Fault::sender("forsendelsesid must be a UUID"))?
        .to_owned();
    let declared = forsendelse::read(
        operation
            .child("forsendelse")
            .ok_or_else(|| Fault::sender("forsendelse is required"))?,
    )
    .map_err(|why| Fault::sender(format!("forsendelse: {why}")))?;
    let answer = format!("<return>{id}</return>");
    if let Some(existing) = lock(&state.book).forsendelser.iter().find(|f| f.id == id) {
        if existing.sender != account.orgnr {
            return Err(Fault::sender(format!("forsendelse {id} exists already")));
        }
        tracing::info!(%id, "SvarUt saw a forsendelse again");
        return Ok(answer);
    }

    // A directory of its own per attempt: a concurrent repeat of the id must not share it.
    let directory = state.documents.join(Uuid::new_v4().to_string());
    tokio::fs::create_dir_all(&directory)
        .await
        .map_err(Fault::receiver)?;
    let mut unfinished = Unfinished(Some(directory.clone()));
    let mut documents = Vec::new();
    for (index, declared_document) in declared.documents.iter().enumerate() {
        let opened = open_document(
            state,
            index,
            declared_document,
            declared.kryptert,
            &mut request.attachments,
        )
        .await?;
        let path = directory.join(index.to_string());
        tokio::fs::write(&path, &opened)
            .await
            .map_err(Fault::receiver)?;
        documents.push((
            Dokument {
                filnavn: declared_document.filnavn.clone(),
                mimetype: declared_document.mimetype.clone(),
                dokument_type: declared_document.dokument_type.clone(),
                size: opened.len() as u64,
                sha256: hex::encode(Sha256::digest(&opened)),
            },
            path,
        ));
    }
    if let Some(extra) = request.attachments.keys().next() {
        return Err(Fault::sender(format!(
            "attachment {extra} belongs to no document"
        )));
    }

    let listed = state.receiving_account(&declared.receiver_orgnr).is_some();
    let mut stored = Stored {
        id: id.clone(),
        sender: account.orgnr.clone(),
        declared,
        documents,
        statuses: Vec::new(),
        inbox: if listed {
            Inbox::Waiting
        } else {
            Inbox::NotListed
        },
        mottak_feilet: Vec::new(),
    };
    stored.record("MOTTATT");
    stored.record("AKSEPTERT");
    stored.record(if listed { "KLAR_FOR_MOTTAK" } else { "VARSLET" });
    tracing::info!(%id, sender = %stored.sender, receiver = %stored.declared.receiver_orgnr, "SvarUt accepted a forsendelse");
    let mut book = lock(&state.book);
    if !book.forsendelser.iter().any(|f| f.id == id) {
        book.forsendelser.push(stored);
        unfinished.0 = None;
    }
    Ok(answer)
}

/// Document `index` as SvarUt opens it: its bytes (inline or the attachment, which is used up),
/// decrypted with SvarUt's key when the forsendelse is `kryptert`, and checked against its
/// declared mime type and file name.
async fn open_document(
    state: &SvarUtState,
    index: usize,
    document: &forsendelse::DeclaredDocument,
    kryptert: bool,
    attachments: &mut HashMap<String, soap::Attachment>,
) -> Result<Vec<u8>, Fault> {
    let received = match &document.data {
        DocumentData::Inline(bytes) => bytes.clone(),
        DocumentData::Attachment(cid) => {
            let attachment = attachments.remove(cid).ok_or_else(|| {
                Fault::sender(format!(
                    "dokumenter[{index}]: no attachment with Content-ID {cid}"
                ))
            })?;
            tokio::fs::read(&attachment.path)
                .await
                .map_err(Fault::receiver)?
        }
    };
    let opened = if kryptert {
        let (certificate, key) = (state.config.certificate.clone(), state.config.key.clone());
        tokio::task::spawn_blocking(move || cms::decrypt(&received, &certificate, &key))
            .await
            .map_err(Fault::receiver)?
            .map_err(|why| {
                Fault::sender(format!(
                    "dokumenter[{index}] ({:?}) is {why} (SvarUt's)",
                    document.filnavn
                ))
            })?
    } else {
        received
    };
    match forsendelse::content_problem(&document.filnavn, &document.mimetype, &opened) {
        Some(problem) => Err(Fault::sender(format!("dokumenter[{index}]: {problem}"))),
        None => Ok(opened),
    }
}

/// The documents directory of a forsendelse being received; removed unless it was stored, so a
/// refused forsendelse leaves nothing behind.
struct Unfinished(Option<PathBuf>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(directory) = self.0.take() {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}

fn ids_by_ekstern_ref(state: &SvarUtState, account: &Account, request: &SoapRequest) -> String {
    let wanted = request.operation.text_of("eksternRef");
    lock(&state.book)
        .forsendelser
        .iter()
        .filter(|f| f.sender == account.orgnr && f.declared.eksternref.as_deref() == wanted)
        .map(|f| format!("<return>{}</return>", f.id))
        .collect()
}

fn statuses(state: &SvarUtState, account: &Account, request: &SoapRequest) -> String {
    let book = lock(&state.book);
    request
        .operation
        .children_named("forsendelseider")
        .filter_map(|id| {
            book.forsendelser
                .iter()
                .find(|f| f.id == id.text.trim() && f.sender == account.orgnr)
        })
        .filter_map(|f| {
            let (status, at) = f.statuses.last()?;
            Some(format!(
                "<return><forsendelseStatus>{status}</forsendelseStatus>\
                 <forsendelsesid>{}</forsendelsesid>\
                 <sisteStatusEndring>{}</sisteStatusEndring></return>",
                f.id,
                timestamp::rfc3339(*at)
            ))
        })
        .collect()
}

async fn inspection(State(state): State<Arc<SvarUtState>>) -> Response {
    let forsendelser: Vec<Forsendelse> = lock(&state.book)
        .forsendelser
        .iter()
        .map(Stored::public)
        .collect();
    axum::Json(forsendelser).into_response()
}

/// The JSON of a `forsendelse` as SvarInn lists it, with `download_url`.
fn listing(stored: &Stored, receiver_name: &str, download_url: String) -> Value {
    let declared = &stored.declared;
    serde_json::json!({
        "id": stored.id,
        "tittel": declared.tittel,
        "date": stored.statuses.first().map(|(_, at)| *at),
        "downloadUrl": download_url,
        "forsendelseType": declared.forsendelse_type,
        "kryptert": true,
        "mottaker": {"orgnr": declared.receiver_orgnr, "navn": declared.receiver_name.as_deref().unwrap_or(receiver_name)},
        "svarSendesTil": declared.svar_sendes_til,
        "svarPaForsendelse": declared.svar_pa_forsendelse,
        "metadataFraAvleverendeSystem": declared.metadata_fra_avleverende_system,
        "metadataForImport": declared.metadata_for_import,
        "filmetadata": stored.documents.iter().map(|(d, _)| serde_json::json!({
            "filnavn": d.filnavn,
            "mimetype": d.mimetype,
            "sha256hash": d.sha256,
            "dokumentType": d.dokument_type,
            "size": d.size,
        })).collect::<Vec<_>>(),
    })
}
