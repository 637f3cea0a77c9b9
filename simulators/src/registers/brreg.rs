//! Brreg's Enhetsregisteret, and the population register's person lookup next to it: the names,
//! organisation forms and postal addresses the registry's `infoRecord` is made of.
//!
//! The registry asks `enheter` and, for a number that is no main unit, `underenheter`, as the
//! real one does; the fixture has no sub-units, so that lookup always answers 404. The person
//! lookup stands in for the population register (FREG), which gives print records their postal
//! address; it shares this service because the local environment names five register ports.
//!
//! | request | answer |
//! |---|---|
//! | `GET /enhetsregisteret/api/enheter/{orgnr}` | `{organisasjonsnummer, navn, organisasjonsform: {kode}, postadresse: {adresse: [..], postnummer, poststed, land}}`; `404` |
//! | `GET /enhetsregisteret/api/underenheter/{orgnr}` | `404` |
//! | `GET /folkeregisteret/api/v1/personer/{id}` | `{foedselsEllerDNummer, navn: {fornavn, etternavn}, postadresse: {..}}`; `404` |

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::fixture::{Address, Fixture};

/// The path of a main unit, `{orgnr}` appended.
pub const ENHETER_PATH: &str = "/enhetsregisteret/api/enheter";
/// The path of a sub-unit, `{orgnr}` appended.
pub const UNDERENHETER_PATH: &str = "/enhetsregisteret/api/underenheter";
/// The path of a person, `{id}` appended.
pub const PERSONER_PATH: &str = "/folkeregisteret/api/v1/personer";

pub(super) fn router(fixture: Arc<Fixture>) -> Router {
    Router::new()
        .route(&format!("{ENHETER_PATH}/{{orgnr}}"), get(unit))
        .route(&format!("{UNDERENHETER_PATH}/{{orgnr}}"), get(sub_unit))
        .route(&format!("{PERSONER_PATH}/{{id}}"), get(person))
        .with_state(fixture)
}

async fn unit(State(fixture): State<Arc<Fixture>>, Path(orgnr): Path<String>) -> Response {
    let Some(organisation) = fixture.organisation(&orgnr) else {
        return super::error(
            StatusCode::NOT_FOUND,
            format!("Ingen enhet med organisasjonsnummer {orgnr} ble funnet"),
        );
    };
    Json(json!({
        "organisasjonsnummer": organisation.orgnr,
        "navn": organisation.name,
        "organisasjonsform": { "kode": organisation.entity_type },
        "postadresse": address(&organisation.address),
    }))
    .into_response()
}

async fn sub_unit(Path(orgnr): Path<String>) -> Response {
    super::error(
        StatusCode::NOT_FOUND,
        format!("Ingen underenhet med organisasjonsnummer {orgnr} ble funnet"),
    )
}

async fn person(State(fixture): State<Arc<Fixture>>, Path(id): Path<String>) -> Response {
    let Some(citizen) = fixture.citizen(&id) else {
        return super::error(StatusCode::NOT_FOUND, format!("Fant ikke person {id}"));
    };
    let (first, last) = citizen
        .name
        .rsplit_once(' ')
        .unwrap_or(("", citizen.name.as_str()));
    Json(json!({
        "foedselsEllerDNummer": citizen.id,
        "navn": { "fornavn": first, "etternavn": last },
        "postadresse": address(&citizen.address),
    }))
    .into_response()
}

fn address(address: &Address) -> Value {
    json!({
        "adresse": [address.street],
        "postnummer": address.postcode,
        "poststed": address.town,
        "land": address.country,
    })
}
