//! Deriving the registry's records from the registers, as the real registry does (reference
//! §4.4): a record is never stored, it follows from what ELMA, the FIKS address service, KRR,
//! Brreg and Virksert answered ([`super::sources`]), so a fixture change moves a receiver to
//! another channel the way a registration change moves it in production.
//!
//! - Arkivmelding goes by DPO when the process is registered in ELMA, else by DPF when SvarUt
//!   has a receiving system at the security level asked for, else by DPV. A DPF record carries
//!   SvarUt's certificate, not the receiver's: senders encrypt every document to SvarUt.
//! - eInnsyn goes by DPE, and only when registered; the queue suffix is the endpoint.
//! - A citizen's information message goes by DPI to an active mailbox, else by DPV; a vedtak
//!   goes on paper (DPI print) when the citizen is reserved or cannot be notified, unless the
//!   caller turned print lookups off, when it goes by DPV.

use serde_json::{Value, json};

use super::sources::PrintProvider;
use crate::fixture::{Address, Citizen, Organisation};
use crate::processes::{DIGITAL_DPV, DIGITALPOST_INFO, Kind, PROCESSES, Process};

/// The Altinn 2 service of DPO (broker service code and edition).
const DPO_SERVICE: (&str, &str) = ("4192", "270815");
/// The Altinn 2 service of DPV (correspondence service code and edition).
const DPV_SERVICE: (&str, &str) = ("4255", "10");
/// The Altinn 3 resource of DPV in the test environment.
const DPV_RESOURCE: &str = "eformidling-meldingsteneste-test";

/// What a lookup may add beyond the identifier and the process.
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    /// The security level the message requires.
    pub security_level: Option<i32>,
    /// Whether a citizen may be looked up for print (`print=false` turns it off).
    pub print: bool,
}

/// Who an identifier is.
pub(super) enum Entity {
    Organisation(Organisation),
    Citizen(Citizen),
}

/// What the registers said about one identifier, beyond who it is.
pub(super) struct Facts {
    /// An organisation's business certificate from Virksert, or the certificate of a citizen's
    /// mailbox provider from KRR, PEM.
    pub certificate: Option<String>,
    /// SvarUt's certificate, PEM, which DPF records carry (organisations only).
    pub svarut_certificate: Option<String>,
    /// KRR's print provider (citizens only).
    pub print: Option<PrintProvider>,
    /// The caller's organisation in Brreg, the return address of print.
    pub sender: Option<Organisation>,
}

/// The `infoRecord` of `entity`, from Brreg or the population register.
pub(super) fn info_record(entity: &Entity) -> Value {
    match entity {
        Entity::Organisation(organisation) => json!({
            "identifier": organisation.orgnr,
            "organizationName": organisation.name,
            "organizationNumber": organisation.orgnr,
            "entityType": { "name": organisation.entity_type, "acronym": organisation.entity_type },
            "postadresse": postadresse(&organisation.address),
        }),
        Entity::Citizen(citizen) => json!({
            "identifier": citizen.id,
            "organizationName": citizen.name,
            "entityType": { "name": "citizen" },
            "postadresse": postadresse(&citizen.address),
        }),
    }
}

impl Facts {
    /// The records of `entity` for `process`, or for every process when none is given.
    pub(super) fn service_records(
        &self,
        entity: &Entity,
        process: Option<&Process>,
        options: Options,
    ) -> Vec<Value> {
        let wanted = |p: &&Process| process.is_none_or(|wanted| wanted.urn == p.urn);
        PROCESSES
            .iter()
            .filter(wanted)
            .filter_map(|p| match entity {
                Entity::Organisation(organisation) => {
                    self.organisation_record(organisation, p, options)
                }
                Entity::Citizen(citizen) => self.citizen_record(citizen, p, options),
            })
            .collect()
    }

