//! Virksert, the business certificate register: each organisation's certificate, which the
//! registry puts in records and answers at `/virksert`.
//!
//! The certificates are issued here at start from the shared test PKI, with the keystores the
//! local integration points load, so what a keystore holds and what Virksert answers agree.
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v1/0192:{orgnr}` | the certificate, PEM; `404` |

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use openssl::x509::X509;

use crate::fixture::Fixture;
use crate::pki::TestPki;

/// The path of a participant's certificate, `0192:{orgnr}` appended.
pub const VIRKSERT_PATH: &str = "/api/v1";

/// Issues a business certificate to every organisation of `fixture`, side by side, as key
/// generation dominates start-up.
pub(super) fn issue(
    fixture: &Fixture,
    pki: &TestPki,
    password: &str,
) -> anyhow::Result<HashMap<String, X509>> {
    std::thread::scope(|scope| {
        let issuing: Vec<_> = fixture
            .organisations
            .iter()
            .map(|organisation| {
                scope.spawn(move || {
                    pki.issue(&organisation.orgnr, &organisation.name, -1, 365, password)
                        .map(|issued| (organisation.orgnr.clone(), issued.certificate))
                        .with_context(|| {
                            format!("issuing a certificate for {}", organisation.orgnr)
                        })
                })
            })
            .collect();
        issuing
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

pub(super) fn router(pems: HashMap<String, String>) -> Router {
    Router::new()
        .route(
            &format!("{VIRKSERT_PATH}/{{participant}}"),
            get(certificate),
        )
        .with_state(Arc::new(pems))
}

async fn certificate(
    State(pems): State<Arc<HashMap<String, String>>>,
    Path(participant): Path<String>,
) -> Response {
    let pem = participant
        .strip_prefix("0192:")
        .and_then(|orgnr| pems.get(orgnr));
    match pem {
        Some(pem) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            pem.clone(),
        )
            .into_response(),
        None => super::error(
            StatusCode::NOT_FOUND,
            format!("no certificate for {participant}"),
        ),
    }
}
