//! ELMA, the PEPPOL SMP: which processes an organisation can receive, as the registry reads them
//! to choose DPO (arkivmelding registered) and DPE (eInnsyn registered).
//!
//! A participant is `iso6523-actorid-upis::0192:<orgnr>`; its service group lists one reference
//! per registered process and document type (the SMP's XML rendered as JSON). A participant with
//! no registration is unknown to the SMP: 404.
//!
//! | request | answer |
//! |---|---|
//! | `GET /iso6523-actorid-upis::0192:{orgnr}` | `{participantIdentifier, serviceMetadataReferences: [{processIdentifier, documentIdentifier}]}`; `404` |

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::fixture::Fixture;
use crate::processes;

/// The participant identifier scheme and the Norwegian organisation number prefix.
pub const PARTICIPANT_SCHEME: &str = "iso6523-actorid-upis::0192:";

pub(super) fn router(fixture: Arc<Fixture>) -> Router {
    Router::new()
        .route("/{participant}", get(service_group))
        .with_state(fixture)
}

async fn service_group(
    State(fixture): State<Arc<Fixture>>,
    Path(participant): Path<String>,
) -> Response {
    let registered = participant
        .strip_prefix(PARTICIPANT_SCHEME)
        .and_then(|orgnr| fixture.organisation(orgnr))
        .map(|organisation| {
            organisation
                .elma
                .iter()
                .chain(&organisation.einnsyn)
                .filter_map(|urn| processes::find(urn))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if registered.is_empty() {
        return super::error(
            StatusCode::NOT_FOUND,
            format!("participant {participant} is not registered"),
        );
    }
    let references: Vec<_> = registered
        .iter()
        .flat_map(|process| {
            process.document_types.iter().map(|document_type| {
                json!({
                    "processIdentifier": process.urn,
                    "documentIdentifier": document_type,
                })
            })
        })
        .collect();
    Json(json!({
        "participantIdentifier": participant,
        "serviceMetadataReferences": references,
    }))
    .into_response()
}
