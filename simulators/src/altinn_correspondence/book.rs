//! What the agency holds: the correspondences received and their status histories, found by
//! the sender's own reference, which is what makes insertion idempotent.

use serde::Serialize;

use super::insert::{ReceivedAttachment, ReceivedNotification};

/// A correspondence status, spelled as Altinn spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CorrespondenceStatus {
    /// Created (what the integration point reads as delivered).
    Created,
    /// Read by the recipient.
    Read,
    /// Confirmed by the recipient.
    Confirmed,
    /// The recipient is reserved against digital correspondence.
    Reserved,
}

impl CorrespondenceStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Read => "Read",
            Self::Confirmed => "Confirmed",
            Self::Reserved => "Reserved",
        }
    }
}

/// A status change of a correspondence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    /// The status.
    pub status: CorrespondenceStatus,
    /// When, as an `xs:dateTime`.
    pub date: String,
}

/// A correspondence the agency holds, for assertions and the inspection listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Correspondence {
    /// The id Altinn gave it.
    pub correspondence_id: i32,
    /// The id of the receipt its insertion got.
    pub receipt_id: i32,
    /// The sender's `ExternalShipmentReference`.
    pub external_shipment_reference: String,
    /// The `SystemUserCode` of the sending system.
    pub system_user_code: String,
    /// The sending organisation (the system's).
    pub sender: String,
    /// The recipient.
    pub reportee: String,
    /// `ServiceCode`.
    pub service_code: String,
    /// `ServiceEdition`.
    pub service_edition: String,
    /// `MessageSender`.
    pub message_sender: Option<String>,
    /// The content's `LanguageCode`.
    pub language_code: Option<String>,
    /// `MessageTitle`.
    pub title: String,
    /// `MessageSummary`.
    pub summary: Option<String>,
    /// `MessageBody`.
    pub body: Option<String>,
    /// `VisibleDateTime`.
    pub visible_date_time: String,
    /// `DueDateTime`.
    pub due_date_time: Option<String>,
    /// `AllowSystemDeleteDateTime`.
    pub allow_system_delete_date_time: Option<String>,
    /// `AllowForwarding`.
    pub allow_forwarding: Option<bool>,
    /// The binary attachments.
    pub attachments: Vec<ReceivedAttachment>,
    /// The notifications.
    pub notifications: Vec<ReceivedNotification>,
    /// Its statuses, oldest first.
    pub statuses: Vec<StatusChange>,
}

/// [`AltinnCorrespondence::mark`](super::AltinnCorrespondence::mark) was given a reference no correspondence has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownShipment(pub String);

impl std::fmt::Display for UnknownShipment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no correspondence has the external shipment reference {}",
            self.0
        )
    }
}

impl std::error::Error for UnknownShipment {}

#[derive(Default)]
pub(super) struct Book {
    pub(super) correspondences: Vec<Correspondence>,
    pub(super) last_id: i32,
}

impl Book {
    pub(super) fn find_mut(
        &mut self,
        sender: &str,
        external_reference: &str,
    ) -> Option<&mut Correspondence> {
        self.correspondences
            .iter_mut()
            .find(|c| c.sender == sender && c.external_shipment_reference == external_reference)
    }

    pub(super) fn find(&self, sender: &str, external_reference: &str) -> Option<&Correspondence> {
        self.correspondences
            .iter()
            .find(|c| c.sender == sender && c.external_shipment_reference == external_reference)
    }
}
