//! The fixture: the organisations and citizens every simulator serves, and what the registers
//! behind the ServiceRegistry (ELMA, KRR, Brreg, the FIKS address service) know about them.
//!
//! One file feeds all services so that they agree: the registry routes arkivmelding to DPO
//! because the organisation is registered in ELMA here, and the same entry gives the
//! organisation its business certificate. Everything is checked when the file loads —
//! organisation numbers by their mod-11 control digit, identity numbers by both control digits
//! and the synthetic-number marker, process URNs against [`crate::processes`], references
//! between entries — and a problem names the file and the entry, because a fixture mistake
//! found later shows up as a message routed to the wrong channel.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::processes::{self, Kind};

/// The whole fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Fixture {
    /// The organisation that prints vedtak for reserved citizens (KRR's print provider).
    pub print_provider: String,
    /// Organisations, as Brreg, ELMA and the FIKS address service know them.
    #[serde(default)]
    pub organisations: Vec<Organisation>,
    /// Citizens, as the population register and KRR know them.
    #[serde(default)]
    pub citizens: Vec<Citizen>,
    /// The shared access key of DPE's Service Bus, which the registry's `/sastoken` hands out.
    #[serde(default)]
    pub service_bus: ServiceBusKey,
}

/// A Service Bus shared access policy: the key name (`skn`) and the key a SAS is signed with.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServiceBusKey {
    /// The policy name, e.g. `MoveDPE-pilotPolicy` as in the test environment.
    pub key_name: String,
    /// The key; Service Bus signs with its text as it is, not base64-decoded.
    pub key: String,
}

impl Default for ServiceBusKey {
    fn default() -> Self {
        Self {
            key_name: "MoveDPE-pilotPolicy".to_owned(),
            key: "c2ltdWxhdGVkLXNlcnZpY2UtYnVzLWtleQ==".to_owned(),
        }
    }
}

/// An organisation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Organisation {
    /// The nine-digit organisation number.
    pub orgnr: String,
    /// Its name in Brreg.
    pub name: String,
    /// Its Brreg organisation form (`ORGL`, `KOMM`, `AS`, ...).
    pub entity_type: String,
    /// Its postal address in Brreg.
    pub address: Address,
    /// The processes it registered in ELMA (the PEPPOL SMP).
    #[serde(default)]
    pub elma: Vec<String>,
    /// Its SvarUt receiving system in the FIKS address service, if it has one.
    pub svarut: Option<SvarUt>,
    /// The eInnsyn processes it receives by DPE.
    #[serde(default)]
    pub einnsyn: Vec<String>,
    /// Its account at KS SvarUt, for sending (SvarUt) and receiving (SvarInn), if it has one.
    pub svarut_account: Option<SvarUtAccount>,
    /// Its end-user system registered in Altinn 2, if it has one: the credentials the broker
    /// service (DPO) and the correspondence agency (DPV) accept for it.
    pub altinn2: Option<Altinn2System>,
}

/// HTTP Basic credentials of an organisation's SvarUt account.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SvarUtAccount {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// An end-user system registered in Altinn 2 for an organisation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Altinn2System {
    /// The system user name (for the correspondence agency, the system user code).
    pub system_user_name: String,
    /// The system password.
    pub system_password: String,
}

/// A SvarUt receiving system.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SvarUt {
    /// The highest security level (`niva`) it receives at.
    pub security_level: i32,
}

/// A postal address.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Address {
    /// Street address.
    pub street: String,
    /// Postcode.
    pub postcode: String,
    /// Post town.
    pub town: String,
    /// Country.
    pub country: String,
}

/// A citizen.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Citizen {
    /// The eleven-digit (synthetic) national identity number.
    pub id: String,
    /// The citizen's name.
    pub name: String,
    /// The postal address in the population register.
    pub address: Address,
    /// What the contact and reservation register (KRR) holds.
    pub krr: Krr,
}

/// A citizen's KRR entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Krr {
    /// The entry's status.
    pub status: KrrStatus,
    /// Reserved against digital communication (`reservasjon = JA`).
    pub reserved: bool,
    /// The digital mailbox, if the citizen has one.
    pub mailbox: Option<Mailbox>,
    /// The notification e-mail address.
    pub email: Option<String>,
    /// The notification mobile number.
    pub mobile: Option<String>,
}

