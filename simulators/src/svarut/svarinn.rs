//! SvarInn, the receiving side: an organisation's system polls for new forsendelser, downloads
//! each as a zip of its documents CMS-encrypted to the organisation's certificate, and confirms
//! it (or reports that it could not take it).
//!
//! The `downloadUrl` in the listing is absolute, built from the `Host` the caller used, so it
//! points back at this simulator from wherever the integration point reaches it (the upstream
//! mock hard-coded `localhost`, unreachable from a container).

use std::io::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Account, Inbox, SVARINN_PATH, SvarUtState, listing, unauthorized};
use crate::cms;
use crate::serving::lock;

/// SvarInn's routes, relative to [`SVARINN_PATH`].
pub(super) fn router() -> Router<Arc<SvarUtState>> {
    Router::new()
        .route("/mottaker/hentNyeForsendelser", get(new_forsendelser))
        .route("/forsendelse/{id}", get(download))
        .route("/kvitterMottak/forsendelse/{id}", post(confirm))
        .route("/mottakFeilet/forsendelse/{id}", post(failed))
}

/// A SvarInn refusal, answered as `{"error": …}`.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        tracing::warn!(status = %self.status, message = %self.message, "SvarInn refused a request");
        let body = axum::Json(json!({ "error": self.message }));
        if self.status == StatusCode::UNAUTHORIZED {
            unauthorized(body)
        } else {
            (self.status, body).into_response()
        }
    }
}

fn account(state: &SvarUtState, headers: &HeaderMap) -> Result<Account, Refusal> {
    state.account(headers).cloned().ok_or_else(|| {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            "HTTP Basic credentials of a SvarInn account are required",
        )
    })
}

async fn new_forsendelser(
    State(state): State<Arc<SvarUtState>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let account = account(&state, &headers)?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| Refusal::new(StatusCode::BAD_REQUEST, "the request has no Host"))?;
    let book = lock(&state.book);
    let waiting: Vec<Value> = book
        .forsendelser
        .iter()
        .filter(|f| f.inbox == Inbox::Waiting && f.declared.receiver_orgnr == account.orgnr)
        .map(|f| {
            let url = format!("http://{host}{SVARINN_PATH}/forsendelse/{}", f.id);
            listing(f, &account.name, url)
        })
        .collect();
    Ok(axum::Json(waiting).into_response())
}

async fn download(
    State(state): State<Arc<SvarUtState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let account = account(&state, &headers)?;
    let certificate = account.certificate.clone().ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "the account has no SvarInn receiving system",
        )
    })?;
    let documents = {
        let book = lock(&state.book);
        let stored = book
            .forsendelser
            .iter()
            .find(|f| {
                f.id == id
                    && f.inbox == Inbox::Waiting
                    && f.declared.receiver_orgnr == account.orgnr
            })
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::NOT_FOUND,
                    format!("no forsendelse {id} waits for {}", account.orgnr),
                )
            })?;
        stored
            .documents
            .iter()
            .map(|(d, path)| (d.filnavn.clone(), path.clone()))
            .collect::<Vec<_>>()
    };
    let encrypted = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, path) in documents {
            let content = std::fs::read(&path).map_err(|e| e.to_string())?;
            zip.start_file(name, options).map_err(|e| e.to_string())?;
            zip.write_all(&content).map_err(|e| e.to_string())?;
        }
        let zip = zip.finish().map_err(|e| e.to_string())?.into_inner();
        cms::encrypt(&certificate, &zip).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        encrypted,
    )
        .into_response())
}

async fn confirm(
    State(state): State<Arc<SvarUtState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let account = account(&state, &headers)?;
    let mut book = lock(&state.book);
    let stored = book
        .find_mut(&id)
        .filter(|f| f.declared.receiver_orgnr == account.orgnr && f.inbox != Inbox::NotListed)
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no forsendelse {id} for {}", account.orgnr),
            )
        })?;
    if stored.inbox == Inbox::Waiting {
        stored.inbox = Inbox::Done;
        stored.record("LEST");
        tracing::info!(%id, receiver = %account.orgnr, "SvarInn delivered a forsendelse");
    }
    Ok(StatusCode::OK.into_response())
}

async fn failed(
    State(state): State<Arc<SvarUtState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let account = account(&state, &headers)?;
    let report: Value = serde_json::from_slice(&body).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })?;
    let feilmelding = report["feilmelding"].as_str().ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "feilmelding (a string) is required",
        )
    })?;
    let permanent = report["permanent"].as_bool().ok_or_else(|| {
        Refusal::new(StatusCode::BAD_REQUEST, "permanent (a boolean) is required")
    })?;
    let mut book = lock(&state.book);
    let stored = book
        .find_mut(&id)
        .filter(|f| f.declared.receiver_orgnr == account.orgnr && f.inbox == Inbox::Waiting)
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no forsendelse {id} waits for {}", account.orgnr),
            )
        })?;
    stored.mottak_feilet.push(feilmelding.to_owned());
    if permanent {
        stored.inbox = Inbox::Done;
        stored.record("IKKE_LEVERT");
    }
    Ok(StatusCode::OK.into_response())
}
