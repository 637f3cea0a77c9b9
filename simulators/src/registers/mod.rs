//! The registers behind the ServiceRegistry, each its own HTTP service: ELMA (the PEPPOL SMP),
//! KRR, Virksert, Brreg (with the population register's person lookup) and the FIKS address
//! service (reference §4.4).
//!
//! The real registry derives every record from these registers over the network, so a stand-in
//! that read one fixture file directly could not show what happens when one of them is slow,
//! down or answers something unexpected. Here each is fed by the fixture, answers in the shape of
//! the real one, can inject faults and records what it was asked, and the ServiceRegistry only
//! knows their base URLs. Virksert issues each organisation's business certificate from the test
//! PKI at start and writes the keystores the local integration points load, so the certificate a
//! keystore holds is the one `/virksert` answers.

mod brreg;
mod elma;
mod fiks_address;
mod krr;
mod virksert;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use openssl::x509::X509;

use crate::fixture::Fixture;
use crate::pki::TestPki;
use crate::registry::TokenVerifier;
use crate::serving::{Server, lock, record};

pub use brreg::{ENHETER_PATH, PERSONER_PATH, UNDERENHETER_PATH};
pub use elma::PARTICIPANT_SCHEME;
pub use fiks_address::{INTEGRATION_ID, INTEGRATION_PASSWORD, MOTTAKERSYSTEM_PATH};
pub use krr::{KRR_PERSONER_PATH, PRINT_CERTIFICATE_PATH};
pub use virksert::VIRKSERT_PATH;

/// How many requests each register keeps for inspection.
const KEPT: usize = 1000;

/// The ports of the registers on 127.0.0.1; 0 lets the system pick a free one.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterPorts {
    /// ELMA, the PEPPOL SMP.
    pub elma: u16,
    /// KRR, the contact and reservation register.
    pub krr: u16,
    /// Virksert, the business certificate register.
    pub virksert: u16,
    /// Brreg's Enhetsregisteret and the population register's person lookup.
    pub brreg: u16,
    /// The FIKS address service (SvarUt receiving systems).
    pub fiks_address: u16,
}

/// Where the registers answer: the base URLs the ServiceRegistry is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterUrls {
    /// ELMA, the PEPPOL SMP.
    pub elma: String,
    /// KRR.
    pub krr: String,
    /// Virksert.
    pub virksert: String,
    /// Brreg and the population register.
    pub brreg: String,
    /// The FIKS address service.
    pub fiks_address: String,
}

/// How the registers are set up.
#[derive(Clone)]
pub struct RegistersConfig {
    /// Their ports.
    pub ports: RegisterPorts,
    /// What they know.
    pub fixture: Fixture,
    /// Checks the Maskinporten tokens KRR requires (the caller's, passed on by the registry).
    pub verifier: Arc<dyn TokenVerifier>,
    /// The password of the keystores Virksert writes for the fixture's organisations.
    pub keystore_password: String,
}

/// One running register. Dropping it stops its server.
pub struct RegisterService {
    server: Server,
    seen: Arc<Mutex<VecDeque<String>>>,
    fail_next: Arc<AtomicU64>,
}

