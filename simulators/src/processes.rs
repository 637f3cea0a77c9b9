//! The eFormidling processes the simulated registers know, and the document types each carries.
//!
//! The real registry learns a process's document types from ELMA's metadata; offline they are
//! this table, so the fixture only says *which* processes an organisation registered and a typo
//! in a process URN is refused when the fixture loads instead of silently routing nowhere.

/// The default arkivmelding process (`difi.move.arkivmelding.default-process`).
pub const ARKIVMELDING_ADMINISTRASJON: &str =
    "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0";
/// Digital post to citizens: information (no legal effect).
pub const DIGITALPOST_INFO: &str = "urn:no:difi:profile:digitalpost:info:ver1.0";
/// Digital post to citizens: decisions (vedtak), printed for those reserved.
pub const DIGITALPOST_VEDTAK: &str = "urn:no:difi:profile:digitalpost:vedtak:ver1.0";

/// The arkivmelding document type.
pub const ARKIVMELDING: &str = "urn:no:difi:arkivmelding:xsd::arkivmelding";
/// A digital post message delivered to a digital mailbox.
pub const DIGITAL: &str = "urn:no:difi:digitalpost:xsd:digital::digital";
/// A digital post message delivered to Altinn (DPV) for citizens without a mailbox.
pub const DIGITAL_DPV: &str = "urn:no:difi:digitalpost:xsd:digital::digital_dpv";
/// A digital post message printed and sent on paper.
pub const PRINT: &str = "urn:no:difi:digitalpost:xsd:fysisk::print";

/// How the registry decides a process's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Arkivmelding: DPO when registered in ELMA, else DPF with a SvarUt receiving system, else
    /// DPV.
    Arkivmelding,
    /// eInnsyn: DPE, only when registered; the value is the Service Bus queue suffix.
    Einnsyn(&'static str),
    /// Digital post to citizens: DPI, print or DPV by the contact register.
    Digitalpost,
}

/// A process the registers know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    /// Its URN.
    pub urn: &'static str,
    /// How its channel is chosen.
    pub kind: Kind,
    /// The document types it carries (for digital post, those of a DPI digital record).
    pub document_types: &'static [&'static str],
}

/// Every process the simulated registers know.
pub const PROCESSES: &[Process] = &[
    Process {
        urn: ARKIVMELDING_ADMINISTRASJON,
        kind: Kind::Arkivmelding,
        document_types: &[ARKIVMELDING],
    },
    Process {
        urn: "urn:no:difi:profile:arkivmelding:planByggOgGeodata:ver1.0",
        kind: Kind::Arkivmelding,
        document_types: &[ARKIVMELDING],
    },
    Process {
        urn: "urn:no:difi:profile:einnsyn:innsynskrav:ver1.0",
        kind: Kind::Einnsyn("innsyn"),
        document_types: &["urn:no:difi:einnsyn:xsd::innsynskrav"],
    },
    Process {
        urn: "urn:no:difi:profile:einnsyn:journalpost:ver1.0",
        kind: Kind::Einnsyn("data"),
        document_types: &["urn:no:difi:einnsyn:xsd::publisering"],
    },
    Process {
        urn: "urn:no:difi:profile:einnsyn:meeting:ver1.0",
        kind: Kind::Einnsyn("meeting"),
        document_types: &["urn:no:difi:einnsyn:xsd::meeting"],
    },
    Process {
        urn: DIGITALPOST_INFO,
        kind: Kind::Digitalpost,
        document_types: &[DIGITAL],
    },
    Process {
        urn: DIGITALPOST_VEDTAK,
        kind: Kind::Digitalpost,
        document_types: &[DIGITAL, PRINT],
    },
];

/// The process named `urn`, if the registers know it.
pub fn find(urn: &str) -> Option<&'static Process> {
    PROCESSES.iter().find(|process| process.urn == urn)
}
