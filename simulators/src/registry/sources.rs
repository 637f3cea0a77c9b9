//! The registry's client of the registers ([`crate::registers`]): what Brreg, the population
//! register, ELMA, the FIKS address service, Virksert and KRR say about an identifier, read over
//! HTTP into the fixture's own types so that [`super::records`] derives records from them as
//! from any other source of the same facts.
//!
//! A register that is unreachable or answers an error fails the lookup ([`SourceError`]), which
//! the registry answers 503: a record derived from a partial answer would route a message to the
//! wrong channel.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::fixture::{Address, Citizen, Krr, KrrStatus, Mailbox, Organisation, SvarUt};
use crate::processes::{self, Kind};
use crate::registers::{
    ENHETER_PATH, INTEGRATION_ID, INTEGRATION_PASSWORD, KRR_PERSONER_PATH, MOTTAKERSYSTEM_PATH,
    PARTICIPANT_SCHEME, PERSONER_PATH, PRINT_CERTIFICATE_PATH, RegisterUrls, UNDERENHETER_PATH,
    VIRKSERT_PATH,
};

/// How long one register may take; they are on loopback.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A register failed to answer.
#[derive(Debug)]
pub(super) struct SourceError(pub String);

/// KRR's print provider.
pub(super) struct PrintProvider {
    pub orgnr: String,
    pub certificate: Option<String>,
}

/// The registers, by their base URLs.
pub(super) struct Sources {
    http: reqwest::Client,
    urls: RegisterUrls,
}

impl Sources {
    pub(super) fn new(urls: RegisterUrls) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(TIMEOUT).build()?;
        Ok(Self { http, urls })
    }

    /// `GET url`, its JSON when 200, none when 404.
    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        register: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Option<T>, SourceError> {
        let failed = |error: String| SourceError(format!("{register}: {error}"));
        let response = request
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            status => return Err(failed(format!("answered {status}"))),
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|error| failed(error.to_string()))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| failed(format!("unexpected answer: {error}")))
    }

    /// The organisation numbered `orgnr` as Brreg, ELMA and the FIKS address service know it;
    /// none when Brreg knows no such unit or sub-unit.
    pub(super) async fn organisation(
        &self,
        orgnr: &str,
    ) -> Result<Option<Organisation>, SourceError> {
        let Some(unit) = self.unit(orgnr).await? else {
            return Ok(None);
        };
        let (registered, svarut) = tokio::try_join!(self.elma(orgnr), self.svarut(orgnr))?;
        let (einnsyn, elma) = registered.into_iter().partition(|urn| {
            processes::find(urn).is_some_and(|process| matches!(process.kind, Kind::Einnsyn(_)))
        });
        Ok(Some(Organisation {
            orgnr: unit.organisasjonsnummer,
            name: unit.navn,
            entity_type: unit.organisasjonsform.kode,
            address: unit.postadresse.into_address(),
            elma,
            svarut,
            einnsyn,
            // Accounts are SvarUt's and Altinn's business, not the registers'.
            svarut_account: None,
            altinn2: None,
        }))
    }

    /// Brreg's main unit, else its sub-unit, as the real registry asks.
    async fn unit(&self, orgnr: &str) -> Result<Option<BrregUnit>, SourceError> {
        for path in [ENHETER_PATH, UNDERENHETER_PATH] {
            let url = format!("{}{path}/{orgnr}", self.urls.brreg);
            let request = self.http.get(url).header(
                "Accept",
                "application/vnd.brreg.enhetsregisteret.enhet.v2+json",
            );
            if let Some(unit) = self.get("Brreg", request).await? {
                return Ok(Some(unit));
            }
        }
        Ok(None)
    }

    /// The process URNs `orgnr` registered in ELMA.
    async fn elma(&self, orgnr: &str) -> Result<Vec<String>, SourceError> {
        let url = format!("{}/{PARTICIPANT_SCHEME}{orgnr}", self.urls.elma);
        let group: Option<ServiceGroup> = self.get("ELMA", self.http.get(url)).await?;
        let mut processes: Vec<String> = group
            .map(|group| {
                group
                    .service_metadata_references
                    .into_iter()
                    .map(|reference| reference.process_identifier)
                    .collect()
            })
            .unwrap_or_default();
        processes.dedup();
        Ok(processes)
    }

    /// SvarUt's receiving system for `orgnr`: offered when one takes every kind of shipment,
    /// at the highest level of those.
    async fn svarut(&self, orgnr: &str) -> Result<Option<SvarUt>, SourceError> {
        let request = self
            .http
            .get(format!("{}{MOTTAKERSYSTEM_PATH}", self.urls.fiks_address))
            .query(&[("organisasjonsnummer", orgnr)])
            .header("IntegrasjonId", INTEGRATION_ID)
            .header("IntegrasjonPassord", INTEGRATION_PASSWORD);
        let systems: Vec<ReceivingSystem> = self
            .get("FIKS address service", request)
            .await?
            .unwrap_or_default();
        Ok(systems
            .iter()
            .filter(|system| system.forsendelse_type.is_none())
            .map(|system| system.niva)
            .max()
            .map(|security_level| SvarUt { security_level }))
    }

    /// The business certificate of `orgnr` in Virksert, PEM.
    pub(super) async fn certificate(&self, orgnr: &str) -> Result<Option<String>, SourceError> {
        let url = format!("{}{VIRKSERT_PATH}/0192:{orgnr}", self.urls.virksert);
        let failed = |error: String| SourceError(format!("Virksert: {error}"));
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        match response.status() {
            StatusCode::OK => response
                .text()
                .await
                .map(Some)
                .map_err(|error| failed(error.to_string())),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(failed(format!("answered {status}"))),
        }
    }

    /// The person `id` in the population register (name and postal address), without KRR's
    /// entry; none when unknown.
    pub(super) async fn person(&self, id: &str) -> Result<Option<Citizen>, SourceError> {
        let url = format!("{}{PERSONER_PATH}/{id}", self.urls.brreg);
        let person: Option<Person> = self.get("population register", self.http.get(url)).await?;
        Ok(person.map(|person| Citizen {
            id: person.foedsels_eller_d_nummer,
            name: [person.navn.fornavn, person.navn.etternavn]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            address: person.postadresse.into_address(),
            // What KRR says of a person it was not asked about, or does not know.
            krr: Krr {
                status: KrrStatus::IkkeRegistrert,
                reserved: false,
                mailbox: None,
                email: None,
                mobile: None,
            },
        }))
    }

    /// KRR's entry of `id`, asked with the caller's `bearer` token as the real registry does,
    /// and the mailbox provider's certificate KRR gives with it.
    pub(super) async fn krr(
        &self,
        id: &str,
        bearer: &str,
    ) -> Result<Option<(Krr, Option<String>)>, SourceError> {
        let request = self
            .http
            .post(format!("{}{KRR_PERSONER_PATH}", self.urls.krr))
            .bearer_auth(bearer)
            .header("Content-Type", "application/json")
            .body(serde_json::json!({ "personidentifikatorer": [id] }).to_string());
        let answer: Option<KrrAnswer> = self.get("KRR", request).await?;
        let person = answer
            .into_iter()
            .flat_map(|answer| answer.personer)
            .find(|person| person.personidentifikator == id);
        Ok(person.map(|person| {
            let status = match person.status.as_str() {
                "AKTIV" => KrrStatus::Aktiv,
                "SLETTET" => KrrStatus::Slettet,
                _ => KrrStatus::IkkeRegistrert,
            };
            let contact = person.kontaktinformasjon.unwrap_or_default();
            let krr = Krr {
                status,
                reserved: person.reservasjon == "JA",
                mailbox: person.digital_post.map(|mailbox| Mailbox {
                    address: mailbox.postkasseadresse,
                    provider: mailbox.postkasseleverandoeradresse,
                }),
                email: contact.epostadresse,
                mobile: contact.mobiltelefonnummer,
            };
            (krr, person.sertifikat)
        }))
    }

    /// KRR's print provider and its certificate.
    pub(super) async fn print_provider(&self, bearer: &str) -> Result<PrintProvider, SourceError> {
        let request = self
            .http
            .get(format!("{}{PRINT_CERTIFICATE_PATH}", self.urls.krr))
            .bearer_auth(bearer);
        let answer: PrintCertificate = self
            .get("KRR", request)
            .await?
            .ok_or_else(|| SourceError("KRR: no print provider".to_owned()))?;
        Ok(PrintProvider {
            orgnr: answer.postkasseleverandoer_adresse,
            certificate: answer.x509_sertifikat,
        })
    }
}

