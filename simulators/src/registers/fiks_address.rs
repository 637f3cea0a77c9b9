//! The FIKS address service: the SvarUt receiving systems of an organisation, from which the
//! registry offers DPF and its security level.
//!
//! Like the real one it requires the registry's integration credentials (`IntegrasjonId` and
//! `IntegrasjonPassord` headers); without them it answers 401, so a registry that forgot them
//! cannot route by DPF.
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v2/mottakersystem?organisasjonsnummer={orgnr}` | `[{mottakersystemId, organisasjonsnummer, navn, niva, forsendelseType}]` (empty: none) |

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::fixture::{Fixture, valid_orgnr};

/// The path of the receiving system lookup.
pub const MOTTAKERSYSTEM_PATH: &str = "/api/v2/mottakersystem";
/// The integration the registry authenticates as.
pub const INTEGRATION_ID: &str = "simulated-serviceregistry";
/// Its password.
pub const INTEGRATION_PASSWORD: &str = "simulated-fiks-integration";

pub(super) fn router(fixture: Arc<Fixture>) -> Router {
    Router::new()
        .route(MOTTAKERSYSTEM_PATH, get(receiving_systems))
        .with_state(fixture)
}

#[derive(Deserialize)]
struct Lookup {
    organisasjonsnummer: Option<String>,
}

async fn receiving_systems(
    State(fixture): State<Arc<Fixture>>,
    headers: HeaderMap,
    Query(lookup): Query<Lookup>,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if header("IntegrasjonId") != Some(INTEGRATION_ID)
        || header("IntegrasjonPassord") != Some(INTEGRATION_PASSWORD)
    {
        return super::error(
            StatusCode::UNAUTHORIZED,
            "IntegrasjonId and IntegrasjonPassord do not name a known integration",
        );
    }
    let Some(orgnr) = lookup
        .organisasjonsnummer
        .filter(|orgnr| valid_orgnr(orgnr))
    else {
        return super::error(
            StatusCode::BAD_REQUEST,
            "organisasjonsnummer must be a nine-digit organisation number",
        );
    };
    let systems: Vec<_> = fixture
        .organisation(&orgnr)
        .and_then(|organisation| Some((organisation, organisation.svarut?)))
        .map(|(organisation, svarut)| {
            json!({
                "mottakersystemId": format!("svarut-{orgnr}"),
                "organisasjonsnummer": orgnr,
                "navn": format!("SvarUt {}", organisation.name),
                "niva": svarut.security_level,
                "forsendelseType": null,
            })
        })
        .into_iter()
        .collect();
    Json(systems).into_response()
}