/// A KRR entry's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KrrStatus {
    /// In use.
    Aktiv,
    /// Deleted by the citizen.
    Slettet,
    /// Never registered.
    IkkeRegistrert,
}

/// A digital mailbox.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Mailbox {
    /// The mailbox address at the provider.
    pub address: String,
    /// The provider's organisation number; an organisation of the fixture.
    pub provider: String,
}

impl Krr {
    /// Whether digital post can be delivered to the mailbox.
    pub fn has_active_mailbox(&self) -> bool {
        self.status == KrrStatus::Aktiv && self.mailbox.is_some()
    }

    /// Whether the citizen can be notified of digital post (`kanVarsles`).
    pub fn notifiable(&self) -> bool {
        self.status == KrrStatus::Aktiv
            && !self.reserved
            && (self.email.is_some() || self.mobile.is_some())
    }
}

impl Fixture {
    /// Reads and checks the fixture at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).map_err(|error| anyhow::anyhow!("{}: {error:#}", path.display()))
    }

    /// Parses and checks fixture text; errors name the entry.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let fixture: Self = toml::from_str(text)?;
        fixture.validate()?;
        Ok(fixture)
    }

    /// The organisation numbered `orgnr`.
    pub fn organisation(&self, orgnr: &str) -> Option<&Organisation> {
        self.organisations.iter().find(|o| o.orgnr == orgnr)
    }

    /// The citizen with identity number `id`.
    pub fn citizen(&self, id: &str) -> Option<&Citizen> {
        self.citizens.iter().find(|c| c.id == id)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let mut orgnrs = HashSet::new();
        let mut system_users = HashSet::new();
        for (i, organisation) in self.organisations.iter().enumerate() {
            let entry = format!("organisations[{i}] ({})", organisation.orgnr);
            if !valid_orgnr(&organisation.orgnr) {
                bail!("{entry}: not a nine-digit organisation number with a valid mod-11 digit");
            }
            if !orgnrs.insert(organisation.orgnr.as_str()) {
                bail!("{entry}: the organisation number appears twice");
            }
            if organisation.name.trim().is_empty() {
                bail!("{entry}: the name is empty");
            }
            for urn in &organisation.elma {
                if processes::find(urn).is_none_or(|p| p.kind == Kind::Digitalpost) {
                    bail!("{entry}: elma: {urn} is not an organisation process the registers know");
                }
            }
            for urn in &organisation.einnsyn {
                if !processes::find(urn).is_some_and(|p| matches!(p.kind, Kind::Einnsyn(_))) {
                    bail!("{entry}: einnsyn: {urn} is not an eInnsyn process");
                }
            }
            if let Some(system) = &organisation.altinn2
                && (system.system_user_name.trim().is_empty() || system.system_password.is_empty())
            {
                bail!("{entry}: altinn2: the system user name and password must not be empty");
            }
            if let Some(system) = &organisation.altinn2
                && !system_users.insert(system.system_user_name.as_str())
            {
                bail!("{entry}: altinn2: the system user name is another organisation's too");
            }
            if let Some(svarut) = organisation.svarut
                && !(3..=4).contains(&svarut.security_level)
            {
                bail!("{entry}: svarut.security-level must be 3 or 4");
            }
        }
        if self.service_bus.key_name.is_empty() || self.service_bus.key.is_empty() {
            bail!("service-bus: the key name and the key must not be empty");
        }
        if !orgnrs.contains(self.print_provider.as_str()) {
            bail!(
                "print-provider: {} is not an organisation of the fixture",
                self.print_provider
            );
        }
        let mut ids = HashSet::new();
        for (i, citizen) in self.citizens.iter().enumerate() {
            let entry = format!("citizens[{i}] ({})", citizen.id);
            if !valid_synthetic_id(&citizen.id) {
                bail!(
                    "{entry}: not an eleven-digit synthetic identity number (month + 80) \
                     with valid control digits"
                );
            }
            if !ids.insert(citizen.id.as_str()) {
                bail!("{entry}: the identity number appears twice");
            }
            if let Some(mailbox) = &citizen.krr.mailbox
                && !orgnrs.contains(mailbox.provider.as_str())
            {
                bail!(
                    "{entry}: krr.mailbox.provider: {} is not an organisation of the fixture",
                    mailbox.provider
                );
            }
        }
        Ok(())
    }
}