    fn organisation_record(
        &self,
        organisation: &Organisation,
        process: &Process,
        options: Options,
    ) -> Option<Value> {
        let registered = |list: &[String]| list.iter().any(|urn| urn == process.urn);
        let certificate = self.certificate.as_ref();
        let record = |service: Value, certificate: Option<&String>| {
            json!({
                "organisationNumber": organisation.orgnr,
                "pemCertificate": certificate,
                "process": process.urn,
                "documentTypes": process.document_types,
                "service": service,
            })
        };
        match process.kind {
            Kind::Arkivmelding if registered(&organisation.elma) => Some(record(
                altinn_service("DPO", DPO_SERVICE, None),
                certificate,
            )),
            Kind::Arkivmelding => match organisation.svarut {
                Some(svarut)
                    if options
                        .security_level
                        .is_none_or(|level| level <= svarut.security_level) =>
                {
                    let service =
                        json!({ "identifier": "DPF", "securityLevel": svarut.security_level });
                    Some(record(service, self.svarut_certificate.as_ref()))
                }
                _ => Some(record(
                    altinn_service("DPV", DPV_SERVICE, Some(DPV_RESOURCE)),
                    None,
                )),
            },
            Kind::Einnsyn(queue_suffix) if registered(&organisation.einnsyn) => Some(record(
                json!({ "identifier": "DPE", "endpointUrl": queue_suffix }),
                certificate,
            )),
            Kind::Einnsyn(_) | Kind::Digitalpost => None,
        }
    }

    fn citizen_record(
        &self,
        citizen: &Citizen,
        process: &Process,
        options: Options,
    ) -> Option<Value> {
        if process.kind != Kind::Digitalpost {
            return None;
        }
        let krr = &citizen.krr;
        let dpv = || {
            json!({
                "process": process.urn,
                "documentTypes": [DIGITAL_DPV],
                "service": altinn_service("DPV", DPV_SERVICE, Some(DPV_RESOURCE)),
            })
        };
        let wants_print = process.urn != DIGITALPOST_INFO && (krr.reserved || !krr.notifiable());
        if wants_print {
            if !options.print {
                return Some(dpv());
            }
            let print = self.print.as_ref()?;
            return Some(json!({
                "pemCertificate": print.certificate,
                "process": process.urn,
                "documentTypes": process.document_types,
                "service": { "identifier": "DPI", "securityLevel": options.security_level },
                "orgnrPostkasse": print.orgnr,
                "kanVarsles": false,
                "fysiskPost": true,
                "postAddress": post_address(&citizen.name, &citizen.address),
                "returnAddress": self.sender.as_ref()
                    .map(|sender| post_address(&sender.name, &sender.address)),
            }));
        }
        match &krr.mailbox {
            Some(mailbox) if krr.has_active_mailbox() => Some(json!({
                "pemCertificate": self.certificate,
                "process": process.urn,
                "documentTypes": process.document_types,
                "service": { "identifier": "DPI", "securityLevel": options.security_level },
                "orgnrPostkasse": mailbox.provider,
                "postkasseAdresse": mailbox.address,
                "epostAdresse": krr.email,
                "mobilnummer": krr.mobile,
                "kanVarsles": krr.notifiable(),
                "fysiskPost": false,
                "spraak": "NO",
            })),
            _ => Some(dpv()),
        }
    }
}

fn altinn_service(
    identifier: &str,
    (code, edition): (&str, &str),
    resource: Option<&str>,
) -> Value {
    json!({
        "identifier": identifier,
        "serviceCode": code,
        "serviceEditionCode": edition,
        "resource": resource,
    })
}

fn postadresse(address: &Address) -> Value {
    json!({
        "adresse": address.street,
        "postnummer": address.postcode,
        "poststed": address.town,
        "land": address.country,
    })
}

fn post_address(name: &str, address: &Address) -> Value {
    json!({
        "name": name,
        "street": address.street,
        "postalCode": address.postcode,
        "postalArea": address.town,
        "country": address.country,
    })
}