#[derive(Deserialize)]
struct BrregUnit {
    organisasjonsnummer: String,
    navn: String,
    organisasjonsform: BrregForm,
    postadresse: BrregAddress,
}

#[derive(Deserialize)]
struct BrregForm {
    kode: String,
}

#[derive(Deserialize)]
struct BrregAddress {
    #[serde(default)]
    adresse: Vec<String>,
    postnummer: String,
    poststed: String,
    land: String,
}

impl BrregAddress {
    fn into_address(self) -> Address {
        Address {
            street: self.adresse.join(", "),
            postcode: self.postnummer,
            town: self.poststed,
            country: self.land,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceGroup {
    service_metadata_references: Vec<ServiceReference>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceReference {
    process_identifier: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceivingSystem {
    niva: i32,
    forsendelse_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Person {
    foedsels_eller_d_nummer: String,
    navn: PersonName,
    postadresse: BrregAddress,
}

#[derive(Deserialize)]
struct PersonName {
    fornavn: String,
    etternavn: String,
}

#[derive(Deserialize)]
struct KrrAnswer {
    personer: Vec<KrrPerson>,
}

#[derive(Deserialize)]
struct KrrPerson {
    personidentifikator: String,
    reservasjon: String,
    status: String,
    kontaktinformasjon: Option<KrrContact>,
    digital_post: Option<KrrMailbox>,
    sertifikat: Option<String>,
}

#[derive(Deserialize, Default)]
struct KrrContact {
    epostadresse: Option<String>,
    mobiltelefonnummer: Option<String>,
}

#[derive(Deserialize)]
struct KrrMailbox {
    postkasseadresse: String,
    postkasseleverandoeradresse: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrintCertificate {
    postkasseleverandoer_adresse: String,
    x509_sertifikat: Option<String>,
}