/// Whether `orgnr` is nine digits whose last is the mod-11 control digit of the first eight.
pub fn valid_orgnr(orgnr: &str) -> bool {
    let Some(digits) = digits::<9>(orgnr) else {
        return false;
    };
    control_digit(&digits[..8], &[3, 2, 7, 6, 5, 4, 3, 2]) == Some(digits[8])
}

/// Whether `id` is an eleven-digit synthetic national identity number: both mod-11 control
/// digits valid and the month raised by 80, as synthetic test numbers are, so a fixture cannot
/// name a real person.
pub fn valid_synthetic_id(id: &str) -> bool {
    let Some(digits) = digits::<11>(id) else {
        return false;
    };
    let month = digits[2] * 10 + digits[3];
    (81..=92).contains(&month)
        && control_digit(&digits[..9], &[3, 7, 6, 1, 8, 9, 4, 5, 2]) == Some(digits[9])
        && control_digit(&digits[..10], &[5, 4, 3, 2, 7, 6, 5, 4, 3, 2]) == Some(digits[10])
}

fn digits<const N: usize>(text: &str) -> Option<[u32; N]> {
    let digits: Vec<u32> = text
        .chars()
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()?;
    digits.try_into().ok()
}

/// The mod-11 control digit of `digits` with `weights`; none when the remainder makes it 10.
fn control_digit(digits: &[u32], weights: &[u32]) -> Option<u32> {
    let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        digit => Some(digit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_digits_are_checked() {
        assert!(valid_orgnr("910075918"));
        assert!(valid_orgnr("910076787"));
        assert!(!valid_orgnr("910075919"));
        assert!(!valid_orgnr("91007591"));
        assert!(valid_synthetic_id("01818012337"));
        assert!(!valid_synthetic_id("01818012338"));
        // Valid control digits but a real person's month.
        assert!(!valid_synthetic_id("01010012356"));
    }

    #[test]
    fn the_shipped_fixture_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.toml");
        let fixture = Fixture::load(&path).unwrap();
        assert!(fixture.organisation("910075918").is_some());
        assert!(fixture.citizen("02818512441").unwrap().krr.reserved);
    }

    #[test]
    fn a_bad_entry_is_named() {
        let text = r#"
            print-provider = "910075918"
            [[organisations]]
            orgnr = "910075918"
            name = "A"
            entity-type = "ORGL"
            address = { street = "s", postcode = "1", town = "t", country = "c" }
            [[organisations]]
            orgnr = "910075919"
            name = "B"
            entity-type = "ORGL"
            address = { street = "s", postcode = "1", town = "t", country = "c" }
        "#;
        let error = Fixture::parse(text).unwrap_err().to_string();
        assert!(
            error.starts_with("organisations[1] (910075919): "),
            "{error}"
        );
        let unknown_process = text.replace(
            "orgnr = \"910075919\"",
            "orgnr = \"910076787\"\nelma = [\"urn:no:difi:profile:nope:ver1.0\"]",
        );
        let error = Fixture::parse(&unknown_process).unwrap_err().to_string();
        assert!(error.contains("organisations[1] (910076787): elma: urn:no:difi:profile:nope"));
    }

    #[test]
    fn altinn2_system_users_are_unique_and_complete() {
        let text = r#"
            print-provider = "910075918"
            [[organisations]]
            orgnr = "910075918"
            name = "A"
            entity-type = "ORGL"
            address = { street = "s", postcode = "1", town = "t", country = "c" }
            altinn2 = { system-user-name = "1", system-password = "pw" }
            [[organisations]]
            orgnr = "910076787"
            name = "B"
            entity-type = "ORGL"
            address = { street = "s", postcode = "1", town = "t", country = "c" }
            altinn2 = { system-user-name = "2", system-password = "pw" }
        "#;
        let fixture = Fixture::parse(text).unwrap();
        let system = fixture.organisation("910076787").unwrap().altinn2.as_ref();
        assert_eq!(system.unwrap().system_user_name, "2");
        let shared = text.replace("system-user-name = \"2\"", "system-user-name = \"1\"");
        let error = Fixture::parse(&shared).unwrap_err().to_string();
        assert!(
            error.starts_with("organisations[1] (910076787): altinn2:"),
            "{error}"
        );
        let empty = text.replace(
            "system-password = \"pw\" }\n            [[",
            "system-password = \"\" }\n            [[",
        );
        let error = Fixture::parse(&empty).unwrap_err().to_string();
        assert!(
            error.starts_with("organisations[0] (910075918): altinn2:"),
            "{error}"
        );
    }
}
