//! The registry's answer, with the real registry's field names.
//!
//! Every field the registry may leave out is optional or defaults, and unknown fields are
//! ignored, as the Java integration point's model does: the registry adds fields for new
//! channels, and an integration point must keep reading answers written for newer ones.

use serde::{Deserialize, Serialize};

/// What `identifier/{id}` (and `info/{id}`, without records) answers.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentifierResource {
    /// Who the identifier is.
    pub info_record: Option<InfoRecord>,
    /// How it can be reached, one record per channel and process.
    #[serde(default)]
    pub service_records: Vec<ServiceRecord>,
}

/// An organisation's or a person's names and address.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoRecord {
    /// The identifier looked up.
    pub identifier: Option<String>,
    /// The organisation's (or person's) name.
    pub organization_name: Option<String>,
    /// The organisation number.
    pub organization_number: Option<String>,
    /// The health sector's HER id (DPH).
    pub her_id: Option<i64>,
    /// The parent's HER id (DPH).
    pub parent_her_id: Option<i64>,
    /// The parent organisation's name (DPH).
    pub parent_organization_name: Option<String>,
    /// The kind of entity (`ORGL`, `KOMM`, `citizen`, ...).
    pub entity_type: Option<EntityType>,
    /// The postal address from the Brønnøysund registers.
    pub postadresse: Option<Postadresse>,
}

/// An entity's kind.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct EntityType {
    /// `ORGL`, `KOMM`, `citizen`, ...
    pub name: Option<String>,
    /// A short form, where given.
    pub acronym: Option<String>,
}

/// A postal address as the Brønnøysund registers give it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Postadresse {
    /// Street address.
    pub adresse: Option<String>,
    /// Postcode.
    pub postnummer: Option<String>,
    /// Post town.
    pub poststed: Option<String>,
    /// Country.
    pub land: Option<String>,
}

/// How a receiver is reached on one channel for one process.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    /// The receiver's organisation number.
    pub organisation_number: Option<String>,
    /// The receiver's certificate (DPO, DPE, DPF, DPI, DPH), PEM, possibly without its armour;
    /// [`ServiceRecord::certificate_pem`] gives it armoured.
    pub pem_certificate: Option<String>,
    /// The process URN.
    #[serde(default)]
    pub process: String,
    /// The document types accepted in the process.
    #[serde(default)]
    pub document_types: Vec<String>,
    /// The channel and its addressing.
    #[serde(default)]
    pub service: Service,
    /// DPI: the mailbox provider's organisation number.
    pub orgnr_postkasse: Option<String>,
    /// DPI: the citizen's mailbox address.
    pub postkasse_adresse: Option<String>,
    /// DPI: the e-mail address for notices.
    pub epost_adresse: Option<String>,
    /// DPI: the mobile number for notices.
    pub mobilnummer: Option<String>,
    /// DPI: whether the citizen may be notified.
    #[serde(default)]
    pub kan_varsles: bool,
    /// DPI: whether the post goes on paper.
    #[serde(default)]
    pub fysisk_post: bool,
    /// DPI print: where the letter goes.
    pub post_address: Option<PostAddress>,
    /// DPI print: where it returns if undeliverable.
    pub return_address: Option<PostAddress>,
    /// DPI: the citizen's language.
    pub spraak: Option<String>,
    /// DPH: the receiver's HER id.
    pub her_id: Option<String>,
    /// DPH: the patient.
    pub patient: Option<Patient>,
}

impl ServiceRecord {
    /// The channel, `DPO`, `DPV`, `DPI`, `DPF`, `DPE` or `DPH` (kept as text, so a channel the
    /// registry adds later still reads).
    pub fn service_identifier(&self) -> &str {
        &self.service.identifier
    }

    /// The receiver's certificate as PEM, with BEGIN and END lines added if the registry left
    /// them out.
    pub fn certificate_pem(&self) -> Option<String> {
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let pem = self.pem_certificate.as_deref()?.trim();
        if pem.is_empty() {
            None
        } else if pem.contains(BEGIN) {
            Some(format!("{pem}\n"))
        } else {
            Some(format!("{BEGIN}\n{pem}\n{END}\n"))
        }
    }
}

/// The channel of a record and how to address it there.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `DPO`, `DPV`, `DPI`, `DPF`, `DPE`, `DPH`.
    #[serde(default)]
    pub identifier: String,
    /// The endpoint; for DPE the queue suffix (`innsyn`, `data`, `meeting`).
    pub endpoint_url: Option<String>,
    /// Altinn 2 service code (v2/v3 DPV).
    pub service_code: Option<String>,
    /// Altinn 2 service edition code (v2/v3 DPV).
    pub service_edition_code: Option<String>,
    /// DPF: the security level SvarUt requires.
    pub security_level: Option<i32>,
    /// Altinn 3 resource (v4 DPV).
    pub resource: Option<String>,
}

/// A postal address of a DPI record.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostAddress {
    /// Addressee.
    pub name: Option<String>,
    /// Street address.
    pub street: Option<String>,
    /// Postcode.
    pub postal_code: Option<String>,
    /// Post town.
    pub postal_area: Option<String>,
    /// Country.
    pub country: Option<String>,
}

/// The patient of a DPH record.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    /// National identity number.
    pub fnr: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_registry_answer_ignoring_unknown_fields() {
        let json = r#"{
          "infoRecord": {"identifier": "910075918", "organizationName": "Testkommune",
                         "entityType": {"name": "KOMM"}, "herId": 12,
                         "postadresse": {"adresse": "Gate 1", "postnummer": "0001",
                                         "poststed": "Oslo", "land": "Norge"},
                         "somethingNew": true},
          "serviceRecords": [{
            "organisationNumber": "910075918", "pemCertificate": "MIIB",
            "process": "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0",
            "documentTypes": ["urn:no:difi:arkivmelding:xsd::arkivmelding"],
            "service": {"identifier": "DPV", "endpointUrl": "https://x", "securityLevel": 3,
                        "resource": "eformidling-meldingsteneste-test", "serviceCode": null},
            "kanVarsles": true,
            "postAddress": {"name": "A", "street": "B", "postalCode": "1", "postalArea": "C",
                            "country": "NO"}
          }]}"#;
        let resource: IdentifierResource = serde_json::from_str(json).unwrap();
        let info = resource.info_record.as_ref().unwrap();
        assert_eq!(info.organization_name.as_deref(), Some("Testkommune"));
        assert_eq!(
            info.entity_type.as_ref().unwrap().name.as_deref(),
            Some("KOMM")
        );
        assert_eq!(
            info.postadresse.as_ref().unwrap().poststed.as_deref(),
            Some("Oslo")
        );
        let record = &resource.service_records[0];
        assert_eq!(record.service_identifier(), "DPV");
        assert_eq!(record.service.security_level, Some(3));
        assert_eq!(
            record.service.resource.as_deref(),
            Some("eformidling-meldingsteneste-test")
        );
        assert!(record.kan_varsles && !record.fysisk_post);
        assert_eq!(
            record.post_address.as_ref().unwrap().postal_area.as_deref(),
            Some("C")
        );
        assert_eq!(
            record.certificate_pem().unwrap(),
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        );
    }
}