impl RegisterService {
    async fn start(name: &'static str, port: u16, app: Router) -> io::Result<Self> {
        let seen = Arc::new(Mutex::new(VecDeque::new()));
        let fail_next = Arc::new(AtomicU64::new(0));
        let app = app.layer(middleware::from_fn_with_state(seen.clone(), remember));
        let server = Server::start(name, port, app, fail_next.clone()).await?;
        Ok(Self {
            server,
            seen,
            fail_next,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The run-time fault rules of this register; the same rules its `/_faults` endpoint sets.
    pub fn faults(&self) -> &crate::faults::Faults {
        self.server.faults()
    }

    /// Answers the next `requests` requests with 503.
    pub fn fail_next(&self, requests: u64) {
        self.fail_next.store(requests, Ordering::SeqCst);
    }

    /// The requests it answered (the latest ones, up to a bound), as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.seen).iter().cloned().collect()
    }

    /// Stops accepting connections and waits for requests in flight.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

async fn remember(
    State(seen): State<Arc<Mutex<VecDeque<String>>>>,
    request: Request,
    next: Next,
) -> Response {
    let line = format!("{} {}", request.method(), request.uri());
    record(&seen, KEPT, line);
    next.run(request).await
}

/// The five registers, running.
pub struct Registers {
    /// ELMA, the PEPPOL SMP.
    pub elma: RegisterService,
    /// KRR.
    pub krr: RegisterService,
    /// Virksert.
    pub virksert: RegisterService,
    /// Brreg and the population register.
    pub brreg: RegisterService,
    /// The FIKS address service.
    pub fiks_address: RegisterService,
    certificates: HashMap<String, X509>,
}

impl Registers {
    /// Issues the fixture's business certificates from `pki`, binds the configured ports and
    /// serves until stopped. Must be called inside a Tokio runtime.
    pub async fn start(config: RegistersConfig, pki: &TestPki) -> anyhow::Result<Self> {
        let certificates = virksert::issue(&config.fixture, pki, &config.keystore_password)?;
        Self::serve(config, certificates).await
    }

    /// Issues the fixture's business certificates from `pki`, for [`Registers::serve`]; apart
    /// so that a caller can issue its own next to them.
    pub(crate) fn issue(
        config: &RegistersConfig,
        pki: &TestPki,
    ) -> anyhow::Result<HashMap<String, X509>> {
        virksert::issue(&config.fixture, pki, &config.keystore_password)
    }

    /// Serves the registers with the business certificates issued for them.
    pub(crate) async fn serve(
        config: RegistersConfig,
        certificates: HashMap<String, X509>,
    ) -> anyhow::Result<Self> {
        let pems = certificates
            .iter()
            .map(|(orgnr, certificate)| {
                Ok((orgnr.clone(), String::from_utf8(certificate.to_pem()?)?))
            })
            .collect::<anyhow::Result<HashMap<_, _>>>()?;
        let fixture = Arc::new(config.fixture);
        let ports = config.ports;
        let start = |name: &'static str, port: u16, app: Router| async move {
            RegisterService::start(name, port, app)
                .await
                .with_context(|| format!("cannot start {name} on port {port}"))
        };
        Ok(Self {
            elma: start("ELMA", ports.elma, elma::router(fixture.clone())).await?,
            krr: start(
                "KRR",
                ports.krr,
                krr::router(fixture.clone(), pems.clone(), config.verifier),
            )
            .await?,
            virksert: start("Virksert", ports.virksert, virksert::router(pems)).await?,
            brreg: start("Brreg", ports.brreg, brreg::router(fixture.clone())).await?,
            fiks_address: start(
                "FIKS address service",
                ports.fiks_address,
                fiks_address::router(fixture),
            )
            .await?,
            certificates,
        })
    }

    /// Their base URLs.
    pub fn urls(&self) -> RegisterUrls {
        RegisterUrls {
            elma: self.elma.base_url(),
            krr: self.krr.base_url(),
            virksert: self.virksert.base_url(),
            brreg: self.brreg.base_url(),
            fiks_address: self.fiks_address.base_url(),
        }
    }

    /// The business certificate Virksert issued to `orgnr` at start.
    pub fn certificate(&self, orgnr: &str) -> Option<&X509> {
        self.certificates.get(orgnr)
    }

    /// Stops all five.
    pub async fn shutdown(self) {
        self.elma.shutdown().await;
        self.krr.shutdown().await;
        self.virksert.shutdown().await;
        self.brreg.shutdown().await;
        self.fiks_address.shutdown().await;
    }
}

/// A JSON error body `{"status", "error", "message"}`, as the registers' Spring services answer.
fn error(status: axum::http::StatusCode, message: impl Into<String>) -> Response {
    use axum::response::IntoResponse as _;
    let body = serde_json::json!({
        "status": status.as_u16(),
        "error": status.canonical_reason().unwrap_or_default(),
        "message": message.into(),
    });
    (status, axum::Json(body)).into_response()
}
