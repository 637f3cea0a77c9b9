//! KRR, the contact and reservation register: a citizen's reservation, status, notification
//! contacts and digital mailbox, and the print provider, from which the registry chooses DPI,
//! print or DPV.
//!
//! As the real one, it answers only a valid Maskinporten bearer token (the registry passes on
//! its caller's), and it carries the mailbox provider's certificate in `sertifikat`, so a DPI
//! record's certificate comes from here, not from Virksert. Identity numbers it does not know
//! are left out of the answer.
//!
//! | request | answer |
//! |---|---|
//! | `POST /rest/v1/personer` `{"personidentifikatorer": [..]}` | `{personer: [{personidentifikator, reservasjon, status, varslingsstatus, kontaktinformasjon, digital_post, sertifikat, spraak}]}` |
//! | `GET /rest/v1/printSertifikat` | `{postkasseleverandoerAdresse, x509Sertifikat}` |

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::fixture::{Citizen, Fixture, KrrStatus};
use crate::registry::TokenVerifier;

/// The path of the person lookup.
pub const KRR_PERSONER_PATH: &str = "/rest/v1/personer";
/// The path of the print provider's certificate.
pub const PRINT_CERTIFICATE_PATH: &str = "/rest/v1/printSertifikat";

struct KrrState {
    fixture: Arc<Fixture>,
    /// Business certificates, PEM, by organisation number.
    certificates: HashMap<String, String>,
    verifier: Arc<dyn TokenVerifier>,
}

pub(super) fn router(
    fixture: Arc<Fixture>,
    certificates: HashMap<String, String>,
    verifier: Arc<dyn TokenVerifier>,
) -> Router {
    let state = Arc::new(KrrState {
        fixture,
        certificates,
        verifier,
    });
    Router::new()
        .route(KRR_PERSONER_PATH, post(persons))
        .route(PRINT_CERTIFICATE_PATH, get(print_certificate))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

async fn authenticate(
    State(state): State<Arc<KrrState>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let verified = token
        .ok_or_else(|| "a Maskinporten bearer token is required".to_owned())
        .and_then(|token| state.verifier.verify(token.trim()));
    match verified {
        Ok(_) => next.run(request).await,
        Err(reason) => super::error(StatusCode::UNAUTHORIZED, reason),
    }
}

#[derive(Deserialize)]
struct PersonsRequest {
    personidentifikatorer: Vec<String>,
}

async fn persons(
    State(state): State<Arc<KrrState>>,
    body: Result<Json<PersonsRequest>, JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return super::error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let persons: Vec<Value> = request
        .personidentifikatorer
        .iter()
        .filter_map(|id| state.fixture.citizen(id))
        .map(|citizen| state.person(citizen))
        .collect();
    Json(json!({ "personer": persons })).into_response()
}

impl KrrState {
    fn person(&self, citizen: &Citizen) -> Value {
        let krr = &citizen.krr;
        let status = match krr.status {
            KrrStatus::Aktiv => "AKTIV",
            KrrStatus::Slettet => "SLETTET",
            KrrStatus::IkkeRegistrert => "IKKE_REGISTRERT",
        };
        let contactable =
            krr.status == KrrStatus::Aktiv && (krr.email.is_some() || krr.mobile.is_some());
        json!({
            "personidentifikator": citizen.id,
            "reservasjon": if krr.reserved { "JA" } else { "NEI" },
            "status": status,
            "varslingsstatus": if contactable { "KAN_VARSLES" } else { "KAN_IKKE_VARSLES" },
            "kontaktinformasjon": {
                "epostadresse": krr.email,
                "mobiltelefonnummer": krr.mobile,
            },
            "digital_post": krr.mailbox.as_ref().map(|mailbox| json!({
                "postkasseadresse": mailbox.address,
                "postkasseleverandoeradresse": mailbox.provider,
            })),
            "sertifikat": krr.mailbox.as_ref().and_then(|mailbox| self.certificates.get(&mailbox.provider)),
            "spraak": "nb",
        })
    }
}

async fn print_certificate(State(state): State<Arc<KrrState>>) -> Response {
    let provider = &state.fixture.print_provider;
    Json(json!({
        "postkasseleverandoerAdresse": provider,
        "x509Sertifikat": state.certificates.get(provider),
    }))
    .into_response()
}
